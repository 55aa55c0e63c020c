"""Anomaly scores from an autoencoder: higher = more anomalous, one number per image.

The idea (Japkowicz et al., 1995; Sakurada & Yairi, 2014; the course's HW8): a model trained on
normal images only reconstructs them well and anything else badly, so the reconstruction error
ranks anomalies. Beside it, how unusual the latent code is under a density fitted on the
normal training latents (Mahalanobis distance, Lee et al., 2018; or a Gaussian mixture, Zong et
al., 2018 "DAGMM"), the structural-similarity error (Wang et al., 2004; Bergmann et al., 2019 use
it for AE anomaly maps), and for a VAE the negative ELBO (An & Cho, 2015).

=================  ==================================================================================
kind               score of one image
=================  ==================================================================================
``mse``            mean squared error per pixel, in the model's value range
``course``         sqrt of the *summed* squared error in [-1, 1] space (the course's Kaggle score)
``ssim``           1 - mean SSIM (torchmetrics; Gaussian window, sigma 1.5) between x and x_hat
``elbo``           negative ELBO on the training objective's scale: mse + beta * KL / pixels (VAE only)
``mahalanobis``    Mahalanobis distance of z = embed(x) to the normal training latents
``gmm``            negative log-likelihood of z under a Gaussian mixture fitted on training latents
``features``       Mahalanobis distances of the encoder's pooled hidden-layer statistics, summed over
                   layers (:mod:`latentlab.anomaly.features`; Lee et al., 2018; Rippel et al., 2020)
``transforms``     a rotation classifier's surprise at the rotations of the image, and
``transform-``     ``-features`` the distance of its hidden-layer statistics (only for a run that has
``features``       one: :mod:`latentlab.anomaly.transforms`; Golan & El-Yaniv, 2018; Hendrycks et al., 2019)
``combined``       sum of standardised log-scores of ``parts`` (default mse + mahalanobis); with
                   ``combine="max"`` their maximum. A part ``|mse|`` or ``|ssim|`` is *two-sided*:
                   the absolute standardised log-error, so an image reconstructed much *better*
                   than normal images counts as unusual too (the typicality test of Nalisnick et
                   al., 2019: a blurred or simpler image is reconstructed too well)
``auto``           the score the run chose for itself (:mod:`latentlab.anomaly.auto`); resolved by
                   the detector, never by the functions here
=================  ==================================================================================

``mahalanobis``, ``gmm``, ``features``, ``transform-features`` and ``combined`` need statistics of normal training data
(:class:`ScoreStats`, made by :func:`fit_stats`); :class:`~latentlab.anomaly.detector.ReconstructionDetector`
fits them for you. Every function takes model-space images x (N, C, H, W) and returns (N,) float32.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from latentlab.allocator import release_free_memory
from latentlab.anomaly.density import LatentDensity, fit_density
from latentlab.anomaly.features import FeatureDensity, capture_if, fit_features, has_features
from latentlab.anomaly.transforms import TRANSFORM_KINDS, attached, collect_outputs, transform_outputs
from latentlab.data.batches import BatchSpec
from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder, DiagonalGaussian
from latentlab.models.packed import packed_linears

RECONSTRUCTION_KINDS = ("mse", "course", "ssim")
LATENT_KINDS = ("mahalanobis", "gmm")
FITTED_KINDS = (*LATENT_KINDS, "features", "transform-features")  # fitted on normal training images
SCORE_KINDS = (*RECONSTRUCTION_KINDS, "elbo", *LATENT_KINDS, "features", *TRANSFORM_KINDS, "combined")
DEFAULT_PARTS = ("mse", "mahalanobis")
COMBINE_MODES = ("sum", "max")
TWO_SIDED_KINDS = ("mse", "ssim")  # kinds a combined score may take two-sided, as "|mse|"
_EPS = 1e-12


# ---------------------------------------------------------------- checks


def two_sided(part: str) -> bool:
    """Whether ``part`` is a two-sided part, ``|kind|``."""
    return len(part) > 2 and part.startswith("|") and part.endswith("|")


def base_kind(part: str) -> str:
    """The kind a part is computed from: ``|mse|`` -> ``mse``; others as they are."""
    return part[1:-1] if two_sided(part) else part


def check_kind(model: Autoencoder, kind: str, parts: Sequence[str] = DEFAULT_PARTS) -> str:
    """``kind`` if ``model`` can give it; LatentlabError naming what it can give otherwise."""
    if kind not in SCORE_KINDS:
        raise LatentlabError(f"score '{kind}': expected one of {', '.join(SCORE_KINDS)}, or auto")
    if kind == "combined":
        if len(parts) < 1 or len({base_kind(p) for p in parts}) != len(parts):
            raise LatentlabError(f"combined score parts {tuple(parts)}: expected distinct score kinds")
        for part in parts:
            if part == "combined":
                raise LatentlabError("combined score parts: 'combined' cannot be a part of itself")
            if two_sided(part) and base_kind(part) not in TWO_SIDED_KINDS:
                raise LatentlabError(f"combined score part '{part}': expected a two-sided part of "
                                     f"{' or '.join(TWO_SIDED_KINDS)} (|mse|, |ssim|)")
            check_kind(model, base_kind(part))
        if sum(p in LATENT_KINDS for p in parts) > 1:
            raise LatentlabError(f"combined score parts {tuple(parts)}: expected at most one latent density "
                                 f"({' or '.join(LATENT_KINDS)})")
    if kind == "features" and not has_features(model):
        raise LatentlabError(f"score 'features': the encoder of this {model.config.kind} model has no hidden "
                             f"layers to take features from; use another score")
    if kind in TRANSFORM_KINDS and attached(model) is None:
        raise LatentlabError(f"score '{kind}': this model has no transform classifier (train the run with "
                             f"--recipe anomaly, or add one with latentlab.anomaly.transforms.train_for_run)")
    if kind == "elbo" and not model.is_variational:
        usable = [k for k in SCORE_KINDS if k != "elbo"]
        raise LatentlabError(
            f"score 'elbo': needs a variational model (a VAE); this is a plain {model.config.kind} "
            f"autoencoder; use one of {', '.join(usable)}")
    return kind


def needs_stats(kind: str) -> bool:
    """Whether ``kind`` needs statistics of normal training data (:func:`fit_stats`)."""
    return kind in FITTED_KINDS or kind == "combined"


def needed_parts(kind: str, parts: Sequence[str] = DEFAULT_PARTS) -> tuple[str, ...]:
    return tuple(parts) if kind == "combined" else (kind,)


# ---------------------------------------------------------------- per-pixel pieces


def error_map(x: Tensor, x_hat: Tensor) -> Tensor:
    """Per-pixel squared error averaged over channels: (N, C, H, W) x2 -> (N, H, W)."""
    return (x_hat.float() - x.float()).pow(2).mean(dim=1)


def _ssim_window(sigma: float) -> int:
    """The Gaussian window torchmetrics builds for ``sigma``: cut at 3.5 sigma (11 for sigma 1.5)."""
    return int(3.5 * sigma + 0.5) * 2 + 1


def ssim_map(x: Tensor, x_hat: Tensor, data_range: float = 2.0, sigma: float = 1.5) -> Tensor:
    """Local SSIM (Wang et al., 2004) at each position where the whole window fits, (N, C, H-k+1, W-k+1).

    torchmetrics computes it (Gaussian window of ``sigma``, k = 11 for 1.5; K1 0.01, K2 0.03) on
    the images reflect-padded by k // 2; the border rows and columns, whose windows reach into the
    padding, are cut off here, so the map and its mean are the paper's valid-window SSIM (the
    mean torchmetrics itself reports includes those borders). Images smaller than the window get
    the largest odd window k >= 3 that fits, with sigma (k - 1) / 7 (cut at 3.5 sigma as above).
    """
    x, x_hat = x.float(), x_hat.float()
    size, side = _ssim_window(sigma), min(x.shape[-2:])
    if side < 3:
        raise LatentlabError(f"ssim of {x.shape[-2]}x{x.shape[-1]} images: expected at least 3x3 pixels")
    if side < size:
        size = side - (1 - side % 2)
        sigma = (size - 1) / 7
    _, full = cast(tuple[Tensor, Tensor], structural_similarity_index_measure(
        x_hat, x, sigma=sigma, data_range=data_range, reduction="none", return_full_image=True))  # full: (N, C, H, W)
    pad = size // 2
    return full[..., pad:-pad, pad:-pad]  # (N, C, H-k+1, W-k+1)


# ---------------------------------------------------------------- fitted statistics


@dataclass
class ScoreStats:
    """What latent and combined scores learn from normal training data.

    ``density`` scores latents; ``features`` the encoder's hidden layers; ``center`` / ``scale``
    standardise log(score) of each part of a combined score (mean and standard deviation over
    the training images), which ``combine`` ("sum" or "max") joins.
    """

    density: LatentDensity | None = None
    features: FeatureDensity | None = None
    transform_features: FeatureDensity | None = None  # on the transform classifier's layers
    combine: str = "sum"
    parts: tuple[str, ...] = ()
    center: dict[str, float] = dataclasses.field(default_factory=dict)
    scale: dict[str, float] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------- scores


def _forward(model: Autoencoder, x: Tensor) -> tuple[Tensor, Tensor, DiagonalGaussian | None]:
    """(z, x_hat, posterior): the latent (posterior mean for a VAE) and its decoding."""
    posterior = model.encode(x)
    if isinstance(posterior, DiagonalGaussian):
        z = posterior.mode()
    else:
        z, posterior = posterior, None
    return z, model.decode(z), posterior


def _course(x: Tensor, x_hat: Tensor, value_range: tuple[float, float]) -> Tensor:
    lo, hi = value_range
    diff = (x_hat.float() - x.float()) * (2.0 / (hi - lo))  # the error in [-1, 1] units
    return diff.pow(2).flatten(1).sum(dim=1).sqrt()


def _elbo(model: Autoencoder, x: Tensor, x_hat: Tensor, posterior: DiagonalGaussian | None,
          samples: int, generator: torch.Generator | None) -> Tensor:
    if posterior is None:
        raise LatentlabError("score 'elbo': needs a variational model (a VAE)")
    if samples > 0:  # Monte Carlo E_q[recon] instead of the reconstruction at the posterior mean
        recon = torch.stack([(model.decode(posterior.sample(generator)).float() - x.float())
                             .pow(2).flatten(1).mean(1) for _ in range(samples)]).mean(0)
    else:
        recon = (x_hat.float() - x.float()).pow(2).flatten(1).mean(1)
    beta = float(getattr(model.config, "beta", 1.0))
    return recon + beta * posterior.kl().float() / x[0].numel()


@torch.no_grad()
def latent_and_parts(model: Autoencoder, x: Tensor, parts: Sequence[str], *,
                     value_range: tuple[float, float] = (-1.0, 1.0), stats: ScoreStats | None = None,
                     samples: int = 0, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """(z, {kind: (N,)}): the latent and several base scores (not ``combined``) from one pass; a
    two-sided part (``|mse|``) gets its kind's raw score (:func:`standardised` makes it two-sided)."""
    wanted, parts = parts, tuple(dict.fromkeys(base_kind(p) for p in parts))
    if "features" in parts and (stats is None or stats.features is None):
        raise LatentlabError("score 'features': needs feature statistics fitted on normal training data "
                             "(fit_stats, or use ReconstructionDetector)")
    if "transform-features" in parts and (stats is None or stats.transform_features is None):
        raise LatentlabError("score 'transform-features': needs feature statistics fitted on normal training "
                             "data (fit_stats, or use ReconstructionDetector)")
    with capture_if(model, "features" in parts) as feats:
        z, x_hat, posterior = _forward(model, x)
    out: dict[str, Tensor] = {}
    if any(k in TRANSFORM_KINDS for k in parts):
        net = attached(model)
        if net is None:
            raise LatentlabError("score 'transforms': this model has no transform classifier")
        surprise, layers = transform_outputs(net, x, features="transform-features" in parts)
        out["transforms"] = surprise
        if "transform-features" in parts:
            assert stats is not None and stats.transform_features is not None
            out["transform-features"] = stats.transform_features.score(layers).to(z.device)
    for kind in parts:
        if kind == "mse":  # one fused op and one contiguous mean: 3x faster than error_map's channel mean first
            out[kind] = F.mse_loss(x_hat.float(), x.float(), reduction="none").flatten(1).mean(1)
        elif kind == "course":
            out[kind] = _course(x, x_hat, value_range)
        elif kind == "ssim":
            out[kind] = 1.0 - ssim_map(x, x_hat, data_range=value_range[1] - value_range[0]).flatten(1).mean(1)
        elif kind == "elbo":
            out[kind] = _elbo(model, x, x_hat, posterior, samples, generator)
        elif kind in LATENT_KINDS:
            if stats is None or stats.density is None or stats.density.kind != kind:
                raise LatentlabError(
                    f"score '{kind}': needs a latent density fitted on normal training data "
                    f"(fit_stats, or use ReconstructionDetector)")
            out[kind] = stats.density.score(z)
        elif kind == "features":
            assert stats is not None and stats.features is not None
            out[kind] = stats.features.score(feats).to(z.device)
        elif kind not in TRANSFORM_KINDS:
            raise LatentlabError(f"score '{kind}': expected one of {', '.join(SCORE_KINDS[:-1])}")
    return z, {k: out[base_kind(k)].float() for k in wanted}


def score_parts(model: Autoencoder, x: Tensor, parts: Sequence[str], **kw: Any) -> dict[str, Tensor]:
    """Several base scores (not ``combined``) from one forward pass: kind -> (N,)."""
    return latent_and_parts(model, x, parts, **kw)[1]


def standardised(parts: dict[str, Tensor], stats: ScoreStats) -> Tensor:
    """(log score - training mean) / training std of each part, (P, N) float64; its absolute
    value for a two-sided part."""
    z = [(torch.log(parts[kind].double().clamp_min(_EPS)) - stats.center[kind]) / stats.scale[kind]
         for kind in stats.parts]
    return torch.stack([v.abs() if two_sided(kind) else v for kind, v in zip(stats.parts, z, strict=True)])


def combine(parts: dict[str, Tensor], stats: ScoreStats) -> Tensor:
    """The parts' standardised log-scores joined by ``stats.combine``: their sum, or their
    maximum (an image very unusual by one part stays unusual however normal the others find it), (N,)."""
    z = standardised(parts, stats)
    return (z.amax(0) if stats.combine == "max" else z.sum(0)).float()


def score_images(model: Autoencoder, x: Tensor, kind: str = "mse", *, parts: Sequence[str] = DEFAULT_PARTS,
                 value_range: tuple[float, float] = (-1.0, 1.0), stats: ScoreStats | None = None,
                 samples: int = 0, generator: torch.Generator | None = None) -> Tensor:
    """Anomaly score of each image of ``x`` (N, C, H, W) -> (N,); higher = more anomalous.

    ``value_range`` is the range the model's inputs were scaled to (for ``course`` and
    ``ssim``); ``stats`` (from :func:`fit_stats`) is needed by ``mahalanobis``, ``gmm`` and
    ``combined``; ``samples`` > 0 estimates the ELBO's reconstruction term by sampling.
    """
    check_kind(model, kind, parts)
    if kind == "combined":
        if stats is None or stats.parts != tuple(parts):
            raise LatentlabError(f"score 'combined' of {', '.join(parts)}: needs statistics fitted on "
                                 f"normal training data (fit_stats, or use ReconstructionDetector)")
        found = score_parts(model, x, parts, value_range=value_range, stats=stats, samples=samples,
                            generator=generator)
        return combine(found, stats)
    return score_parts(model, x, (kind,), value_range=value_range, stats=stats, samples=samples,
                       generator=generator)[kind]


# ---------------------------------------------------------------- whole data sets, streamed


def input_batches(images: Any, batch: BatchSpec, batch_size: int = 256,
                  device: torch.device | str | None = None) -> Iterator[Tensor]:
    """Model inputs (n, C, H, W) of consecutive rows of ``images`` -- a PreparedSet, or uint8
    (N, H, W, C) pixels that ``batch`` (the run's input rule) prepares -- by the input rule's
    batch stage, :func:`latentlab.data.rule.model_inputs` (noise off)."""
    from latentlab.data.rule import model_inputs

    if batch_size < 1:
        raise LatentlabError(f"--batch-size {batch_size}: expected a positive integer")
    for start in range(0, len(images), batch_size):
        rows = np.arange(start, min(start + batch_size, len(images)))
        yield model_inputs(batch, images, rows, device=device)


def stream_parts(model: Autoencoder, images: Any, batch: BatchSpec, parts: Sequence[str], *,
                 batch_size: int = 256, stats: ScoreStats | None = None, samples: int = 0,
                 progress: bool = False, what: str = "scoring") -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
    """:func:`latent_and_parts` over a whole uint8 set in batches (a rich bar when ``progress``)."""
    from latentlab.anomaly.progress import progress_bar

    device = model.device
    generator = torch.Generator(device=device).manual_seed(0) if samples > 0 else None
    with progress_bar(len(images), what, enabled=progress) as advance, packed_linears(model, batch_size):
        for x in input_batches(images, batch, batch_size, device):
            yield latent_and_parts(model, x, parts, value_range=batch.value_range, stats=stats,
                                   samples=samples, generator=generator)
            advance(len(x))
    release_free_memory()


def stream_scores(model: Autoencoder, images: Any, batch: BatchSpec, kind: str = "mse", *,
                  parts: Sequence[str] = DEFAULT_PARTS, batch_size: int = 256, stats: ScoreStats | None = None,
                  samples: int = 0, progress: bool = False) -> Iterator[np.ndarray]:
    """Scores of consecutive batches of ``images`` (uint8 NHWC, maybe a memmap), one array per batch."""
    check_kind(model, kind, parts)
    if kind == "combined" and (stats is None or stats.parts != tuple(parts)):
        raise LatentlabError("score 'combined': needs statistics fitted on normal training data (fit_stats)")
    for _, found in stream_parts(model, images, batch, needed_parts(kind, parts), batch_size=batch_size,
                                 stats=stats, samples=samples, progress=progress):
        scores = combine(found, stats) if kind == "combined" else found[kind]  # type: ignore[arg-type]
        yield scores.cpu().numpy()


def score_dataset(model: Autoencoder, images: Any, batch: BatchSpec, kind: str = "mse",
                  **kw: object) -> np.ndarray:
    """All scores of a uint8 set (N,) float32; keywords as :func:`stream_scores`."""
    chunks = list(stream_scores(model, images, batch, kind, **kw))  # type: ignore[arg-type]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


@dataclass
class Collected:
    """What one streamed pass over a set gathers for fitting: latents, pooled hidden-layer
    features (when asked for) and the scores that need no fitting."""

    z: Tensor  # (N, D)
    features: list[Tensor]  # one (N, F_l) per encoder layer; empty unless asked for
    scores: dict[str, Tensor]  # kind -> (N,)


def collect(model: Autoencoder, images: Any, batch: BatchSpec, kinds: Sequence[str], *, features: bool = False,
            batch_size: int = 256, samples: int = 0, progress: bool = False, what: str = "fitting") -> Collected:
    """One pass over ``images``: their latents, their encoder features if ``features``, and the
    scores ``kinds`` (kinds that need no fitting)."""
    zs: list[Tensor] = []
    layers: list[list[Tensor]] = []
    found: dict[str, list[Tensor]] = {k: [] for k in kinds}
    with capture_if(model, features) as feats:
        for z, chunk in stream_parts(model, images, batch, kinds, batch_size=batch_size, samples=samples,
                                     progress=progress, what=what):
            zs.append(z.float().cpu())
            if features:
                layers.append([f.cpu() for f in feats])
                feats.clear()
            for k, v in chunk.items():
                found[k].append(v.cpu())
    by_layer = [torch.cat([batch_feats[i] for batch_feats in layers]) for i in range(len(layers[0]))] if layers else []
    return Collected(torch.cat(zs), by_layer, {k: torch.cat(v) for k, v in found.items()})


def standardisation(values: dict[str, Tensor]) -> tuple[dict[str, float], dict[str, float]]:
    """(centre, scale): mean and standard deviation of each kind's log-score on normal images."""
    center, scale = {}, {}
    for k, v in values.items():
        logs = torch.log(v.double().clamp_min(_EPS))
        std = float(logs.std()) if len(logs) > 1 else 0.0
        center[k] = float(logs.mean())
        scale[k] = std if math.isfinite(std) and std > 1e-12 else 1.0
    return center, scale


def fit_stats(model: Autoencoder, images: Any, batch: BatchSpec, kind: str, *,
              parts: Sequence[str] = DEFAULT_PARTS, batch_size: int = 256, n_components: int = 8,
              samples: int = 0, combine_mode: str = "sum", standardise_on: Any = None,
              progress: bool = False) -> tuple[ScoreStats, np.ndarray]:
    """Fit what ``kind`` needs on normal training images (uint8 NHWC) in one pass: a latent
    density for ``mahalanobis`` / ``gmm``, per-layer Gaussians for ``features``, per-part
    standardisation for ``combined`` (joined by ``combine_mode``, "sum" or "max") -- on the
    training images, or on ``standardise_on`` (held-out normal images: a reconstruction error
    is lower on the images a model was trained on, so held-out ones give the fairer scale).

    Returns (stats, the training images' scores (N,)).
    """
    check_kind(model, kind, parts)
    if combine_mode not in COMBINE_MODES:
        raise LatentlabError(f"--combine {combine_mode}: expected one of {', '.join(COMBINE_MODES)}")
    wanted = needed_parts(kind, parts)
    latent = next((k for k in wanted if k in LATENT_KINDS), None)
    transformed = None  # the classifier's surprise and hidden layers, from one pass of it
    if "transform-features" in wanted:
        net = attached(model)
        assert net is not None  # check_kind
        transformed = collect_outputs(net, images, batch, batch_size=batch_size, device=model.device)
    pixel = [k for k in wanted if k not in FITTED_KINDS and not (transformed is not None and k == "transforms")]
    found = collect(model, images, batch, pixel, features="features" in wanted, batch_size=batch_size,
                    samples=samples, progress=progress)
    values = dict(found.scores)
    if transformed is not None and "transforms" in wanted:
        values["transforms"] = transformed[0].float()
    stats = ScoreStats(combine=combine_mode)
    if latent is not None:
        stats.density = fit_density(found.z, latent, n_components=n_components)
        values[latent] = stats.density.score(found.z).float()
    if "features" in wanted:
        stats.features = fit_features(found.features)
        values["features"] = stats.features.score(found.features)
    if transformed is not None:
        stats.transform_features = fit_features(transformed[1])
        values["transform-features"] = stats.transform_features.score(transformed[1])
    if kind != "combined":
        return stats, values[kind].numpy()
    if standardise_on is None:
        stats.center, stats.scale = standardisation({k: values[k] for k in wanted})
    else:
        held: dict[str, list[Tensor]] = {k: [] for k in wanted}
        for _, chunk in stream_parts(model, standardise_on, batch, wanted, batch_size=batch_size, stats=stats,
                                     samples=samples, progress=progress, what="standardising"):
            for k, v in chunk.items():
                held[k].append(v.cpu())
        stats.center, stats.scale = standardisation({k: torch.cat(v) for k, v in held.items()})
    stats.parts = tuple(wanted)
    return stats, combine(values, stats).numpy()
