"""Denoising autoencoder: Vincent, Larochelle, Bengio & Manzagol, "Extracting and Composing Robust
Features with Denoising Autoencoders", ICML 2008, https://doi.org/10.1145/1390156.1390294
(Gaussian corruption: Vincent et al., JMLR 11, 2010, https://jmlr.org/papers/v11/vincent10a.html).

A plain autoencoder (any backbone) trained to reconstruct the *clean* image from a corrupted
one. The corruption belongs to the model: its config carries ``noise_std``, and ``forward`` adds
Gaussian noise of that std (in model-input units, clamped to the output range) while training
only; in eval mode it is the plain autoencoder. So ``--model denoising`` needs no other option,
and a saved run says what it was trained with. (The input rule's ``--noise`` still works for any
kind and adds to it.) Default ``noise_std`` 0.1: a light corruption, within the 0.05-0.5 range of
the JMLR paper's Gaussian-noise experiments (on [0, 1] data).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentlab.models.backbones import AE_BACKBONES, on_backbones
from latentlab.models.base import AEOutput, Autoencoder
from latentlab.models.config import OUTPUT_RANGES, ModelConfig, check_weight


@dataclass(frozen=True, kw_only=True)
class DenoisingFields(ModelConfig):
    """a denoising autoencoder (Vincent et al., 2008): Gaussian input corruption while training."""

    noise_std: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_weight("noise std", self.noise_std)


class DenoisingMixin(Autoencoder):
    """Denoising autoencoder: corrupts its input while training, reconstructs the clean image."""

    def forward(self, x: Tensor) -> AEOutput:
        std = float(self.config.noise_std)
        if self.training and std > 0:
            x = x + std * torch.randn_like(x)
            lo_hi = OUTPUT_RANGES.get(self.config.out_activation)
            if lo_hi is not None:
                x = x.clamp(*lo_hi)
        return super().forward(x)


KINDS = on_backbones("denoising", DenoisingFields, DenoisingMixin, AE_BACKBONES)
