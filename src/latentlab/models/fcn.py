"""Fully connected autoencoder, as in the course sample code (``fcn_autoencoder``).

The course model is 12288-128-64-12-3 with a mirrored decoder and Tanh on the output
(preset ``hw8-fcn``); any hidden list, BatchNorm and activation can be chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from latentlab.models.base import (
    ACTIVATIONS,
    OUT_ACTIVATIONS,
    Autoencoder,
    check_choice,
    check_in_shape,
    check_positive,
    flat_size,
    mlp,
    out_activation,
)


@dataclass(frozen=True)
class FCNConfig:
    in_shape: tuple[int, int, int] = (3, 64, 64)
    hidden: tuple[int, ...] = (128, 64, 12)
    latent_dim: int = 3
    decoder_hidden: tuple[int, ...] | None = None  # None: the encoder's hidden list reversed
    batchnorm: bool = False
    activation: str = "relu"
    out_activation: str = "tanh"
    kind: str = "fcn"

    def __post_init__(self) -> None:
        check_in_shape(self.in_shape)
        check_positive("hidden sizes", list(self.hidden))
        check_positive("latent size", [self.latent_dim])
        if self.decoder_hidden is not None:
            check_positive("decoder hidden sizes", list(self.decoder_hidden))
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("output activation", self.out_activation, OUT_ACTIVATIONS)

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
