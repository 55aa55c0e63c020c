"""Multi-encoder fully connected autoencoder: several encoders, each giving part of the latent.

From the course's strong baselines (preset ``fcn-multi3``): three BatchNorm MLP encoders,
12288-3000-3000-1000-1, 12288-1000-100-100-100-1 and 12288-2500-1500-500-100-1, each giving one
latent scalar, concatenated into a 3-element code and decoded by 3-100-500-1500-2500-12288 + Tanh.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder, flat_size, mlp, out_activation
from latentlab.models.config import ModelConfig, Widths, check_positive


@dataclass(frozen=True, kw_only=True)
class MultiFCNConfig(ModelConfig):
    kind: str = "multi-fcn"
    batchnorm: bool = True  # in the encoders
    encoders: tuple[Widths, ...] = ((3000, 3000, 1000), (1000, 100, 100, 100), (2500, 1500, 500, 100))
    latent_per_encoder: int = 1
    decoder_hidden: Widths = (100, 500, 1500, 2500)
    decoder_batchnorm: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()  # shape, widths (of every encoder too), activations
        if not self.encoders:
            raise LatentlabError("multi-encoder model: expected at least one encoder")
        check_positive("latent per encoder", [self.latent_per_encoder])


class ParallelEncoders(nn.Module):
    """Runs every branch on the same flat input and concatenates their codes: (N, sum of parts)."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class MultiFCNAutoencoder(Autoencoder):
    kind = "multi-fcn"

    def __init__(self, config: MultiFCNConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_per_encoder * len(config.encoders)
        n = flat_size(config.in_shape)
        self.encoder = ParallelEncoders([
            nn.Sequential(*mlp([n, *hidden, config.latent_per_encoder], config.activation, config.batchnorm))
            for hidden in config.encoders
        ])
        self.decoder = nn.Sequential(
            *mlp([self.latent_dim, *config.decoder_hidden, n], config.activation, config.decoder_batchnorm),
            out_activation(config.out_activation),
        )

    def _encoder_input(self, x: Tensor) -> Tensor:
        return x.flatten(1)
