"""Contractive autoencoder: Rifai, Vincent, Muller, Glorot & Bengio, "Contractive Auto-Encoders:
Explicit Invariance During Feature Extraction", ICML 2011,
https://icml.cc/2011/papers/455_icmlpaper.pdf

A plain autoencoder (any backbone) penalised by the squared Frobenius norm of the encoder's
Jacobian ``||dz/dx||_F^2``, so the code changes little under small input changes. The paper's
closed form holds for one sigmoid layer; here the norm is estimated for any encoder by random
projections (``E_v ||v^T J||^2`` with ``v ~ N(0, I)``, ``projections`` of them, one extra encoder
pass and backward each): unbiased, and about 1.5x the cost of a plain step.

Default ``contractive_weight`` (lambda) 0.1: the paper chooses lambda by validation; 0.1 is the
usual starting value. The term is divided by the pixel count (see :mod:`latentlab.losses`) and
logged as ``contractive``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from latentlab import losses
from latentlab.errors import LatentlabError
from latentlab.models.backbones import AE_BACKBONES, on_backbones
from latentlab.models.base import AEOutput, Autoencoder
from latentlab.models.config import ModelConfig, check_weight


@dataclass(frozen=True, kw_only=True)
class ContractiveFields(ModelConfig):
    """a contractive autoencoder (Rifai et al., 2011): the encoder's Jacobian norm penalised."""

    contractive_weight: float = 0.1  # lambda
    projections: int = 1  # random projections per image for the Jacobian norm

    def __post_init__(self) -> None:
        super().__post_init__()
        check_weight("contractive weight", self.contractive_weight)
        if isinstance(self.projections, bool) or not isinstance(self.projections, int) or self.projections < 1:
            raise LatentlabError(f"projections {self.projections!r}: expected an integer >= 1")


class ContractiveMixin(Autoencoder):
    """Contractive autoencoder: the reconstruction loss plus lambda * ||dz/dx||_F^2."""

    def loss_terms(self, out: AEOutput, x_in: Tensor, target: Tensor) -> losses.LossTerms:
        terms = losses.base_terms(self, out, target)
        penalty = losses.jacobian_frobenius(self.embed, x_in, self.config.projections)
        return terms.add("contractive", penalty, self.config.contractive_weight / target[0].numel())


KINDS = on_backbones("contractive", ContractiveFields, ContractiveMixin, AE_BACKBONES)
