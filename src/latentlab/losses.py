"""Loss functions as pure functions returning named terms; every term is logged by the trainer.

The VAE objective is the standard negative ELBO with a fixed-variance Gaussian likelihood,
divided by the number of pixels so that its scale (and a good learning rate) matches the plain
autoencoder's mean squared error::

    total = mse(x_hat, x) + beta * KL(q(z|x) || N(0, I)) / (C * H * W)

where ``KL = 0.5 * sum(exp(logvar) - (1 + logvar) + mu^2)``, the lecture's
``sum(exp(sigma) - (1 + sigma) + m^2)`` with ``sigma = logvar`` (the lecture drops the 1/2).

The same convention holds for every family's regulariser (sparsity, contraction, MMD, the
beta-TCVAE decomposition): the papers add it to a reconstruction error *summed* over pixels, so
here it is divided by the pixel count, and the papers' weights keep their meaning. The VQ-VAE's
codebook and commitment terms are means over code elements, as in its paper.

A model family computes its own terms: :func:`model_loss` calls the model's ``loss_terms(out,
x_in, target)`` when it has one (each family file), else :func:`autoencoder_loss`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from latentlab.models.base import AEOutput, DiagonalGaussian
from latentlab.models.config import OUTPUT_RANGES


@dataclass
class LossTerms:
    """``total`` is what is minimised; ``recon`` (the chosen reconstruction loss, mean per pixel)
    and ``kl`` (per image, summed over latent elements; VAEs only) are logged beside it, and so is
    every entry of ``extra`` (a family's named terms, unweighted: ``sparsity``, ``mmd``, ``tc``,
    ``codebook``, ``perplexity``, ...)."""

    total: Tensor
    recon: Tensor
    kl: Tensor | None = None
    extra: dict[str, Tensor] = field(default_factory=dict)

    def items(self) -> dict[str, Tensor]:
        out = {"loss": self.total, "recon": self.recon}
        if self.kl is not None:
            out["kl"] = self.kl
        return {**out, **self.extra}

    def add(self, name: str, value: Tensor, weight: float) -> LossTerms:
        """These terms with ``weight * value`` added to the total and ``value`` logged as ``name``."""
        return LossTerms(total=self.total + weight * value, recon=self.recon, kl=self.kl,
                         extra={**self.extra, name: value})

    def log(self, name: str, value: Tensor) -> LossTerms:
        """``value`` logged as ``name`` (not part of the total: a measurement such as perplexity)."""
        return LossTerms(total=self.total, recon=self.recon, kl=self.kl,
                         extra={**self.extra, name: value.detach()})


# ---------------------------------------------------------------- reconstruction


def per_image_mse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Mean squared error of each image, (N,), computed in float32."""
    return (x_hat.float() - x.float()).pow(2).flatten(1).mean(dim=1)


def reconstruction_loss(x_hat: Tensor, target: Tensor, kind: str = "mse", out_activation: str = "tanh") -> Tensor:
    """Mean over pixels and images of ``mse``, ``l1``, ``bce`` (outputs in 0..1) or ``ssim``
    (``1 - SSIM``, torchmetrics' Gaussian-window SSIM over the model's output range), in float32."""
    x_hat, target = x_hat.float(), target.float()
    if kind == "mse":
        return F.mse_loss(x_hat, target)
    if kind == "l1":
        return F.l1_loss(x_hat, target)
    if kind == "bce":
        with torch.autocast(device_type=x_hat.device.type, enabled=False):  # bce refuses autocast
            return F.binary_cross_entropy(x_hat.clamp(0.0, 1.0), target.clamp(0.0, 1.0))
    if kind == "ssim":
        from torchmetrics.functional.image import structural_similarity_index_measure

        lo, hi = OUTPUT_RANGES.get(out_activation, (float(target.min()), float(target.max())))
        kernel = min(11, *((s - 1) | 1 for s in target.shape[-2:]))  # odd, and no larger than the image
        ssim = structural_similarity_index_measure(x_hat, target, data_range=(lo, hi), kernel_size=kernel)
        assert isinstance(ssim, Tensor)
        return 1.0 - ssim
    raise ValueError(f"reconstruction loss {kind!r}")  # configs are validated: not a user error


def autoencoder_loss(out: AEOutput, target: Tensor, beta: float = 1.0, recon_loss: str = "mse",
                     out_activation: str = "tanh") -> LossTerms:
    """The reconstruction loss for a plain autoencoder; + beta * KL / pixels when ``out`` has a
    posterior. With a reconstruction loss other than MSE, the MSE is logged too (as ``mse``)."""
    recon = reconstruction_loss(out.x_hat, target, recon_loss, out_activation)
    terms = LossTerms(total=recon, recon=recon)
    if recon_loss != "mse":
        terms = terms.log("mse", F.mse_loss(out.x_hat.detach().float(), target.float()))
    if out.posterior is None:
        return terms
    kl = out.posterior.kl().float().mean()
    pixels = target[0].numel()
    return LossTerms(total=recon + beta * kl / pixels, recon=recon, kl=kl, extra=terms.extra)


def model_loss(model: torch.nn.Module, x_in: Tensor, target: Tensor) -> LossTerms:
    """Forward ``x_in`` (maybe noisy) and compare with the clean ``target``: the family's own
    ``loss_terms`` hook when it has one, else :func:`autoencoder_loss` with the model's beta and
    reconstruction loss."""
    out = model(x_in)
    inner: torch.nn.Module = getattr(model, "module", model)  # a Fabric/DDP wrapper holds the model
    hook = getattr(inner, "loss_terms", None)
    if hook is not None:
        terms: LossTerms = hook(out, x_in, target)
        return terms
    return base_terms(inner, out, target)


def base_terms(model: torch.nn.Module, out: AEOutput, target: Tensor) -> LossTerms:
    """:func:`autoencoder_loss` under ``model``'s config: what a family's hook starts from."""
    config = getattr(model, "config", None)
    return autoencoder_loss(out, target, float(getattr(config, "beta", 1.0)),
                            getattr(config, "recon_loss", "mse"), getattr(config, "out_activation", "tanh"))


# ---------------------------------------------------------------- sparse (Ng, CS294A 2011)


def sparsity_l1(z: Tensor) -> Tensor:
    """Mean over images of ``sum_j |z_j|`` (the L1 penalty on the code)."""
    return z.float().abs().sum(dim=1).mean()


def sparsity_kl(z: Tensor, rho: float) -> Tensor:
    """``sum_j KL(rho || rho_hat_j)`` with ``rho_hat_j`` the batch mean of ``sigmoid(z_j)``: Ng's
    penalty, with the code squashed to (0, 1) as his sigmoid hidden units are."""
    rho_hat = torch.sigmoid(z.float()).mean(dim=0).clamp(1e-6, 1 - 1e-6)  # (D,)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


# ---------------------------------------------------------------- contractive (Rifai et al. 2011)


def jacobian_frobenius(encode: Callable[[Tensor], Tensor], x: Tensor, projections: int = 1) -> Tensor:
    """Mean over images of ``||d z / d x||_F^2``, estimated by random projections: for
    ``v ~ N(0, I)`` over the latent, ``E ||v^T J||^2 = ||J||_F^2``. One projection costs one extra
    encoder pass and one backward, on any backbone (the exact form of Rifai et al. holds for one
    sigmoid layer only). The graph is kept, so the penalty trains the encoder; under
    ``torch.no_grad`` (validation) it is computed all the same and returned detached."""
    keep = torch.is_grad_enabled()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        z = encode(x)
        total = x.new_zeros((), dtype=torch.float32)
        for _ in range(projections):
            v = torch.randn_like(z)
            (g,) = torch.autograd.grad(z, x, v, create_graph=keep)
            total = total + g.float().pow(2).flatten(1).sum(dim=1).mean()
    return total / projections if keep else (total / projections).detach()


# ---------------------------------------------------------------- WAE-MMD (Tolstikhin et al. 2018)

MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the official WAE code's multi-scale IMQ


def mmd_imq(z: Tensor, prior: Tensor, scales: tuple[float, ...] = MMD_SCALES, prior_var: float = 1.0) -> Tensor:
    """Unbiased MMD^2 between codes ``z`` and prior samples (N, D) with the inverse multiquadratic
    kernel ``k(x, y) = C / (C + ||x - y||^2)``, summed over ``C = s * 2 * D * prior_var``."""
    n, d = z.shape
    if n < 2:
        return z.new_zeros(())
    z, prior = z.float(), prior.float()
    zz, pp, zp = torch.cdist(z, z).pow(2), torch.cdist(prior, prior).pow(2), torch.cdist(z, prior).pow(2)
    off = 1.0 - torch.eye(n, device=z.device)
    total = z.new_zeros(())
    for s in scales:
        c = s * 2.0 * d * prior_var
        total = total + ((c / (c + zz)) * off).sum() / (n * (n - 1)) + ((c / (c + pp)) * off).sum() / (n * (n - 1)) \
            - 2.0 * (c / (c + zp)).sum() / (n * n)
    return total


# ---------------------------------------------------------------- beta-TCVAE (Chen et al. 2018)


def gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def tc_decomposition(z: Tensor, posterior: DiagonalGaussian, dataset_size: int | None = None) -> dict[str, Tensor]:
    """The KL term split into index-code mutual information ``mi``, total correlation ``tc`` and
    dimension-wise KL ``dwkl`` (batch means), with the minibatch-weighted sampling estimator of
    q(z) and q(z_j): ``log q(z_i) ~ logsumexp_k log q(z_i | x_k) - log(N M)``. ``dataset_size`` N
    only shifts the logged values by constants (the gradients do not depend on it); unknown, the
    batch stands for the whole data set (``- log M``)."""
    z, mu, logvar = z.float(), posterior.mu.float(), posterior.logvar.float()
    m = z.shape[0]
    log_nm = math.log(dataset_size * m) if dataset_size else math.log(m)
    pairs = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])  # (M, M, D): z_i under q(.|x_k)
    log_q_z_x = gaussian_log_density(z, mu, logvar).sum(dim=1)  # (M,)
    log_q_z = torch.logsumexp(pairs.sum(dim=2), dim=1) - log_nm  # (M,)
    log_prod_q_zj = (torch.logsumexp(pairs, dim=1) - log_nm).sum(dim=1)  # (M,)
    log_p_z = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)  # (M,)
    return {"mi": (log_q_z_x - log_q_z).mean(), "tc": (log_q_z - log_prod_q_zj).mean(),
            "dwkl": (log_prod_q_zj - log_p_z).mean()}


# ---------------------------------------------------------------- VQ-VAE (van den Oord et al. 2017)


def vq_terms(z_e: Tensor, z_q: Tensor) -> dict[str, Tensor]:
    """``codebook = ||sg[z_e] - e||^2`` (moves the codes) and ``commitment = ||z_e - sg[e]||^2``
    (keeps the encoder near them), means over code elements."""
    return {"codebook": F.mse_loss(z_q.float(), z_e.detach().float()),
            "commitment": F.mse_loss(z_e.float(), z_q.detach().float())}


def codebook_usage(indices: Tensor, codebook_size: int) -> dict[str, Tensor]:
    """``perplexity`` = exp(entropy of the batch's code frequencies) (1: one code for everything,
    ``codebook_size``: all used equally) and ``codes_used``, the fraction of codes chosen at least once."""
    counts = torch.bincount(indices.flatten(), minlength=codebook_size).float()
    p = counts / counts.sum().clamp_min(1.0)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"perplexity": torch.exp(entropy), "codes_used": (counts > 0).float().mean()}
