"""Measured change descriptions: planted changes on images (no model involved)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from latentlab.data import make_faces, to_model_input
from latentlab.data.faces import render_faces
from latentlab.errors import LatentlabError
from latentlab.latent.describe import describe_change, where_text


@pytest.fixture(scope="module")
def face() -> torch.Tensor:
    return to_model_input(make_faces(3, seed=5).images)[1]  # (3, 64, 64) in [-1, 1]


def test_red_raised_in_the_lower_half_reads_redder_and_lower(face: torch.Tensor) -> None:
    after = face.clone()
    after[0, 32:] += 0.3  # red channel, lower half
    d = describe_change(face, after, (-1.0, 1.0))
    assert d.channel_shift["red"] == pytest.approx(0.15, abs=1e-4)
    assert abs(d.channel_shift["green"]) < 1e-9 and abs(d.channel_shift["blue"]) < 1e-9
    assert "redder" in d.text and "greener" not in d.text and "bluer" not in d.text
    assert "lower" in d.text and "upper" not in d.text
    shares = np.array(d.regions)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[0].sum() == pytest.approx(0.0) and shares[2].sum() > shares[1].sum()
    assert d.top_region.startswith("lower")
    assert d.brightness == pytest.approx(0.299 * 0.15, rel=1e-6)
    assert d.mse == pytest.approx(0.3**2 / 6, rel=1e-6)
    assert d.psnr == pytest.approx(10 * math.log10(4 / d.mse), rel=1e-6)


def test_a_blue_drop_in_one_corner_is_located_and_signed(face: torch.Tensor) -> None:
    after = face.clone()
    after[2, :20, 44:] -= 0.5  # blue, upper right corner
    d = describe_change(face, after, (-1.0, 1.0))
    assert d.channel_shift["blue"] < 0 and "bluer by -" in d.text
    assert d.top_region == "upper right" and d.top_share > 0.9
    assert "of the change is in the upper right" in d.text
    assert d.brightness < 0


def test_grey_images_report_brightness_and_contrast_only() -> None:
    before = torch.linspace(0, 1, 16 * 16).reshape(1, 16, 16)
    after = 0.5 + (before - 0.5) * 2.0  # more contrast, same mean
    d = describe_change(before, after, (0.0, 1.0))
    assert d.channel_shift == {}
    assert "redder" not in d.text and "colour" not in d.text
    assert d.contrast > 0 and abs(d.brightness) < 1e-6


def test_identical_images_say_so_and_stay_valid_json(face: torch.Tensor) -> None:
    d = describe_change(face, face, (-1.0, 1.0))
    assert d.mse == 0 and math.isinf(d.psnr)
    assert "identical" in d.text and "nothing changed" in d.text
    data = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert data["psnr"] is None


def test_where_text_prefers_the_smallest_region_holding_most_of_the_change() -> None:
    cells = np.zeros((3, 3))
    cells[1, 1] = 0.8
    cells[0, 0] = 0.2
    assert where_text(cells, {"upper half": 0.6}).startswith("80% of the change is in the centre")
    even = np.full((3, 3), 1 / 9)
    assert "spread over the image" in where_text(even, {"upper half": 0.5, "lower half": 0.5})


def test_factor_changes_name_the_factor_that_moved() -> None:
    from latentlab.latent.factors import FactorRegressor

    base = {"hue": [0.3], "face_width": [0.5], "eye_size": [0.5], "mouth": [0.1], "head_turn": [0.0],
            "background": [0.5]}
    smiling = dict(base, mouth=[0.9])
    x = to_model_input(np.concatenate([render_faces(base), render_faces(smiling)]))  # (2, 3, 64, 64)
    d = describe_change(x[0], x[1], (-1.0, 1.0), FactorRegressor.for_faces())
    assert d.factors is not None
    assert max(d.factors, key=lambda k: abs(d.factors[k])) == "mouth"
    assert d.factors["mouth"] == pytest.approx(0.8, abs=0.2)
    assert "mouth +" in d.text


def test_bad_shapes_are_one_line_errors(face: torch.Tensor) -> None:
    with pytest.raises(LatentlabError, match="differ in shape"):
        describe_change(face, face[:, :32], (-1.0, 1.0))
    with pytest.raises(LatentlabError, match="expected \\(C, H, W\\)"):
        describe_change(face[0], face[0], (-1.0, 1.0))
