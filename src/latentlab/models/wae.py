"""Wasserstein autoencoder (WAE-MMD): Tolstikhin, Bousquet, Gelly & Schoelkopf, "Wasserstein
Auto-Encoders", ICLR 2018, https://arxiv.org/abs/1711.01558

A deterministic autoencoder (any backbone) whose *aggregate* code distribution is matched to
the prior N(0, I) by a maximum mean discrepancy penalty, so that decoding prior samples gives
images (as a VAE) without the per-image KL that blurs a VAE. MMD with the inverse multiquadratic
kernel ``C / (C + ||z - z'||^2)`` summed over the scales ``C = s * 2 * D`` for s in 0.1 ... 10,
as the paper (sec. 4) and its code. Logged as ``mmd``.

Default ``mmd_weight`` (lambda) 10, the paper's MNIST value with the squared-L2 cost; its
CelebA setting (lambda 100 with the cost 0.05 * ||x - x_hat||^2) is ``mmd_weight`` 2000 here,
since the term is divided by the pixel count (see :mod:`latentlab.losses`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentlab import losses
from latentlab.models.backbones import AE_BACKBONES, on_backbones
from latentlab.models.base import AEOutput, Autoencoder
from latentlab.models.config import ModelConfig, check_weight


@dataclass(frozen=True, kw_only=True)
class WAEFields(ModelConfig):
    """a Wasserstein autoencoder (Tolstikhin et al., 2018): MMD to the prior on the codes."""

    mmd_weight: float = 10.0  # lambda

    def __post_init__(self) -> None:
        super().__post_init__()
        check_weight("mmd weight", self.mmd_weight)


class WAEMixin(Autoencoder):
    """WAE-MMD: the reconstruction loss plus lambda * MMD(codes, N(0, I))."""

    def loss_terms(self, out: AEOutput, x_in: Tensor, target: Tensor) -> losses.LossTerms:
        prior = torch.randn(out.z.shape, device=out.z.device)
        penalty = losses.mmd_imq(out.z, prior)
        return losses.base_terms(self, out, target).add("mmd", penalty, self.config.mmd_weight / target[0].numel())


KINDS = on_backbones("wae", WAEFields, WAEMixin, AE_BACKBONES)
