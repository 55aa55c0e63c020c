"""beta-TCVAE: Chen, Li, Grosse & Duvenaud, "Isolating Sources of Disentanglement in Variational
Autoencoders", NeurIPS 2018, https://arxiv.org/abs/1802.04942

A VAE whose KL term is split into index-code mutual information, total correlation and
dimension-wise KL, weighted ``alpha``, ``beta`` and ``gamma``; only the total correlation is
pushed harder. The terms are estimated on each minibatch by minibatch-weighted sampling (the
paper's MWS estimator, :func:`latentlab.losses.tc_decomposition`) and logged as ``mi``, ``tc``,
``dwkl`` (and ``kl``, the usual KL, for comparison). Defaults: alpha = gamma = 1 and beta = 6,
the paper's setting (its Fig. 3 sweeps beta; 6 is the value of the authors' and PyTorch-VAE's
code). Here ``beta`` weighs the total correlation, not the whole KL. ``dataset_size`` only shifts
the logged values (not the gradients); unset, the batch stands for the data set. The estimator
compares every pair of a batch over every latent element ((M, M, D) values): keep the latent
flat (``latent_dim``) on conv backbones.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from latentlab import losses
from latentlab.errors import LatentlabError
from latentlab.models.backbones import VAE_BACKBONES, on_backbones
from latentlab.models.base import AEOutput, Autoencoder
from latentlab.models.config import ModelConfig, check_weight


@dataclass(frozen=True, kw_only=True)
class BetaTCVAEFields(ModelConfig):
    """a beta-TCVAE (Chen et al., 2018): the KL split, total correlation weighted by beta."""

    alpha: float = 1.0  # mutual information
    beta: float = 6.0  # total correlation
    gamma: float = 1.0  # dimension-wise KL
    dataset_size: int | None = None  # N of the estimator (logged values only)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_weight("alpha", self.alpha)
        check_weight("gamma", self.gamma)
        size = self.dataset_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise LatentlabError(f"dataset size {size!r}: expected a positive integer")


class BetaTCVAEMixin(Autoencoder):
    """beta-TCVAE: reconstruction + (alpha MI + beta TC + gamma dimension-wise KL) / pixels."""

    def loss_terms(self, out: AEOutput, x_in: Tensor, target: Tensor) -> losses.LossTerms:
        cfg = self.config
        assert out.posterior is not None
        recon = losses.reconstruction_loss(out.x_hat, target, cfg.recon_loss, cfg.out_activation)
        parts = losses.tc_decomposition(out.z, out.posterior, cfg.dataset_size)
        terms = losses.LossTerms(total=recon, recon=recon, kl=out.posterior.kl().float().mean())
        pixels = target[0].numel()
        for name, weight in (("mi", cfg.alpha), ("tc", cfg.beta), ("dwkl", cfg.gamma)):
            terms = terms.add(name, parts[name], weight / pixels)
        return terms


KINDS = on_backbones("beta-tcvae", BetaTCVAEFields, BetaTCVAEMixin, VAE_BACKBONES)
