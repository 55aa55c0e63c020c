"""Densities over latent codes, fitted on the latents of normal training images.

An image whose code lies far from where the normal codes lie is anomalous even when its
reconstruction is good (a digit 7 that a model of 1s reconstructs as a 1-ish stroke). Two
densities:

* ``mahalanobis``: one Gaussian; the score is the Mahalanobis distance
  ``sqrt((z - mean)^T P (z - mean))`` with the Ledoit-Wolf shrunk covariance (Ledoit & Wolf,
  2004), as Lee et al. (NeurIPS 2018) score features of a trained network.
* ``gmm``: a Gaussian mixture (scikit-learn, full covariances); the score is the negative
  log-likelihood of z, the energy of DAGMM (Zong et al., ICLR 2018).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentlab.errors import LatentlabError

DENSITY_KINDS = ("mahalanobis", "gmm")


@dataclass
class LatentDensity:
    """A fitted density: ``score(z)`` (N, D) -> (N,), higher = less likely under the normal data."""

    kind: str
    mean: Tensor | None = None  # (D,) mahalanobis
    precision: Tensor | None = None  # (D, D) mahalanobis
    mixture: Any = None  # sklearn GaussianMixture for gmm

    def score(self, z: Tensor) -> Tensor:
        if self.kind == "mahalanobis":
            assert self.mean is not None and self.precision is not None
            d = z.detach().double().cpu() - self.mean  # (N, D)
            return ((d @ self.precision) * d).sum(1).clamp_min(0).sqrt().to(z.device)
        nll = -self.mixture.score_samples(z.detach().double().cpu().numpy())
        return torch.from_numpy(nll).to(z.device)


def fit_density(z: Tensor, kind: str = "mahalanobis", n_components: int = 8, seed: int = 0) -> LatentDensity:
    """Fit ``kind`` on training latents z (N, D)."""
    if kind not in DENSITY_KINDS:
        raise LatentlabError(f"latent density '{kind}': expected one of {', '.join(DENSITY_KINDS)}")
    if z.ndim != 2 or z.shape[0] < 2:
        raise LatentlabError(f"latent density: expected at least 2 encoded training images, got {tuple(z.shape)}")
    zn = z.detach().double().cpu().numpy()
    if not np.isfinite(zn).all():
        raise LatentlabError("latent density: the training latents contain NaN or infinite values")
    if kind == "mahalanobis":
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf().fit(zn)
        return LatentDensity(kind, mean=torch.from_numpy(lw.location_), precision=torch.from_numpy(lw.precision_))
    if not 1 <= n_components <= len(zn):
        raise LatentlabError(f"--components {n_components}: expected 1..{len(zn)} (the training images)")
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(n_components, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(zn)
    return LatentDensity(kind, mixture=gmm)
