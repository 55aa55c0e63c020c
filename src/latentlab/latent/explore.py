"""Explore a latent space: traverse, interpolate, sample, rank elements, attribute vectors.

Free functions over the model verbs (``embed``, ``decode``, ``encode``), so they work for every
model kind. Latent traversals follow the beta-VAE paper (Higgins et al., 2017, fig. 2);
spherical interpolation ("slerp") follows White, "Sampling Generative Networks" (2016); the
decoded plane of a 2-D latent is the figure of the Keras VAE example (Chollet, 2016); attribute
vectors (mean latent of one group minus another) are the "smile vector" of White (2016) and
Larsen et al. (2016).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentlab.data.batches import BatchSpec
from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder

__all__ = [
    "ElementScore", "Ranking", "attribute_vector", "check_elements", "check_rank_by", "check_steps", "closest_step",
    "encode_dataset", "fit_gaussian", "interpolate", "latent_ranges", "plane_grid", "project",
    "rank_elements", "sample", "slerp", "traversal_values", "traverse",
]


def check_elements(elements: Sequence[int], latent_dim: int) -> list[int]:
    """Validate latent element indices (negative ones count from the end)."""
    elements = list(elements)
    if not elements:
        raise LatentlabError("--elements: expected at least one latent element")
    out = []
    for d in elements:
        if not -latent_dim <= int(d) < latent_dim:
            raise LatentlabError(f"latent element {d}: out of range; the latent has {latent_dim} elements "
                                 f"(0..{latent_dim - 1})")
        out.append(int(d) % latent_dim)
    return out


def check_steps(steps: int, what: str = "--steps") -> int:
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 2:
        raise LatentlabError(f"{what} {steps}: expected an integer >= 2 (the two ends are included)")
    return int(steps)


# ---------------------------------------------------------------- encoding and ranges


@torch.no_grad()
def encode_dataset(model: Autoencoder, images_uint8: Any, batch: BatchSpec, batch_size: int = 256,
                   limit: int | None = None) -> Tensor:
    """``model.embed`` over images in batches -> (N, D) on the CPU.

    ``images_uint8`` is a PreparedSet or uint8 (N, H, W, C) pixels that ``batch`` (the run's
    input rule) prepares as in training (noise off); ``limit`` keeps the first rows.
    """
    from latentlab.data.rule import model_inputs

    n = len(images_uint8) if limit is None else min(len(images_uint8), int(limit))
    if n <= 0:
        raise LatentlabError("encode: no images to encode")
    device = model.device
    parts = []
    for start in range(0, n, batch_size):
        x = model_inputs(batch, images_uint8, np.arange(start, min(start + batch_size, n)), device=device)
        parts.append(model.embed(x).float().cpu())  # (b, D)
    return torch.cat(parts)  # (N, D)


def latent_ranges(model: Autoencoder, z_data: Tensor, low: float = 1.0,
                  high: float = 99.0) -> tuple[Tensor, Tensor]:
    """(lo, hi), each (D,): percentiles ``low``..``high`` of the encoded data per element; for a
    VAE -3..+3 standard deviations of the prior N(0, I)."""
    if not 0.0 <= low < high <= 100.0:
        raise LatentlabError(f"percentiles {low}..{high}: expected 0 <= low < high <= 100")
    d = z_data.shape[1]
    if model.is_variational:
        return torch.full((d,), -3.0), torch.full((d,), 3.0)
    z = z_data.float()
    lo = torch.quantile(z, low / 100.0, dim=0)
    hi = torch.quantile(z, high / 100.0, dim=0)
    flat = (hi - lo) < 1e-6  # an unused element: still show a little range around its value
    return torch.where(flat, lo - 0.5, lo), torch.where(flat, hi + 0.5, hi)


def traversal_values(lo: Tensor, hi: Tensor, elements: Sequence[int], steps: int) -> Tensor:
    """(len(elements), steps): evenly spaced values from lo[d] to hi[d] for each element d."""
    steps = check_steps(steps)
    elements = check_elements(elements, lo.shape[0])
    t = torch.linspace(0.0, 1.0, steps)  # (steps,)
    lo_d, hi_d = lo[elements].float(), hi[elements].float()  # (K,)
    return lo_d[:, None] + (hi_d - lo_d)[:, None] * t[None, :]  # (K, steps)


# ---------------------------------------------------------------- decode along paths


@torch.no_grad()
def traverse(model: Autoencoder, x: Tensor, elements: Sequence[int], values: Tensor) -> Tensor:
    """Decode the latent of ``x`` (1, C, H, W) with element ``elements[k]`` set to each ``values[k, s]``.

    Returns images (len(elements), steps, C, H, W); the other elements keep the image's own values.
    """
    elements = check_elements(elements, model.latent_dim)
    if values.ndim != 2 or values.shape[0] != len(elements):
        raise LatentlabError(
            f"traverse: values of shape {tuple(values.shape)}; expected ({len(elements)}, steps)")
    z = model.embed(x[:1])  # (1, D)
    k, steps = values.shape
    zs = z.repeat(k * steps, 1).view(k, steps, -1)  # (K, S, D)
    for i, d in enumerate(elements):
        zs[i, :, d] = values[i].to(zs)
    x_hat = model.decode(zs.view(k * steps, -1))  # (K*S, C, H, W)
    return x_hat.view(k, steps, *x_hat.shape[1:])


def slerp(z_a: Tensor, z_b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between (D,) vectors at fractions t (S,) -> (S, D); linear when
    the two are (anti)parallel or one is zero."""
    na, nb = z_a.norm(), z_b.norm()
    lerp = z_a[None] + (z_b - z_a)[None] * t[:, None]
    if na < 1e-8 or nb < 1e-8:
        return lerp
    cos = torch.clamp((z_a @ z_b) / (na * nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if torch.sin(omega).abs() < 1e-6:
        return lerp
    so = torch.sin(omega)
    w_a, w_b = torch.sin((1 - t) * omega) / so, torch.sin(t * omega) / so  # (S,), (S,)
    return w_a[:, None] * z_a[None] + w_b[:, None] * z_b[None]


@torch.no_grad()
def interpolate(model: Autoencoder, x_a: Tensor, x_b: Tensor, steps: int, spherical: bool = False) -> Tensor:
    """Decode ``steps`` latents from the latent of ``x_a`` to that of ``x_b`` (both ends included).

    Returns (steps, C, H, W). ``spherical`` walks along the great circle (slerp) instead of the line.
    """
    steps = check_steps(steps)
    z_a, z_b = model.embed(x_a[:1])[0], model.embed(x_b[:1])[0]  # (D,), (D,)
    t = torch.linspace(0.0, 1.0, steps, device=z_a.device, dtype=z_a.dtype)
    z = slerp(z_a, z_b, t) if spherical else z_a[None] + (z_b - z_a)[None] * t[:, None]  # (S, D)
    return model.decode(z)


# ---------------------------------------------------------------- sampling


def fit_gaussian(z_data: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and covariance (D, D) of the encoded data."""
    z = z_data.double()
    if z.ndim != 2 or z.shape[0] < 2:
        raise LatentlabError(f"fit a Gaussian: expected at least 2 encoded images, got {tuple(z.shape)}")
    mean = z.mean(0)
    cov = torch.atleast_2d(torch.cov(z.T))
    return mean.float(), cov.float()


@torch.no_grad()
def sample(model: Autoencoder, n: int, *, source: str = "prior", z_data: Tensor | None = None,
           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Draw ``n`` latents and decode them -> (z (n, D), images (n, C, H, W)).

    ``source="prior"``: z ~ N(0, I) (what a VAE is trained for); ``"fitted"``: z ~ N(mean, cov)
    of ``z_data`` (what a plain autoencoder's codes look like).
    """
    if not isinstance(n, int) or n < 1:
        raise LatentlabError(f"--n {n}: expected a positive number of samples")
    d = model.latent_dim
    eps = torch.randn(n, d, generator=generator)  # (n, D) on the CPU: same numbers on every device
    if source == "prior":
        z = eps
    elif source == "fitted":
        if z_data is None:
            raise LatentlabError("sample from 'fitted': needs the encoded data (z_data)")
        mean, cov = fit_gaussian(z_data)
        scale = cov.diagonal().mean().clamp_min(1e-12)
        eye = torch.eye(d, dtype=torch.float64)
        for jitter in (1e-6, 1e-4, 1e-2, 1.0):  # fewer images than elements, or dead elements: singular cov
            chol, info = torch.linalg.cholesky_ex(cov.double() + jitter * scale * eye)
            if int(info) == 0:
                break
        else:
            raise LatentlabError("sample from 'fitted': the covariance of the encoded data is not finite")
        chol = chol.float()
        z = mean[None] + eps @ chol.T
    else:
        raise LatentlabError(f"sample source '{source}': expected 'prior' or 'fitted'")
    z = z.to(model.device)
    return z, model.decode(z)


# ---------------------------------------------------------------- ranking


@dataclass
class ElementScore:
    """How much one latent element matters.

    ``effect``: root-mean-square change of the output (model value units) when the element moves
    by one ``spread`` (the standard deviation of the element over the encoded data), averaged
    over the images ranked on. ``kl``: mean KL(q || prior) of the element (VAE only).
    """

    element: int
    effect: float
    spread: float
    kl: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"element": self.element, "effect": self.effect, "spread": self.spread, "kl": self.kl}


class Ranking(list[ElementScore]):
    """Element scores, best first (a plain list that a notebook shows as a table)."""

    def _repr_html_(self) -> str:
        from latentlab.viz.html import table

        variational = any(s.kl is not None for s in self)
        rows = [[r + 1, s.element, s.effect, s.spread, *([s.kl] if variational else [])] for r, s in enumerate(self)]
        return table(["rank", "element", "effect", "spread", *(["KL"] if variational else [])], rows)


def check_rank_by(model: Autoencoder, by: str) -> str:
    if by not in ("effect", "kl"):
        raise LatentlabError(f"--rank-by {by}: expected 'effect' or 'kl'")
    if by == "kl" and not model.is_variational:
        raise LatentlabError("--rank-by kl: needs a VAE; this model is a plain autoencoder "
                             "(no KL per element), use --rank-by effect")
    return by


RANK_DECODES = 2048  # decodes per pass of rank_elements


@torch.no_grad()
def rank_elements(model: Autoencoder, x: Tensor, z_data: Tensor,
                    by: str = "effect") -> Ranking:
    """Score every latent element on the images ``x`` (N, C, H, W); best first.

    The effect of element d is the central difference ``decode(z + s e_d) - decode(z - s e_d)``
    halved, with ``s`` its spread in ``z_data``: the output change per unit of typical spread.
    ``by="kl"`` sorts by the KL per element instead (VAEs only).
    """
    check_rank_by(model, by)
    z = model.embed(x)  # (N, D)
    n, d = z.shape
    spread = z_data.float().std(0).clamp_min(1e-8).to(z)  # (D,)
    effect = torch.empty(d, device=z.device)
    chunk = max(1, RANK_DECODES // max(n, 1))  # elements per pass: memory stays bounded for big latents
    for start in range(0, d, chunk):
        elements = torch.arange(start, min(start + chunk, d), device=z.device)
        step = torch.zeros(len(elements), d, dtype=z.dtype, device=z.device)
        step[torch.arange(len(elements)), elements] = spread[elements]  # row k moves element elements[k] by its spread
        z_plus = (z[:, None, :] + step[None]).reshape(-1, d)  # (N*k, D)
        z_minus = (z[:, None, :] - step[None]).reshape(-1, d)
        change = (model.decode(z_plus) - model.decode(z_minus)) / 2  # (N*k, C, H, W)
        effect[elements] = change.pow(2).flatten(1).mean(1).sqrt().view(n, len(elements)).mean(0)
    kl = model.encode(x).kl_per_dim().mean(0) if model.is_variational else None  # (D,)
    scores = [ElementScore(element=i, effect=float(effect[i]), spread=float(spread[i]),
                             kl=None if kl is None else float(kl[i])) for i in range(d)]
    key = (lambda s: s.kl) if by == "kl" else (lambda s: s.effect)
    return Ranking(sorted(scores, key=key, reverse=True))


# ---------------------------------------------------------------- attribute vectors


def _rows(selection: np.ndarray, n: int, what: str) -> np.ndarray:
    selection = np.asarray(selection)
    if selection.dtype == np.bool_:
        if selection.shape != (n,):
            raise LatentlabError(f"{what}: mask of shape {selection.shape}; expected ({n},)")
        rows = np.flatnonzero(selection)
    else:
        rows = selection.astype(np.int64).ravel()
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise LatentlabError(f"{what}: row index out of range for {n} encoded images")
    if rows.size == 0:
        raise LatentlabError(f"{what}: selects no rows")
    return rows


def attribute_vector(z_data: Tensor, where: np.ndarray, versus: np.ndarray) -> Tensor:
    """(D,) mean(z[where]) - mean(z[versus]); ``where``/``versus`` boolean masks or row indices."""
    n = z_data.shape[0]
    a, b = _rows(where, n, "--where"), _rows(versus, n, "--versus")
    return z_data[torch.as_tensor(a)].float().mean(0) - z_data[torch.as_tensor(b)].float().mean(0)


# ---------------------------------------------------------------- maps of the latent


def project(z_data: Tensor, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(N, 2) coordinates of the encoded data and the two axis names.

    ``pca``: the two principal components (axis names give the explained variance); ``tsne``:
    scikit-learn's t-SNE (van der Maaten & Hinton, 2008). A latent of 1 or 2 elements is shown as it is.
    """
    z = z_data.float().numpy()
    n, d = z.shape
    if method not in ("pca", "tsne"):
        raise LatentlabError(f"--method {method}: expected 'pca' or 'tsne'")
    if d <= 2:
        xy = z if d == 2 else np.stack([z[:, 0], np.zeros(n)], 1)
        return xy, [f"z[{i}]" for i in range(d)] + ([""] if d == 1 else [])
    if method == "pca":
        zc = torch.from_numpy(z).double()
        zc = zc - zc.mean(0)
        _, sv, vh = torch.linalg.svd(zc, full_matrices=False)  # vh (D, D): principal axes as rows
        axes = vh[:2] * torch.sign(vh[:2].gather(1, vh[:2].abs().argmax(1, keepdim=True)))  # fixed signs
        ratio = (sv**2 / (sv**2).sum().clamp_min(1e-300)).tolist()
        names = [f"PC{i + 1} ({100 * ratio[i]:.0f}% of variance)" for i in range(2)]
        return (zc @ axes.T).float().numpy(), names
    if n < 5:
        raise LatentlabError(f"--method tsne: needs at least 5 encoded images, got {n}")
    from sklearn.manifold import TSNE

    tsne = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed)
    xy = tsne.fit_transform(z)
    return xy, ["t-SNE 1", "t-SNE 2"]


@torch.no_grad()
def plane_grid(model: Autoencoder, lo: Tensor, hi: Tensor, n: int = 15) -> tuple[Tensor, Tensor, Tensor]:
    """Decode an n x n grid over a 2-element latent -> (images (n, n, C, H, W), z0 values, z1 values).

    Row 0 is the top of the figure: z[1] decreases down the rows, z[0] increases along them.
    """
    if model.latent_dim != 2:
        raise LatentlabError(f"plane grid: needs a 2-element latent, this model has {model.latent_dim}")
    n = check_steps(n, "--grid")
    v0 = torch.linspace(float(lo[0]), float(hi[0]), n)
    v1 = torch.linspace(float(hi[1]), float(lo[1]), n)
    g1, g0 = torch.meshgrid(v1, v0, indexing="ij")  # (n, n): g1[r, c] = v1[r], g0[r, c] = v0[c]
    z = torch.stack([g0, g1], -1).reshape(n * n, 2)  # (n*n, 2)
    x_hat = model.decode(z.to(model.device))
    return x_hat.view(n, n, *x_hat.shape[1:]), v0, v1


def closest_step(values: Tensor, own: Tensor) -> list[int]:
    """For each row of ``values`` (K, S), the step whose value is closest to ``own[k]``."""
    return (values - own[:, None]).abs().argmin(1).tolist()
