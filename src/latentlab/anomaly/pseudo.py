"""Pseudo-anomalies made from normal images: what ``--score auto`` ranks the candidate scores by.

No labelled anomaly is ever needed. Each family changes a normal image in one generic way, so a
score that is blind to that kind of change shows it by ranking the changed images as normal:

==============  =================================================================================
family          how each image is changed (model-space tensors, (N, C, H, W), sizes scale with H, W)
==============  =================================================================================
``cutpaste``    CutPaste (Li et al., CVPR 2021): a rectangle of 2-15% of the image (aspect ratio
                0.3-3.3) is cut out, its colour jittered as in the paper (brightness, contrast,
                saturation and hue by up to 10%), and pasted at another place of the same image --
                a local defect made of the image's own pixels
``scar``        CutPaste-scar (same paper): a thin strip (2-6 x 10-25 pixels at 64x64, horizontal
                or vertical; the paper also rotates it) cut, jittered and pasted the same way
``shuffle``     the image's 4 x 4 tiles put in a random order: every local patch is still a normal
                one, the layout is not
``smooth``      the image shrunk 8x and blown up again: simpler than any normal image. A
                reconstruction error ranks simple inputs as *more* normal (a model reconstructs
                them easily; cf. Serra et al., ICLR 2020, on likelihoods and input complexity)
==============  =================================================================================

The families are chosen for the directions an anomaly can take (a local defect, the wrong
layout, too little detail), not after any test set. All are seeded: the same images and seed
give the same pseudo-anomalies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from latentlab.errors import LatentlabError

PSEUDO_KINDS = ("cutpaste", "scar", "shuffle", "smooth")
SHUFFLE_GRID = 4  # tiles per side
SMOOTH_FACTOR = 8  # shrink factor of ``smooth``


def make_pseudo(x: Tensor, kind: str, value_range: tuple[float, float] = (-1.0, 1.0), seed: int = 0) -> Tensor:
    """Pseudo-anomalies (N, C, H, W) of the normal model inputs ``x`` (N, C, H, W), one per image."""
    if kind not in PSEUDO_KINDS:
        raise LatentlabError(f"pseudo-anomaly '{kind}': expected one of {', '.join(PSEUDO_KINDS)}")
    if x.ndim != 4 or min(x.shape[-2:]) < 4:
        raise LatentlabError(f"pseudo-anomalies: expected images (N, C, H, W) of at least 4x4, got {tuple(x.shape)}")
    g = torch.Generator().manual_seed(seed)
    x = x.detach().float().cpu()
    if kind == "shuffle":
        return _shuffle(x, g)
    if kind == "smooth":
        return _smooth(x)
    return _paste(x, g, value_range, scar=kind == "scar")


# ---------------------------------------------------------------- CutPaste and CutPaste-scar


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """An integer in [lo, hi] (inclusive)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _box(g: torch.Generator, h: int, w: int, scar: bool) -> tuple[int, int]:
    """(height, width) of the patch to cut."""
    if scar:
        thin = max(1, round(_uniform(g, 2, 6) * min(h, w) / 64))
        long = max(2, min(round(_uniform(g, 10, 25) * min(h, w) / 64), min(h, w) - 1))
        return (thin, long) if float(torch.rand((), generator=g)) < 0.5 else (long, thin)
    area = _uniform(g, 0.02, 0.15) * h * w
    aspect = math.exp(_uniform(g, math.log(0.3), math.log(1 / 0.3)))
    ph = max(1, min(h - 1, round(math.sqrt(area * aspect))))
    pw = max(1, min(w - 1, round(math.sqrt(area / aspect))))
    return ph, pw


def _paste(x: Tensor, g: torch.Generator, value_range: tuple[float, float], scar: bool) -> Tensor:
    lo, hi = value_range
    out = x.clone()
    _, _, h, w = x.shape
    for i in range(len(x)):
        ph, pw = _box(g, h, w, scar)
        sy, sx = _randint(g, 0, h - ph), _randint(g, 0, w - pw)
        ty, tx = _randint(g, 0, h - ph), _randint(g, 0, w - pw)
        while (ty, tx) == (sy, sx):  # pasted where it came from would change nothing
            ty, tx = _randint(g, 0, h - ph), _randint(g, 0, w - pw)
        patch = (x[i, :, sy:sy + ph, sx:sx + pw] - lo) / (hi - lo)  # (C, ph, pw) in [0, 1]
        out[i, :, ty:ty + ph, tx:tx + pw] = _jitter(patch, g) * (hi - lo) + lo
    return out


_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _jitter(p: Tensor, g: torch.Generator) -> Tensor:
    """The paper's colour jitter of a patch (C, h, w) in [0, 1]: brightness, contrast, saturation
    and hue, each by up to 10% (torchvision's ``ColorJitter(0.1, 0.1, 0.1, 0.1)``, in that order)."""
    p = (p * _uniform(g, 0.9, 1.1)).clamp(0, 1)
    p = ((p - p.mean()) * _uniform(g, 0.9, 1.1) + p.mean()).clamp(0, 1)
    if p.shape[0] != 3:
        return p
    yiq = torch.einsum("kc,chw->khw", _YIQ, p)
    yiq[1:] *= _uniform(g, 0.9, 1.1)  # saturation: the chroma's length
    angle = _uniform(g, -0.1, 0.1) * 2 * math.pi  # hue: the chroma's direction
    cos, sin = math.cos(angle), math.sin(angle)
    yiq[1], yiq[2] = cos * yiq[1] - sin * yiq[2], sin * yiq[1] + cos * yiq[2]
    return torch.einsum("kc,chw->khw", torch.linalg.inv(_YIQ), yiq).clamp(0, 1)


# ---------------------------------------------------------------- layout and detail


def _shuffle(x: Tensor, g: torch.Generator) -> Tensor:
    n, c, h, w = x.shape
    th, tw = h // SHUFFLE_GRID, w // SHUFFLE_GRID
    k = SHUFFLE_GRID * SHUFFLE_GRID
    out = x.clone()
    core = x[:, :, :th * SHUFFLE_GRID, :tw * SHUFFLE_GRID]
    tiles = core.reshape(n, c, SHUFFLE_GRID, th, SHUFFLE_GRID, tw).permute(0, 2, 4, 1, 3, 5).reshape(n, k, c, th, tw)
    for i in range(n):
        order = torch.randperm(k, generator=g)
        while bool((order == torch.arange(k)).all()):
            order = torch.randperm(k, generator=g)
        tiles[i] = tiles[i, order]
    grid = tiles.reshape(n, SHUFFLE_GRID, SHUFFLE_GRID, c, th, tw).permute(0, 3, 1, 4, 2, 5)
    out[:, :, :th * SHUFFLE_GRID, :tw * SHUFFLE_GRID] = grid.reshape(n, c, th * SHUFFLE_GRID, tw * SHUFFLE_GRID)
    return out


def _smooth(x: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, h // SMOOTH_FACTOR), max(1, w // SMOOTH_FACTOR)), mode="area")
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
