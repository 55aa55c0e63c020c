"""Sparse autoencoder: Andrew Ng, "Sparse autoencoder", CS294A Lecture notes, Stanford, 2011,
https://web.stanford.edu/class/cs294a/sparseAutoencoder_2011new.pdf

A plain autoencoder (any backbone) whose code is pushed to be sparse: few elements active per
image. ``sparsity="kl"`` (default) is Ng's penalty ``beta * sum_j KL(rho || rho_hat_j)``, with
``rho_hat_j`` the batch-mean activation of element j -- here ``sigmoid(z_j)``, since Ng's hidden
units are sigmoids and latentlab's codes are linear. ``sparsity="l1"`` is ``beta * sum_j |z_j|``
(the L1 form of Goodfellow et al., Deep Learning, 2016, sec. 14.2.1).

Defaults from the notes: ``sparsity_weight`` (beta) 3, target activation ``rho`` 0.05. The term
is divided by the pixel count (see :mod:`latentlab.losses`) and logged as ``sparsity``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from latentlab import losses
from latentlab.errors import LatentlabError
from latentlab.models.backbones import AE_BACKBONES, on_backbones
from latentlab.models.base import AEOutput, Autoencoder
from latentlab.models.config import ModelConfig, check_choice, check_weight


@dataclass(frozen=True, kw_only=True)
class SparseFields(ModelConfig):
    """a sparse autoencoder (Ng, 2011): KL or L1 sparsity on the code."""

    sparsity: str = "kl"  # kl (Ng) or l1
    sparsity_weight: float = 3.0  # beta in the notes
    rho: float = 0.05  # target mean activation (kl only)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("sparsity", self.sparsity, ("kl", "l1"))
        check_weight("sparsity weight", self.sparsity_weight)
        if isinstance(self.rho, bool) or not isinstance(self.rho, (int, float)) or not 0 < self.rho < 1:
            raise LatentlabError(f"rho {self.rho!r}: expected a target activation between 0 and 1")


class SparseMixin(Autoencoder):
    """Sparse autoencoder: the reconstruction loss plus a sparsity penalty on the code."""

    def loss_terms(self, out: AEOutput, x_in: Tensor, target: Tensor) -> losses.LossTerms:
        cfg = self.config
        penalty = losses.sparsity_kl(out.z, cfg.rho) if cfg.sparsity == "kl" else losses.sparsity_l1(out.z)
        return losses.base_terms(self, out, target).add("sparsity", penalty, cfg.sparsity_weight / target[0].numel())


KINDS = on_backbones("sparse", SparseFields, SparseMixin, AE_BACKBONES)
