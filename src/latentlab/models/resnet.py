"""Residual convolutional backbone (He et al., "Deep Residual Learning for Image Recognition",
CVPR 2016, https://arxiv.org/abs/1512.03385), for 64x64 images: ``--backbone resnet``.

Each encoder stage halves the image with a strided conv (kernel 4, stride 2, padding 1, as the
course's conv AE) and refines it with ``blocks`` residual blocks (conv3x3 - BN - act - conv3x3
- BN, plus the input, then act); the decoder mirrors it with transposed convs. Default widths
32-64-128-256 take a 64x64 image to a (256, 4, 4) map, which is the latent (4,096 elements) as
the conv backbone's map is; ``latent_dim`` adds a Linear bottleneck to a flat code (widths
32-64-48 give hw8-conv's (48, 8, 8) latent). BatchNorm is on by default (residual stacks train
poorly without it). Every conv family uses it through
:class:`ResNetConfig` (AEs) or :class:`ResNetVAEConfig` (VAEs).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from latentlab.errors import LatentlabError
from latentlab.models.base import ACTIVATIONS, activation, out_activation
from latentlab.models.config import Widths, check_choice
from latentlab.models.conv import ConvAutoencoder, ConvConfig, bottleneck_out, feature_shape
from latentlab.models.vae import VariationalAutoencoder, check_beta

# ---------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class ResNetConfig(ConvConfig):
    kind: str = "resnet"
    channels: Widths = (32, 64, 128, 256)
    latent_dim: int | None = None  # None: the last feature map is the latent
    batchnorm: bool = True
    blocks: int = 1  # residual blocks per stage

    def __post_init__(self) -> None:
        super().__post_init__()  # shape, widths, conv stack fits the input
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or self.blocks < 0:
            raise LatentlabError(f"blocks {self.blocks!r}: expected an integer >= 0 (residual blocks per stage)")


@dataclass(frozen=True, kw_only=True)
class ResNetVAEConfig(ResNetConfig):
    """The residual backbone with Gaussian heads (Linear, or 1x1 convs on a map latent) and ``beta``."""

    kind: str = "vae-resnet"
    head_activation: str = "none"
    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("head activation", self.head_activation, ("none", *ACTIVATIONS))
        check_beta(self.beta)


# ---------------------------------------------------------------- layers


class ResBlock(nn.Module):
    """``act(x + BN(conv3x3(act(BN(conv3x3(x))))))``, shape-preserving."""

    def __init__(self, width: int, config: ResNetConfig) -> None:
        super().__init__()

        def norm() -> list[nn.Module]:
            return [nn.BatchNorm2d(width)] if config.batchnorm else []

        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), *norm(), activation(config.activation),
                                  nn.Conv2d(width, width, 3, padding=1), *norm())
        self.act = activation(config.activation)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.act(x + self.body(x))  # (N, width, h, w)
        return out


def res_down_stack(in_channels: int, config: ResNetConfig) -> list[nn.Module]:
    """Per width: strided conv down, BN, act, then ``blocks`` residual blocks."""
    layers: list[nn.Module] = []
    for a, b in zip((in_channels, *config.channels[:-1]), config.channels, strict=True):
        layers.append(nn.Conv2d(a, b, config.kernel, stride=config.stride, padding=config.padding))
        if config.batchnorm:
            layers.append(nn.BatchNorm2d(b))
        layers.append(activation(config.activation))
        layers += [ResBlock(b, config) for _ in range(config.blocks)]
    return layers


def res_up_stack(out_channels: int, config: ResNetConfig) -> list[nn.Module]:
    """The mirror of :func:`res_down_stack`, ending in the output activation."""
    widths = (*reversed(config.channels), out_channels)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers += [ResBlock(a, config) for _ in range(config.blocks)]
        layers.append(nn.ConvTranspose2d(a, b, config.kernel, stride=config.stride, padding=config.padding))
        if i < len(widths) - 2:
            if config.batchnorm:
                layers.append(nn.BatchNorm2d(b))
            layers.append(activation(config.activation))
    layers.append(out_activation(config.out_activation))
    return layers


# ---------------------------------------------------------------- models


class ResNetAutoencoder(ConvAutoencoder):
    """The conv autoencoder with residual stacks (the same bottleneck and feature-map latent)."""

    kind = "resnet"

    @staticmethod
    def stacks(config: Any) -> tuple[list[nn.Module], list[nn.Module]]:
        return res_down_stack(config.in_shape[0], config), res_up_stack(config.in_shape[0], config)


class ResNetVAE(VariationalAutoencoder):
    kind = "vae-resnet"

    def __init__(self, config: ResNetVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_shape = feature_shape(config)
        c, h, w = self.feature_shape

        def act() -> list[nn.Module]:
            return [] if config.head_activation == "none" else [activation(config.head_activation)]

        decoder = res_up_stack(config.in_shape[0], config)
        if config.latent_dim is None:
            self.encoder = nn.Sequential(*res_down_stack(config.in_shape[0], config))
            self.mu_head = nn.Sequential(nn.Conv2d(c, c, 1), *act())
            self.logvar_head = nn.Sequential(nn.Conv2d(c, c, 1), *act())
            self.latent_dim = c * h * w
        else:
            self.encoder = nn.Sequential(*res_down_stack(config.in_shape[0], config), nn.Flatten())
            self.mu_head = nn.Sequential(nn.Linear(c * h * w, config.latent_dim), *act())
            self.logvar_head = nn.Sequential(nn.Linear(c * h * w, config.latent_dim), *act())
            self.latent_dim = config.latent_dim
            decoder = bottleneck_out(self.feature_shape, config.latent_dim, config.activation) + decoder
        self.decoder = nn.Sequential(*decoder)

    def _decoder_input(self, z: Tensor) -> Tensor:
        if self.config.latent_dim is None:
            return z.reshape(z.shape[0], *self.feature_shape)
        return z
