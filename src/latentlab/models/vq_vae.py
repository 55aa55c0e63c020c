"""VQ-VAE: van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning",
NeurIPS 2017, https://arxiv.org/abs/1711.00937

An autoencoder (any backbone) whose code is snapped to a learned codebook of ``codebook_size``
vectors before decoding. The code is read as vectors of ``code_dim`` elements: each position of
a conv feature map (``latent_dim=None``: ``code_dim`` is the map's channel count), or consecutive
runs of a flat code (``latent_dim`` set, or the fcn backbone: ``code_dim`` divides it; unset, the
largest of 8, 4, 2, 1 that does). Gradients pass the quantiser straight through; the loss adds
the codebook term ``||sg[z_e] - e||^2`` and ``commitment`` times ``||z_e - sg[e]||^2``
(commitment 0.25 and a 512-entry codebook as in the paper), and codebook usage is logged as
``perplexity`` and ``codes_used`` (the fraction of codes a batch uses).

**The latent the tools see is the code before quantisation.** ``encode`` / ``embed`` return it
(so ``edit``, traversals and the explorer work on continuous values), and ``decode`` quantises
first: an edited code is decoded as its nearest codebook vectors. ``quantised_latent`` (True)
and :meth:`describe` say so, for the latent tools to report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from latentlab import losses
from latentlab.errors import LatentlabError
from latentlab.models.backbones import AE_BACKBONES, on_backbones
from latentlab.models.base import AEOutput, Autoencoder
from latentlab.models.config import ModelConfig, check_positive, check_weight


@dataclass(frozen=True, kw_only=True)
class VQVAEFields(ModelConfig):
    """a VQ-VAE (van den Oord et al., 2017): the code snapped to a learned codebook."""

    codebook_size: int = 512  # K
    code_dim: int | None = None  # elements per code vector; None: see the module docstring
    commitment: float = 0.25  # beta in the paper

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("codebook size", [self.codebook_size])
        check_weight("commitment", self.commitment)
        if self.code_dim is not None:
            check_positive("code dim", [self.code_dim])
        latent = getattr(self, "latent_dim", None)
        if latent is None:  # a conv feature map: one vector per position
            width = getattr(self, "channels", (0,))[-1]
            if self.code_dim not in (None, width):
                raise LatentlabError(f"code dim {self.code_dim}: the feature-map latent has {width} channels; "
                                     f"expected {width} or no --code-dim (or set --latent-dim)")
        elif latent % (self.code_dim or 1):
            raise LatentlabError(f"code dim {self.code_dim}: expected a divisor of the latent size {latent}")


class VQMixin(Autoencoder):
    """VQ-VAE: the code is quantised to the nearest codebook vectors in ``decode``."""

    quantised_latent: ClassVar[bool] = True
    codebook: nn.Embedding

    def __init__(self, config: VQVAEFields) -> None:
        super().__init__(config)  # the backbone's __init__ (the mixin comes first in the MRO) takes the config
        latent: int | None = getattr(config, "latent_dim", None)
        self.map_latent = latent is None  # vectors along the channels of a (C, h, w) map
        if latent is None:
            self.code_dim: int = getattr(self, "feature_shape", (0,))[0]
        else:
            self.code_dim = config.code_dim or math.gcd(latent, 8)
        self.codebook = nn.Embedding(config.codebook_size, self.code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / config.codebook_size, 1.0 / config.codebook_size)

    def _vectors(self, z: Tensor) -> Tensor:
        """(N, D) -> (N, M, code_dim)."""
        if self.map_latent:
            return z.reshape(z.shape[0], self.code_dim, -1).transpose(1, 2)
        return z.reshape(z.shape[0], -1, self.code_dim)

    def _flat(self, vectors: Tensor) -> Tensor:
        """(N, M, code_dim) -> (N, D), the inverse of :meth:`_vectors`."""
        return (vectors.transpose(1, 2) if self.map_latent else vectors).reshape(vectors.shape[0], -1)

    def quantise(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest codebook vectors of the code ``z`` (N, D): ``(z_q (N, D), indices (N, M))``."""
        v = self._vectors(z).float()  # (N, M, e)
        w = self.codebook.weight.float()  # (K, e)
        distance = v.pow(2).sum(-1, keepdim=True) - 2 * v @ w.T + w.pow(2).sum(-1)  # (N, M, K)
        indices = distance.argmin(dim=-1)
        z_q = self._flat(self.codebook(indices)).to(z.dtype)
        return z_q, indices

    def decode(self, z: Tensor) -> Tensor:
        z_q, _ = self.quantise(z)
        return super().decode(z + (z_q - z).detach())  # straight-through: the value of z_q, the gradient of z

    def loss_terms(self, out: AEOutput, x_in: Tensor, target: Tensor) -> losses.LossTerms:
        z_q, indices = self.quantise(out.z)
        vq = losses.vq_terms(out.z, z_q)
        terms = losses.base_terms(self, out, target).add("codebook", vq["codebook"], 1.0)
        terms = terms.add("commitment", vq["commitment"], self.config.commitment)
        for name, value in losses.codebook_usage(indices, self.config.codebook_size).items():
            terms = terms.log(name, value)
        return terms

    def describe(self) -> str:
        return (f"{super().describe()}; codebook {self.config.codebook_size} x {self.code_dim}: the latent is the "
                f"code before quantisation (edits apply there; decode snaps it to the nearest codes)")


KINDS = on_backbones("vq-vae", VQVAEFields, VQMixin, AE_BACKBONES)
