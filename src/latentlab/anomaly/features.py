"""The ``features`` score: how unusual the encoder's hidden-layer statistics of an image are.

A latent density only sees what the bottleneck kept; the encoder's hidden layers also respond
to colour, texture and noise that the bottleneck throws away. As Lee et al. (NeurIPS 2018,
"A simple unified framework for detecting out-of-distribution samples") score the features of
every layer of a trained network, and Rippel et al. (ICPR 2020, "Modeling the distribution of
normal data in pre-trained deep features") fit one Gaussian per layer to globally pooled
features, this score

1. captures the output of every activation module inside ``model.encoder`` (forward hooks;
   nothing in the model changes),
2. pools each to per-channel statistics: the mean and standard deviation over positions of a
   convolutional map (N, C, h, w) -> (N, 2C); a fully connected activation (N, H) as it is,
3. fits one Gaussian per layer on the normal training images (Ledoit-Wolf shrunk covariance),
4. scores an image by the sum over layers of its Mahalanobis distance divided by the square root
   of the layer's size (so each layer counts about equally: a normal image's distance grows as
   the square root of the dimension).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from latentlab.errors import LatentlabError
from latentlab.models.base import ACTIVATIONS, Autoencoder

_ACTIVATION_TYPES = tuple(ACTIVATIONS.values())


def feature_layers(model: Autoencoder) -> list[nn.Module]:
    """The activation modules of the encoder, in order (empty for an encoder without hidden layers)."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        return []
    return [m for m in encoder.modules() if isinstance(m, _ACTIVATION_TYPES)]


def has_features(model: Autoencoder) -> bool:
    return bool(feature_layers(model))


@contextlib.contextmanager
def capture(model: Autoencoder) -> Iterator[list[Tensor]]:
    """Yield a list that each encoder forward pass fills with the pooled statistics of every
    hidden layer ((N, F_l) float32 tensors, one per layer); hooks are removed on exit."""
    found: list[Tensor] = []

    def hook(module: nn.Module, inputs: object, output: Tensor) -> None:
        found.append(pool(output))

    handles = [m.register_forward_hook(hook) for m in feature_layers(model)]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


def capture_if(model: Autoencoder, enabled: bool) -> contextlib.AbstractContextManager[list[Tensor]]:
    """:func:`capture` when ``enabled``, else a context yielding a list nothing fills."""
    empty: list[Tensor] = []
    return capture(model) if enabled else contextlib.nullcontext(empty)


def pool(a: Tensor) -> Tensor:
    """(N, C, h, w) -> per-channel mean and std (N, 2C); (N, H) -> itself; float32."""
    a = a.detach().float()
    if a.ndim == 2:
        return a
    flat = a.flatten(2)  # (N, C, h*w)
    if flat.shape[-1] < 2:
        return flat.flatten(1)
    return torch.cat([flat.mean(-1), flat.std(-1)], dim=1)


@dataclass
class FeatureDensity:
    """One Gaussian per hidden layer; ``score(feats)`` -> (N,), higher = less like the normal images."""

    means: list[Tensor]  # (F_l,) per layer, float64
    precisions: list[Tensor]  # (F_l, F_l)

    def score(self, feats: list[Tensor]) -> Tensor:
        if len(feats) != len(self.means):
            raise LatentlabError(f"score 'features': {len(feats)} layers captured, the density has {len(self.means)}")
        total = torch.zeros(len(feats[0]), dtype=torch.float64)
        for f, mean, precision in zip(feats, self.means, self.precisions, strict=True):
            d = f.double().cpu() - mean  # (N, F)
            total += ((d @ precision) * d).sum(1).clamp_min(0).sqrt() / mean.numel() ** 0.5
        return total.float()


def fit_features(feats: list[Tensor]) -> FeatureDensity:
    """Fit the per-layer Gaussians on the pooled features of normal training images."""
    from sklearn.covariance import LedoitWolf

    if not feats:
        raise LatentlabError("score 'features': the encoder has no hidden layers to take features from")
    means, precisions = [], []
    for f in feats:
        values = f.double().cpu().numpy()
        if len(values) < 2 or not np.isfinite(values).all():
            raise LatentlabError(f"score 'features': expected at least 2 finite training feature rows, got "
                                 f"{len(values)}")
        lw = LedoitWolf().fit(values)
        means.append(torch.from_numpy(lw.location_))
        precisions.append(torch.from_numpy(lw.precision_))
    return FeatureDensity(means, precisions)
