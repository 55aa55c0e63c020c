"""Reconstruct images and apply latent edits: the course's ``z[0][0] *= 3`` as one call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from latentlab.latent.edits import Edit, EditChain
from latentlab.models.base import Autoencoder


@dataclass
class EditResult:
    """For a batch x (N, C, H, W): its latent ``z`` (N, D), reconstruction, and per edit the
    edited latent and decoded image."""

    x: Tensor
    z: Tensor
    x_hat: Tensor
    edits: list[Edit | EditChain]
    z_edited: list[Tensor]
    x_edited: list[Tensor]


@torch.no_grad()
def reconstruct(model: Autoencoder, x: Tensor) -> tuple[Tensor, Tensor]:
    """(z, x_hat): the latent (posterior mean for a VAE) and its decoding."""
    z = model.embed(x)
    return z, model.decode(z)


@torch.no_grad()
def edit_images(model: Autoencoder, x: Tensor, edits: Sequence[Edit | EditChain]) -> EditResult:
    """Decode each edit of the latent of ``x`` separately (each edit starts from the original z)."""
    z, x_hat = reconstruct(model, x)
    for e in edits:
        e.positions(z.shape[1])  # index errors before any work
    z_edited = [e.apply(z) for e in edits]
    return EditResult(x=x, z=z, x_hat=x_hat, edits=list(edits), z_edited=z_edited,
                      x_edited=[model.decode(ze) for ze in z_edited])
