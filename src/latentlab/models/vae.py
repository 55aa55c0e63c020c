"""Variational autoencoders (Kingma & Welling, 2014), fully connected and convolutional.

Course preset ``hw8-vae``: a conv trunk 3-12-24, two conv heads 24-48 for ``mu`` and
``logvar`` (kept with the course code's ReLU on both heads, ``head_activation="relu"``; the
generic ``vae-conv`` kind has none), and the ``hw8-conv`` decoder. ``beta`` weighs the KL term
(beta-VAE, Higgins et al., 2017); see :class:`latentlab.models.base.DiagonalGaussian` for how the
lecture's ``c = exp(sigma) * e + m`` maps onto ``mu + exp(logvar / 2) * e``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from latentlab.errors import LatentlabError
from latentlab.models.base import (
    ACTIVATIONS,
    AEOutput,
    Autoencoder,
    DiagonalGaussian,
    activation,
    flat_size,
    mlp,
    out_activation,
)
from latentlab.models.config import Widths, check_choice
from latentlab.models.conv import (
    ConvConfig,
    bottleneck_out,
    conv_stack,
    deconv_stack,
    feature_shape,
)
from latentlab.models.fcn import FCNConfig


def check_beta(beta: float) -> None:
    if not beta >= 0 or beta != beta or beta == float("inf"):
        raise LatentlabError(f"beta {beta}: expected a finite number >= 0")


class VariationalAutoencoder(Autoencoder):
    """Shared VAE verbs: ``encode`` gives a posterior; ``forward`` samples it while training."""

    is_variational = True
    mu_head: nn.Module
    logvar_head: nn.Module

    @property
    def beta(self) -> float:
        return float(self.config.beta)

    def encode(self, x: Tensor) -> DiagonalGaussian:
        h = self.encoder(self._encoder_input(x))
        return DiagonalGaussian(self.mu_head(h).flatten(1), self.logvar_head(h).flatten(1))

    def forward(self, x: Tensor, sample: bool | None = None) -> AEOutput:
        posterior = self.encode(x)
        sample = self.training if sample is None else sample
        z = posterior.sample() if sample else posterior.mode()
        return AEOutput(x_hat=self.decode(z), z=z, posterior=posterior)


# ---------------------------------------------------------------- fully connected


@dataclass(frozen=True, kw_only=True)
class FCNVAEConfig(FCNConfig):
    """The fully connected backbone of :class:`FCNConfig` with Gaussian heads and ``beta``."""

    kind: str = "vae-fcn"
    hidden: Widths = (512, 128)
    latent_dim: int = 16
    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()  # shape, widths, latent size, activations
        check_beta(self.beta)


class FCNVAE(VariationalAutoencoder):
    kind = "vae-fcn"

    def __init__(self, config: FCNVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        n = flat_size(config.in_shape)
        self.encoder = nn.Sequential(*mlp([n, *config.hidden], config.activation, config.batchnorm,
                                          final_act=True))
        self.mu_head = nn.Linear(config.hidden[-1] if config.hidden else n, config.latent_dim)
        self.logvar_head = nn.Linear(config.hidden[-1] if config.hidden else n, config.latent_dim)
        self.decoder = nn.Sequential(
            *mlp([config.latent_dim, *config.decoder_sizes, n], config.activation, config.batchnorm),
            out_activation(config.out_activation),
        )

    def _encoder_input(self, x: Tensor) -> Tensor:
        return x.flatten(1)


# ---------------------------------------------------------------- convolutional


@dataclass(frozen=True, kw_only=True)
class ConvVAEConfig(ConvConfig):
    """The conv backbone of :class:`ConvConfig` with Gaussian heads and ``beta``.

    ``latent_dim=None``: conv heads, the (C, h, w) map is the latent (course)."""

    kind: str = "vae-conv"
    head_activation: str = "none"  # "relu" reproduces the course code
    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()  # shape, widths, conv stack, activations
        check_choice("head activation", self.head_activation, ("none", *ACTIVATIONS))
        check_beta(self.beta)


class ConvVAE(VariationalAutoencoder):
    kind = "vae-conv"

    def __init__(self, config: ConvVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_shape = feature_shape(config)
        c, h, w = self.feature_shape

        def head_act() -> list[nn.Module]:
            return [] if config.head_activation == "none" else [activation(config.head_activation)]

        if config.latent_dim is None:
            self.encoder = nn.Sequential(*conv_stack(config.in_shape[0], config.channels[:-1], config))
            prev = config.channels[-2] if len(config.channels) > 1 else config.in_shape[0]

            def head() -> nn.Module:
                return nn.Sequential(nn.Conv2d(prev, c, config.kernel, stride=config.stride,
                                               padding=config.padding), *head_act())
            self.latent_dim = c * h * w
            decoder = deconv_stack(config.channels, config.in_shape[0], config)
        else:
            self.encoder = nn.Sequential(*conv_stack(config.in_shape[0], config.channels, config),
                                         nn.Flatten())

            def head() -> nn.Module:
                return nn.Sequential(nn.Linear(c * h * w, config.latent_dim or 0), *head_act())
            self.latent_dim = config.latent_dim
            decoder = bottleneck_out(self.feature_shape, config.latent_dim, config.activation) + \
                deconv_stack(config.channels, config.in_shape[0], config)
        self.mu_head = head()
        self.logvar_head = head()
        self.decoder = nn.Sequential(*decoder)

    def _decoder_input(self, z: Tensor) -> Tensor:
        if self.config.latent_dim is None:
            return z.reshape(z.shape[0], *self.feature_shape)
        return z


