"""Loss functions as pure functions returning named terms; every term is logged by the trainer.

The VAE objective is the standard negative ELBO with a fixed-variance Gaussian likelihood,
divided by the number of pixels so that its scale (and a good learning rate) matches the plain
autoencoder's mean squared error::

    total = mse(x_hat, x) + beta * KL(q(z|x) || N(0, I)) / (C * H * W)

where ``KL = 0.5 * sum(exp(logvar) - (1 + logvar) + mu^2)``, the lecture's
``sum(exp(sigma) - (1 + sigma) + m^2)`` with ``sigma = logvar`` (the lecture drops the 1/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from latentlab.models.base import AEOutput


@dataclass
class LossTerms:
    """``total`` is what is minimised; ``recon`` (mean squared error per pixel) and ``kl`` (per
    image, summed over latent elements; VAEs only) are logged beside it."""

    total: Tensor
    recon: Tensor
    kl: Tensor | None = None

    def items(self) -> dict[str, Tensor]:
        out = {"loss": self.total, "recon": self.recon}
        if self.kl is not None:
            out["kl"] = self.kl
        return out


def per_image_mse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Mean squared error of each image, (N,), computed in float32."""
    return (x_hat.float() - x.float()).pow(2).flatten(1).mean(dim=1)


def autoencoder_loss(out: AEOutput, target: Tensor, beta: float = 1.0) -> LossTerms:
    """MSE for a plain autoencoder; MSE + beta * KL / pixels when ``out`` has a posterior."""
    recon = F.mse_loss(out.x_hat.float(), target.float())
    if out.posterior is None:
        return LossTerms(total=recon, recon=recon)
    kl = out.posterior.kl().float().mean()
    pixels = target[0].numel()
    return LossTerms(total=recon + beta * kl / pixels, recon=recon, kl=kl)


def model_loss(model: torch.nn.Module, x_in: Tensor, target: Tensor) -> LossTerms:
    """Forward ``x_in`` (maybe noisy) and compare with the clean ``target``; beta from the model."""
    out = model(x_in)
    beta = float(getattr(getattr(model, "config", None), "beta", 1.0))
    if hasattr(model, "module"):  # a Fabric/DDP wrapper: the config lives on the inner module
        beta = float(getattr(getattr(model.module, "config", None), "beta", beta))
    return autoencoder_loss(out, target, beta)
