"""Batch transforms: uint8 NHWC -> float NCHW and back, specs, parsers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentlab.data.batches import (
    BatchSpec,
    add_noise,
    parse_crop,
    parse_range,
    parse_size,
    resize_uint8,
    to_model_input,
    to_uint8,
)
from latentlab.errors import LatentlabError


def _images(n: int = 4, h: int = 10, w: int = 12, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def test_default_scales_to_minus_one_one_nchw() -> None:
    images = _images()
    x = to_model_input(images)
    assert x.shape == (4, 3, 10, 12) and x.dtype == torch.float32
    expected = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(x, expected)
    zero_one = to_model_input(np.array([[[[0]], [[255]]]], dtype=np.uint8), BatchSpec(value_range=(0.0, 1.0)))
    assert zero_one.flatten().tolist() == [0.0, 1.0]


def test_round_trip_to_uint8_is_exact() -> None:
    images = _images()
    for value_range in [(-1.0, 1.0), (0.0, 1.0)]:
        x = to_model_input(images, BatchSpec(value_range=value_range))
        assert np.array_equal(to_uint8(x, value_range), images)
    assert to_uint8(x[0], (0.0, 1.0)).shape == (1, 10, 12, 3)  # one (C, H, W) image


def test_crop_center_crop_and_resize_shapes() -> None:
    images = _images(h=20, w=30)
    spec = BatchSpec(crop=(2, 5, 16, 20), center_crop=12, resize=(6, 8))
    assert spec.output_shape((3, 20, 30)) == (3, 6, 8)
    assert to_model_input(images, spec).shape == (4, 3, 6, 8)
    cropped = to_model_input(images, BatchSpec(crop=(2, 5, 16, 20), value_range=(0.0, 1.0)))
    assert np.array_equal(to_uint8(cropped, (0.0, 1.0)), images[:, 2:18, 5:25])
    centre = to_model_input(images, BatchSpec(center_crop=10, value_range=(0.0, 1.0)))
    assert np.array_equal(to_uint8(centre, (0.0, 1.0)), images[:, 5:15, 10:20])


def test_resize_antialiases_and_keeps_range() -> None:
    stripes = np.zeros((1, 8, 8, 1), dtype=np.uint8)
    stripes[:, :, ::2] = 255  # 1-pixel stripes average to mid-grey when halved
    x = to_model_input(stripes, BatchSpec(resize=(4, 4), value_range=(0.0, 1.0)))
    inner = x[..., 1:3]  # the border columns see a truncated filter
    assert torch.allclose(inner, torch.full_like(inner, 0.5), atol=0.01)
    assert abs(float(x.mean()) - 0.5) < 0.01
    up = to_model_input(_images(), BatchSpec(resize=(40, 48)))
    assert up.shape == (4, 3, 40, 48) and up.min() >= -1 and up.max() <= 1


def test_accepts_tensor_and_readonly_memmap(tmp_path) -> None:
    images = _images()
    path = tmp_path / "a.npy"
    np.save(path, images)
    mm = np.load(path, mmap_mode="r")
    with_numpy = to_model_input(mm, BatchSpec(crop=(1, 1, 5, 5)), dtype=torch.bfloat16)
    with_tensor = to_model_input(torch.from_numpy(images), BatchSpec(crop=(1, 1, 5, 5)), dtype=torch.bfloat16)
    assert with_numpy.dtype == torch.bfloat16 and torch.equal(with_numpy, with_tensor)


def test_rejects_non_uint8_and_wrong_rank() -> None:
    with pytest.raises(LatentlabError, match="uint8"):
        to_model_input(np.zeros((2, 4, 4, 3), dtype=np.float32))
    with pytest.raises(LatentlabError, match=r"\(N, H, W, C\)"):
        to_model_input(np.zeros((4, 4, 3), dtype=np.uint8))


def test_crop_that_does_not_fit() -> None:
    with pytest.raises(LatentlabError, match="does not fit images of 10x12"):
        to_model_input(_images(), BatchSpec(crop=(0, 0, 11, 4)))
    with pytest.raises(LatentlabError, match="center_crop 11"):
        BatchSpec(center_crop=11).output_shape((3, 10, 12))


@pytest.mark.parametrize("kwargs", [
    {"crop": (0, 0, 0, 4)}, {"crop": (-1, 0, 4, 4)}, {"crop": (0, 0, 4)},
    {"center_crop": 0}, {"resize": (0, 4)}, {"resize": (4,)},
    {"value_range": (1.0, -1.0)}, {"value_range": (0.0, float("inf"))},
    {"noise": -0.1}, {"noise": float("nan")},
])
def test_batch_spec_validation(kwargs) -> None:
    with pytest.raises(LatentlabError):
        BatchSpec(**kwargs)


def test_add_noise_is_seeded_and_clamped() -> None:
    x = torch.zeros(2, 3, 8, 8)
    a = add_noise(x, 0.5, torch.Generator().manual_seed(1))
    b = add_noise(x, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    big = add_noise(x, 10.0, value_range=(0.0, 1.0))
    assert big.min() >= 0 and big.max() <= 1
    assert add_noise(x, 0.0) is x


def test_resize_uint8() -> None:
    out = resize_uint8(_images(n=5), (5, 6), chunk=2)
    assert out.shape == (5, 5, 6, 3) and out.dtype == np.uint8


def test_parsers() -> None:
    assert parse_range("-1,1") == (-1.0, 1.0)
    assert parse_range(" 0 , 1 ") == (0.0, 1.0)
    assert parse_crop("20,0,178,178") == (20, 0, 178, 178)
    assert parse_size("64") == (64, 64)
    assert parse_size("64,32") == (64, 32)


@pytest.mark.parametrize(("parser", "text", "message"), [
    (parse_range, "1,-1", "value range '1,-1': expected two numbers low,high"),
    (parse_range, "a,b", "value range 'a,b'"),
    (parse_range, "0", "value range '0'"),
    (parse_crop, "1,2,3", "crop '1,2,3': expected four integers"),
    (parse_crop, "0,0,0,5", "crop '0,0,0,5'"),
    (parse_crop, "x", "crop 'x'"),
    (parse_size, "0", "size '0': expected a positive integer"),
    (parse_size, "64,64,3", "size '64,64,3'"),
    (parse_size, "big", "size 'big'"),
])
def test_parser_errors_name_the_value(parser, text, message) -> None:
    with pytest.raises(LatentlabError) as info:
        parser(text)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
