"""Convolutional autoencoder, as in the course sample code (``conv_autoencoder``).

Course preset ``hw8-conv``: Conv 3-12-24-48 (kernel 4, stride 2, padding 1, ReLU), mirrored
ConvTranspose decoder, Tanh. The latent is the (48, 8, 8) feature map, flattened to 3,072
elements by ``encode``; with ``latent_dim`` set, a Linear bottleneck gives a small flat code.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder, activation, out_activation
from latentlab.models.config import ModelConfig, Widths, check_positive


@dataclass(frozen=True, kw_only=True)
class ConvConfig(ModelConfig):
    kind: str = "conv"
    channels: Widths = (12, 24, 48)
    kernel: int = 4
    stride: int = 2
    padding: int = 1
    latent_dim: int | None = None  # None: the last feature map is the latent

    def __post_init__(self) -> None:
        super().__post_init__()  # shape, widths, activations
        if not self.channels:
            raise LatentlabError("channels (): expected at least one conv layer width")
        check_positive("kernel/stride", [self.kernel, self.stride])
        if not isinstance(self.padding, int) or isinstance(self.padding, bool) or self.padding < 0:
            raise LatentlabError(f"padding {self.padding!r}: expected an integer >= 0")
        if self.latent_dim is not None:
            check_positive("latent size", [self.latent_dim])
        feature_shape(self)  # raises when the stack does not fit the input


def feature_shape(config: ConvConfig) -> tuple[int, int, int]:
    """(C, h, w) after the conv stack; checks that the mirrored stack gives back the input size."""
    _, h, w = config.in_shape
    k, s, p = config.kernel, config.stride, config.padding
    sizes = [(h, w)]
    for _ in config.channels:
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if h <= 0 or w <= 0:
            raise LatentlabError(
                f"conv channels {config.channels}: too many stride-{s} layers for a "
                f"{config.in_shape[1]}x{config.in_shape[2]} input")
        sizes.append((h, w))
    back = sizes[-1]
    for _ in config.channels:
        back = ((back[0] - 1) * s - 2 * p + k, (back[1] - 1) * s - 2 * p + k)
    if back != sizes[0]:
        raise LatentlabError(
            f"conv channels {config.channels} with a {sizes[0][0]}x{sizes[0][1]} input: the decoder would "
            f"give {back[0]}x{back[1]}; expected a height and width divisible by {s ** len(config.channels)}")
    return (config.channels[-1], h, w)


def conv_stack(in_channels: int, channels: tuple[int, ...], config: ConvConfig) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip((in_channels, *channels[:-1]), channels, strict=True):
        layers.append(nn.Conv2d(a, b, config.kernel, stride=config.stride, padding=config.padding))
        if config.batchnorm:
            layers.append(nn.BatchNorm2d(b))
        layers.append(activation(config.activation))
    return layers


def deconv_stack(channels: tuple[int, ...], out_channels: int, config: ConvConfig) -> list[nn.Module]:
    """The mirror of :func:`conv_stack`, ending in the output activation."""
    widths = (*reversed(channels), out_channels)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.ConvTranspose2d(a, b, config.kernel, stride=config.stride, padding=config.padding))
        if i < len(widths) - 2:
            if config.batchnorm:
                layers.append(nn.BatchNorm2d(b))
            layers.append(activation(config.activation))
    layers.append(out_activation(config.out_activation))
    return layers


def bottleneck_in(features: tuple[int, int, int], latent_dim: int) -> list[nn.Module]:
    return [nn.Flatten(), nn.Linear(features[0] * features[1] * features[2], latent_dim)]


def bottleneck_out(features: tuple[int, int, int], latent_dim: int, act: str) -> list[nn.Module]:
    return [nn.Linear(latent_dim, features[0] * features[1] * features[2]), activation(act),
            nn.Unflatten(1, features)]


class ConvAutoencoder(Autoencoder):
    kind = "conv"

    def __init__(self, config: ConvConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_shape = feature_shape(config)
        c, h, w = self.feature_shape
        encoder, decoder = self.stacks(config)
        if config.latent_dim is not None:
            encoder += bottleneck_in(self.feature_shape, config.latent_dim)
            decoder = bottleneck_out(self.feature_shape, config.latent_dim, config.activation) + decoder
        self.latent_dim = config.latent_dim or c * h * w
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    @staticmethod
    def stacks(config: Any) -> tuple[list[nn.Module], list[nn.Module]]:
        """The encoder's layers down to the feature map and the decoder's back up (a backbone's own)."""
        return conv_stack(config.in_shape[0], config.channels, config), deconv_stack(config.channels,
                                                                                    config.in_shape[0], config)

    def _decoder_input(self, z: Tensor) -> Tensor:
        if self.config.latent_dim is None:
            return z.reshape(z.shape[0], *self.feature_shape)  # (N, C, h, w)
        return z
