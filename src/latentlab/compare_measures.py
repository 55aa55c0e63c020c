"""The measures of ``latentlab compare`` beyond those of :mod:`latentlab.compare`, each a free
function over images in [0, 1] or over a model's verbs.

* PSNR and SSIM of reconstructions (torchmetrics; data range 1, SSIM's Gaussian window sigma 1.5);
* k-NN precision and recall of samples (Kynkaanniemi et al., "Improved Precision and Recall
  Metric for Assessing Generative Models", NeurIPS 2019, https://arxiv.org/abs/1904.06991): a
  sample is "precise" when it falls inside the k-NN ball of some real image, a real image is
  "recalled" when it falls inside the k-NN ball of some sample. Here in pixel space;
* active units (Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016,
  https://arxiv.org/abs/1509.00519): element d is active when Cov_x(E[z_d | x]) > 0.01;
* KL per latent element of a VAE's posterior against N(0, I);
* anomaly ROC AUC of the per-image reconstruction error on a planted set: held-out normal images
  against CutPaste and shuffled-tile versions of *other* held-out images
  (:func:`latentlab.anomaly.pseudo.make_pseudo`);
* code sensitivity: how far the code moves when Gaussian noise is added to the input, relative to
  how far codes of different images lie apart (the contractive AE's claim);
* PSNR of reconstructions of noisy inputs against the clean images (the denoising AE's claim).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from latentlab.models.base import Autoencoder, DiagonalGaussian

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016
KNN_K = 3  # Kynkaanniemi et al. 2019 use k = 3
NOISE_STD = 0.1  # of the input noise for code sensitivity and noisy PSNR, in [0, 1] pixel units
PLANTED_KINDS = ("cutpaste", "shuffle")


def psnr(x_hat: Tensor, x: Tensor) -> float:
    """Mean over images of each image's PSNR in dB (images in [0, 1])."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    per_image = peak_signal_noise_ratio(x_hat.float(), x.float(), data_range=1.0, reduction="none",
                                        dim=(1, 2, 3))
    return float(per_image.mean())


def ssim(x_hat: Tensor, x: Tensor) -> float:
    """Mean SSIM (Wang et al., 2004) over the images (in [0, 1])."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    value = structural_similarity_index_measure(x_hat.float(), x.float(), data_range=1.0)
    return float(value[0] if isinstance(value, tuple) else value)


def knn_precision_recall(real: Tensor, fake: Tensor, k: int = KNN_K) -> tuple[float, float]:
    """(precision, recall) of ``fake`` against ``real`` (each (N, ...)), Kynkaanniemi et al. 2019."""
    from sklearn.neighbors import NearestNeighbors

    r, f = real.flatten(1).double().numpy(), fake.flatten(1).double().numpy()
    k = min(k, len(r) - 1, len(f) - 1)
    if k < 1:
        return float("nan"), float("nan")

    def radii(a: np.ndarray) -> np.ndarray:  # distance of each point to its k-th nearest other point
        distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(a).kneighbors(a)
        return np.asarray(distances[:, k])

    cross = torch.cdist(torch.from_numpy(f), torch.from_numpy(r)).numpy()  # (F, R)
    precision = float((cross <= radii(r)[None, :]).any(axis=1).mean())
    recall = float((radii(f)[None, :] >= cross.T).any(axis=1).mean())
    return precision, recall


@torch.no_grad()
def posterior_means(model: Autoencoder, x: Tensor, chunk: int = 256) -> tuple[Tensor, Tensor | None]:
    """(E[z|x] (N, D), KL per element (N, D) for a VAE, else None)."""
    means, kls = [], []
    for part in x.split(chunk):
        out = model.encode(part)
        if isinstance(out, DiagonalGaussian):
            means.append(out.mu.float())
            kls.append(out.kl_per_dim().float())
        else:
            means.append(model.embed(part).float())
    return torch.cat(means), (torch.cat(kls) if kls else None)


def active_units(mu: Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """How many elements have Cov_x(E[z_d|x]) > ``threshold`` (Burda et al. 2016); ``mu`` (N, D)."""
    if len(mu) < 2:
        return 0
    return int((mu.var(dim=0) > threshold).sum())


@torch.no_grad()
def reconstruction_errors(model: Autoencoder, x: Tensor, chunk: int = 256) -> Tensor:
    """(N,) per-image MSE between ``x`` (model space) and its reconstruction from the code."""
    errors = [(model.decode(model.embed(part)).float() - part.float()).pow(2).flatten(1).mean(1)
              for part in x.split(chunk)]
    return torch.cat(errors)


def planted_anomaly_auc(model: Autoencoder, x: Tensor, value_range: tuple[float, float], seed: int = 0) -> float:
    """ROC AUC of the reconstruction error: the first half of ``x`` as normals against planted
    anomalies made from the second half (CutPaste and shuffled tiles, alternately)."""
    from sklearn.metrics import roc_auc_score

    from latentlab.anomaly.pseudo import make_pseudo

    half = len(x) // 2
    if half < 2:
        return float("nan")
    normal, other = x[:half], x[half:2 * half].cpu()
    planted = torch.cat([make_pseudo(other[i::len(PLANTED_KINDS)], kind, value_range, seed)
                         for i, kind in enumerate(PLANTED_KINDS)]).to(x.device, x.dtype)
    scores = torch.cat([reconstruction_errors(model, normal), reconstruction_errors(model, planted)])
    labels = np.r_[np.zeros(len(normal)), np.ones(len(planted))]
    return float(roc_auc_score(labels, scores.cpu().numpy()))


def _noisy(x: Tensor, value_range: tuple[float, float], seed: int) -> Tensor:
    lo, hi = value_range
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=g).to(x.device, x.dtype) * NOISE_STD * (hi - lo)
    return (x + noise).clamp(lo, hi)


@torch.no_grad()
def code_sensitivity(model: Autoencoder, x: Tensor, value_range: tuple[float, float], seed: int = 0) -> float:
    """Mean distance between the codes of ``x`` and of ``x`` with Gaussian noise (std 0.1 of the
    range), over the mean distance between codes of different images: lower = a more contractive,
    noise-robust code."""
    if len(x) < 2:
        return float("nan")
    z, z_noisy = model.embed(x).float(), model.embed(_noisy(x, value_range, seed)).float()
    moved = (z_noisy - z).norm(dim=1).mean()
    apart = (z - z.roll(1, dims=0)).norm(dim=1).mean()
    return float(moved / apart.clamp_min(1e-12))


@torch.no_grad()
def noisy_psnr(model: Autoencoder, x: Tensor, value_range: tuple[float, float], seed: int = 0) -> float:
    """PSNR (dB, images scaled to [0, 1]) of reconstructions of noisy inputs against the clean ``x``."""
    lo, hi = value_range
    x_hat = model.decode(model.embed(_noisy(x, value_range, seed))).float()
    return psnr(((x_hat - lo) / (hi - lo)).clamp(0, 1), ((x.float() - lo) / (hi - lo)).clamp(0, 1))
