"""beta-VAE: Higgins, Matthey, Pal, Burgess, Glorot, Botvinick, Mohamed & Lerchner, "beta-VAE:
Learning Basic Visual Concepts with a Constrained Variational Framework", ICLR 2017,
https://openreview.net/forum?id=Sy2fzU9gl

The VAE (:mod:`latentlab.models.vae`) with the KL term weighted by ``beta > 1``, trading
reconstruction for a more factorised (disentangled) latent. A named kind so that ``latentlab
models`` lists it and ``compare`` can train it; ``--model vae --beta 4`` is the same model under
the ``vae`` name. Default ``beta`` 4, the paper's value for its 2D-shapes (dSprites) results.
"""

from __future__ import annotations

from dataclasses import dataclass

from latentlab.models.backbones import VAE_BACKBONES, on_backbones
from latentlab.models.base import Autoencoder
from latentlab.models.config import ModelConfig


@dataclass(frozen=True, kw_only=True)
class BetaVAEFields(ModelConfig):
    """a beta-VAE (Higgins et al., 2017): the KL weighted by beta (default 4)."""

    beta: float = 4.0


class BetaVAEMixin(Autoencoder):
    """beta-VAE: the VAE's negative ELBO with beta * KL."""


KINDS = on_backbones("beta-vae", BetaVAEFields, BetaVAEMixin, VAE_BACKBONES)
