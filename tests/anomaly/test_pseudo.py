"""Pseudo-anomalies: seeded, shape-keeping, and each the change its docstring promises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentlab.anomaly.pseudo import PSEUDO_KINDS, SHUFFLE_GRID, make_pseudo
from latentlab.errors import LatentlabError


@pytest.fixture(scope="module")
def x(faces_images: np.ndarray) -> torch.Tensor:
    from latentlab.data.batches import BatchSpec, to_model_input

    return to_model_input(faces_images[:12], BatchSpec())  # (12, 3, 64, 64) in [-1, 1]


@pytest.mark.parametrize("kind", PSEUDO_KINDS)
def test_each_family_keeps_shape_and_range_and_is_seeded(x: torch.Tensor, kind: str) -> None:
    out = make_pseudo(x, kind, seed=3)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert float(out.min()) >= -1.0 - 1e-6 and float(out.max()) <= 1.0 + 1e-6
    assert torch.equal(out, make_pseudo(x, kind, seed=3))
    changed = (out - x).abs().flatten(1).amax(1) > 1e-6
    assert bool(changed.all()), f"{kind} left an image unchanged"
    assert torch.equal(x, x.clone())  # the input is not modified in place


def test_cutpaste_changes_one_rectangle_and_scar_a_thin_one(x: torch.Tensor) -> None:
    for kind, most in (("cutpaste", 0.16), ("scar", 0.05)):
        out = make_pseudo(x, kind, seed=0)
        changed = ((out - x).abs().amax(1) > 1e-6).float()  # (N, H, W)
        assert float(changed.flatten(1).mean(1).max()) <= most
        rows, cols = changed.amax(2), changed.amax(1)  # a rectangle: the box of the changed pixels
        box = rows.sum(1) * cols.sum(1)
        assert bool((changed.sum((1, 2)) <= box).all())


def test_shuffle_moves_tiles_and_keeps_their_content(x: torch.Tensor) -> None:
    out = make_pseudo(x, "shuffle", seed=1)
    t = 64 // SHUFFLE_GRID

    def tiles(img: torch.Tensor) -> list[bytes]:
        return sorted(img[:, i:i + t, j:j + t].numpy().tobytes() for i in range(0, 64, t) for j in range(0, 64, t))

    for a, b in zip(x, out, strict=True):
        assert tiles(a) == tiles(b)
        assert not torch.equal(a, b)


def test_smooth_is_simpler(x: torch.Tensor) -> None:
    out = make_pseudo(x, "smooth")
    detail = (x[..., 1:] - x[..., :-1]).abs().mean()
    assert float((out[..., 1:] - out[..., :-1]).abs().mean()) < 0.5 * float(detail)


def test_bad_requests_are_one_line_errors(x: torch.Tensor) -> None:
    with pytest.raises(LatentlabError, match="expected one of cutpaste"):
        make_pseudo(x, "blur")
    with pytest.raises(LatentlabError, match="at least 4x4"):
        make_pseudo(x[:, :, :2, :2], "cutpaste")
