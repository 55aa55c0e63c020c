"""Fully connected autoencoder, as in the course sample code (``fcn_autoencoder``).

The course model is 12288-128-64-12-3 with a mirrored decoder and Tanh on the output
(preset ``hw8-fcn``); any hidden list, BatchNorm and activation can be chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from latentlab.models.base import Autoencoder, flat_size, mlp, out_activation
from latentlab.models.config import ModelConfig, Widths, check_positive


@dataclass(frozen=True, kw_only=True)
class FCNConfig(ModelConfig):
    kind: str = "fcn"
    hidden: Widths = (128, 64, 12)
    latent_dim: int = 3
    decoder_hidden: Widths | None = None  # None: the encoder's hidden list reversed

    def __post_init__(self) -> None:
        super().__post_init__()  # shape, widths, activations
        check_positive("latent size", [self.latent_dim])

    @property
    def decoder_sizes(self) -> tuple[int, ...]:
        return tuple(reversed(self.hidden)) if self.decoder_hidden is None else self.decoder_hidden


class FCNAutoencoder(Autoencoder):
    kind = "fcn"

    def __init__(self, config: FCNConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        n = flat_size(config.in_shape)
        self.encoder = nn.Sequential(
            *mlp([n, *config.hidden, config.latent_dim], config.activation, config.batchnorm))
        self.decoder = nn.Sequential(
            *mlp([config.latent_dim, *config.decoder_sizes, n], config.activation, config.batchnorm),
            out_activation(config.out_activation),
        )

    def _encoder_input(self, x: Tensor) -> Tensor:
        return x.flatten(1)  # (N, C*H*W)
