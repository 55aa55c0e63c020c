"""Generated faces: deterministic, independent factors, each visibly changes the image."""

from __future__ import annotations

import numpy as np
import pytest

from latentlab.data.faces import FACTOR_RANGES, make_faces, render_faces
from latentlab.errors import LatentlabError

MID = {"hue": 0.5, "face_width": 0.5, "eye_size": 0.5, "mouth": 0.5, "head_turn": 0.0, "background": 0.5}


def _vary(name: str, values: list[float], size: int = 64) -> np.ndarray:
    """Faces (len(values), S, S, 3) where only ``name`` changes."""
    factors = {k: np.full(len(values), v) for k, v in MID.items()}
    factors[name] = np.asarray(values, dtype=float)
    return render_faces(factors, size=size).astype(np.float64)


def test_shapes_labels_and_factor_ranges() -> None:
    faces = make_faces(300, seed=1)
    assert faces.images.shape == (300, 64, 64, 3) and faces.images.dtype == np.uint8
    assert set(faces.factors) == set(FACTOR_RANGES)
    for name, (lo, hi) in FACTOR_RANGES.items():
        values = faces.factors[name]
        assert values.shape == (300,) and values.min() >= lo and values.max() <= hi
    assert faces.label_names == ["neutral", "smiling"]
    assert np.array_equal(faces.labels, (faces.factors["mouth"] > 0.5).astype(np.int64))
    assert faces.labels.dtype == np.int64 and 0 < faces.labels.mean() < 1


def test_deterministic_from_seed() -> None:
    a, b, c = make_faces(20, seed=7), make_faces(20, seed=7), make_faces(20, seed=8)
    assert np.array_equal(a.images, b.images)
    assert all(np.array_equal(a.factors[k], b.factors[k]) for k in a.factors)
    assert not np.array_equal(a.images, c.images)


def test_factors_are_independent_uniform_draws() -> None:
    faces = make_faces(4000, seed=0)
    names = list(FACTOR_RANGES)
    matrix = np.stack([faces.factors[k] for k in names])
    corr = np.corrcoef(matrix)
    assert np.abs(corr - np.eye(len(names))).max() < 0.06
    for name, (lo, hi) in FACTOR_RANGES.items():  # uniform: each quarter holds about a quarter
        counts = np.histogram(faces.factors[name], bins=4, range=(lo, hi))[0]
        assert np.all(np.abs(counts / 4000 - 0.25) < 0.03), name


@pytest.mark.parametrize("name", list(FACTOR_RANGES))
def test_each_factor_changes_pixels(name: str) -> None:
    lo, hi = FACTOR_RANGES[name]
    faces = _vary(name, [lo, (lo + hi) / 2, hi])
    assert np.abs(faces[0] - faces[2]).mean() > 1.0  # mean absolute change > 1 grey level
    assert np.abs(faces[0] - faces[1]).max() > 50  # somewhere clearly visible


def test_factors_change_what_they_say() -> None:
    # hue: 0 warm (red above blue in the skin) ... 1 cool
    skin = _vary("hue", [0.0, 1.0])[:, 40:44, 20:24]  # cheek
    assert skin[0, ..., 0].mean() - skin[0, ..., 2].mean() > 50
    assert skin[1, ..., 2].mean() - skin[1, ..., 0].mean() > 50
    # background: corners get brighter
    corners = _vary("background", [0.0, 1.0])[:, :4, :4].mean(axis=(1, 2, 3))
    assert corners[1] - corners[0] > 150
    # face_width: more non-background pixels on the row through the cheeks
    wide = _vary("face_width", [0.0, 1.0])
    row = np.abs(wide[:, 38] - wide[:, 38, :1]).sum(axis=-1) > 30
    assert row[1].sum() > row[0].sum() + 5
    # head_turn: the dark pupils' centre of mass moves left to right
    turned = _vary("head_turn", [-1.0, 1.0])
    cols = []
    for img in turned:
        dark = img[24:34].sum(axis=-1) < 100  # pupils, not the (lighter) hair
        cols.append(np.nonzero(dark)[1].mean())
    assert cols[1] - cols[0] > 5
    # mouth and eye size: more mouth-red / more eye-white pixels
    mouth = _vary("mouth", [0.0, 1.0])
    red = ((mouth[..., 0] > 100) & (mouth[..., 1] < 40)).sum(axis=(1, 2))
    assert red[1] > 3 * red[0]
    eyes = _vary("eye_size", [0.0, 1.0])
    white = (eyes.min(axis=-1) > 230).sum(axis=(1, 2))
    assert white[1] > 2 * white[0]


def test_other_sizes_and_errors() -> None:
    assert make_faces(3, size=32).images.shape == (3, 32, 32, 3)
    with pytest.raises(LatentlabError, match="positive"):
        make_faces(0)
    with pytest.raises(LatentlabError, match="missing factor"):
        render_faces({"hue": np.zeros(2)})


def test_five_thousand_faces_are_vectorised() -> None:
    """Not a timing assertion (see benchmarks/): just that 5,000 faces build in one call."""
    faces = make_faces(5000, seed=3)
    assert faces.images.shape == (5000, 64, 64, 3)
    assert len(np.unique(faces.images.reshape(5000, -1)[:, ::97], axis=0)) == 5000
