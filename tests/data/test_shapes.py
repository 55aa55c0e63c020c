"""The ``shapes`` source: a procedural dSprites drawn from the index, deterministic, with factors."""

from __future__ import annotations

import numpy as np
import pytest

from latentlab.data.shapes import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    N_IMAGES,
    factor_values,
    index_of,
    levels_of,
    make_shapes,
    render_shapes,
)
from latentlab.data.sources import load_source
from latentlab.errors import LatentlabError


def test_grid_is_dsprites_size_and_index_round_trips() -> None:
    assert N_IMAGES == 737_280 and FACTOR_SIZES == (3, 6, 40, 32, 32)
    index = np.array([0, 1, 32, 1024, N_IMAGES - 1, 123_456])
    levels = levels_of(index)
    assert levels[0].tolist() == [0, 0, 0, 0, 0] and levels[1].tolist() == [0, 0, 0, 0, 1]
    assert levels[2].tolist() == [0, 0, 0, 1, 0] and levels[4].tolist() == [2, 5, 39, 31, 31]
    assert index_of(levels).tolist() == index.tolist()


def test_images_are_binary_64x64_and_deterministic() -> None:
    levels = levels_of(np.random.default_rng(0).integers(0, N_IMAGES, 200))
    a, b = render_shapes(levels), render_shapes(levels)
    assert a.shape == (200, 64, 64, 1) and a.dtype == np.uint8
    assert set(np.unique(a)) <= {0, 255}
    assert np.array_equal(a, b)
    area = (a > 0).reshape(200, -1).sum(1)
    assert area.min() > 20  # every image shows a sprite


def test_factors_change_the_image_as_named() -> None:
    base = np.array([[0, 5, 0, 10, 10]])
    bigger = render_shapes(base)[0] > 0
    smaller = render_shapes(np.array([[0, 0, 0, 10, 10]]))[0] > 0
    assert bigger.sum() > 2.5 * smaller.sum()  # scale 1.0 vs 0.5: four times the area, roughly
    right = render_shapes(np.array([[0, 5, 0, 20, 10]]))[0] > 0
    cols = np.nonzero(bigger.any(axis=(0, 2)))[0], np.nonzero(right.any(axis=(0, 2)))[0]
    assert cols[1].mean() - cols[0].mean() == pytest.approx(10 * 4 / 3, abs=1.0)  # 4/3 pixel per level
    down = render_shapes(np.array([[0, 5, 0, 10, 20]]))[0] > 0
    assert np.nonzero(down.any(axis=(1, 2)))[0].mean() > np.nonzero(bigger.any(axis=(1, 2)))[0].mean() + 10
    shapes = render_shapes(np.array([[s, 5, 3, 10, 10] for s in range(3)]))
    assert not np.array_equal(shapes[0], shapes[1]) and not np.array_equal(shapes[1], shapes[2])
    turned = render_shapes(np.array([[1, 5, 10, 10, 10]]))[0]  # an ellipse a quarter turn round
    assert not np.array_equal(turned, shapes[1])


def test_source_spec_holds_a_sample_with_factors_and_labels() -> None:
    data = load_source("shapes:300:2")
    assert data.images.shape == (300, 64, 64, 1) and data.spec == "shapes:300:2"
    assert set(data.factors) == set(FACTOR_NAMES)
    assert data.label_names == ["square", "ellipse", "heart"]
    assert np.array_equal(data.labels, data.factors["shape"].astype(np.int64))
    again = make_shapes(300, seed=2)
    assert np.array_equal(again.images, data.images)
    assert not np.array_equal(make_shapes(300, seed=3).images, data.images)
    assert data.factors["scale"].min() >= 0.5 and data.factors["scale"].max() <= 1.0
    assert data.factors["orientation"].max() <= 2 * np.pi + 1e-9


def test_faces_expose_factors_the_same_way() -> None:
    data = load_source("faces:20")
    assert set(data.factors) == {"hue", "face_width", "eye_size", "mouth", "head_turn", "background"}
    assert all(v.shape == (20,) for v in data.factors.values())


@pytest.mark.parametrize("spec", ["shapes:0", "shapes:abc", "shapes:1:2:3", f"shapes:{N_IMAGES + 1}"])
def test_bad_shapes_specs_are_one_line_errors(spec: str) -> None:
    with pytest.raises(LatentlabError, match="shapes"):
        load_source(spec)


def test_bad_levels_are_refused() -> None:
    with pytest.raises(LatentlabError, match="out of range"):
        render_shapes(np.array([[3, 0, 0, 0, 0]]))
    with pytest.raises(LatentlabError, match="integer factor levels"):
        render_shapes(np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(LatentlabError, match="index out of range"):
        levels_of(np.array([N_IMAGES]))
    assert factor_values(np.array([[2, 0, 0, 31, 0]]))["pos_x"][0] == 1.0
