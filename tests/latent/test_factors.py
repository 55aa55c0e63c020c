"""The faces factor regressor: accurate on held-out faces, also when they are blurry."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from latentlab.data import make_faces
from latentlab.errors import LatentlabError
from latentlab.latent.factors import FactorRegressor, _gaussian_blur, _thumbnails


def test_for_faces_explains_held_out_faces() -> None:
    start = time.perf_counter()
    regressor = FactorRegressor.for_faces()
    print(f"fit (or cache hit) in {time.perf_counter() - start:.2f} s")  # timing is measured, not asserted
    held_out = make_faces(300, seed=4321)
    r2 = regressor.r2(held_out.images, held_out.factors)
    assert set(r2) == set(held_out.factors)
    assert min(r2.values()) > 0.9, r2
    assert FactorRegressor.for_faces() is regressor  # cached per process


def test_blurred_faces_are_still_read_well() -> None:
    held_out = make_faces(200, seed=99)
    x = torch.from_numpy(held_out.images).permute(0, 3, 1, 2).float()
    blurred = _gaussian_blur(x, 1.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    r2 = FactorRegressor.for_faces().r2(blurred, held_out.factors)
    assert min(r2.values()) > 0.85, r2


def test_fit_and_predict_contract() -> None:
    faces = make_faces(120, seed=1)
    regressor = FactorRegressor(size=8, alpha=1.0)
    assert regressor.fit(faces.images, {"mouth": faces.factors["mouth"]}) is regressor
    pred = regressor.predict(faces.images[:5])
    assert list(pred) == ["mouth"] and pred["mouth"].shape == (5,)
    with pytest.raises(LatentlabError, match="3-channel"):
        regressor.predict(np.zeros((2, 64, 64, 1), dtype=np.uint8))
    with pytest.raises(LatentlabError, match="fit"):
        FactorRegressor().predict(faces.images[:2])


def test_ridge_is_the_closed_form_solution() -> None:
    """scikit-learn's Ridge gives what the hand-written solve gave: centred (X'X + alpha I)^-1 X'y, intercept free."""
    faces = make_faces(150, seed=2)
    regressor = FactorRegressor(size=8, alpha=0.3).fit(faces.images, faces.factors)
    x = _thumbnails(faces.images, 8).numpy()  # (N, F) float64
    y = np.stack(list(faces.factors.values()), 1).astype(np.float64)
    xc = x - x.mean(0)
    coef = np.linalg.solve(xc.T @ xc + 0.3 * np.eye(x.shape[1]), xc.T @ (y - y.mean(0)))  # (F, K)
    expected = xc[:5] @ coef + y.mean(0)
    found = regressor.predict(faces.images[:5])
    np.testing.assert_allclose(np.stack([found[k] for k in faces.factors], 1), expected, rtol=0, atol=1e-8)
