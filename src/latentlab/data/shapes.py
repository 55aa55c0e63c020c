"""``shapes``: a procedural dSprites (Matthey, Higgins, Hassabis & Lerchner, 2017).

64x64 binary images of one white sprite on black, from five independent factors on a full grid:

===============  ======  ============================================================
factor           values  levels
===============  ======  ============================================================
``shape``        3       0 square, 1 ellipse, 2 heart
``scale``        6       0.5 ... 1.0 (linear)
``orientation``  40      0 ... 2 pi radians (linear, both ends included, as in dSprites)
``pos_x``        32      0 ... 1 (left ... right)
``pos_y``        32      0 ... 1 (top ... bottom)
===============  ======  ============================================================

3 x 6 x 40 x 32 x 32 = 737,280 images. Image ``i`` has the factor levels of ``i`` written in
mixed radix (shape slowest, pos_y fastest: dSprites' own order without its single-valued colour)
and is drawn from them when it is asked for: :func:`render_shapes` draws any batch of level
rows, so the set is never held whole (3 GB as uint8). The data spec ``shapes[:N[:SEED]]`` holds
N images (default 20,000, 4 KB each) at indices drawn without replacement by SEED.

How it differs from the published ``dsprites_ndarray...npz``: the same factors, levels and
index order, but the sprites are drawn here (an implicit-curve heart, a 2:1 ellipse, a square;
a radius of 11 pixels at scale 1, centres from 11.3 to 52.7 pixels in steps of 4/3), so pixels
are not identical to the file's. The square (4-fold) and the ellipse (2-fold) are rotation-symmetric,
so, as in dSprites, orientation is only partly identifiable from the image.
"""

from __future__ import annotations

import functools

import numpy as np

from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

__all__ = [
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "N_IMAGES",
    "SHAPE_NAMES",
    "SIZE",
    "factor_values",
    "index_of",
    "levels_of",
    "make_shapes",
    "render_shapes",
]

SIZE = 64
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ["square", "ellipse", "heart"]
N_IMAGES = int(np.prod(FACTOR_SIZES))  # 737,280
DEFAULT_N = 20_000

_SCALES = np.linspace(0.5, 1.0, 6)
_ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
_POSITIONS = np.linspace(0.0, 1.0, 32)
_RADIUS = 11.0  # pixels: the sprite's outer radius at scale 1
_PATCH = 26  # pixels: a patch holds the largest sprite at any phase
_CHUNK = 2048  # images drawn at a time


def _check_levels(levels: np.ndarray) -> np.ndarray:
    levels = np.asarray(levels)
    if levels.ndim != 2 or levels.shape[1] != len(FACTOR_SIZES) or not np.issubdtype(levels.dtype, np.integer):
        raise LatentlabError(f"shapes: expected integer factor levels of shape (N, {len(FACTOR_SIZES)}), "
                             f"got {levels.dtype} {levels.shape}")
    if (levels < 0).any() or (levels >= np.asarray(FACTOR_SIZES)).any():
        raise LatentlabError(f"shapes: factor levels out of range; expected 0 <= level < {FACTOR_SIZES}")
    return levels.astype(np.int64)


def levels_of(index: np.ndarray) -> np.ndarray:
    """Factor levels (N, 5) of image indices (N,) in 0 .. 737,279."""
    index = np.asarray(index, dtype=np.int64)
    if (index < 0).any() or (index >= N_IMAGES).any():
        raise LatentlabError(f"shapes: index out of range; expected 0 <= index < {N_IMAGES}")
    return np.stack(np.unravel_index(index, FACTOR_SIZES), axis=1).astype(np.int64)


def index_of(levels: np.ndarray) -> np.ndarray:
    """Image indices (N,) of factor levels (N, 5): the inverse of :func:`levels_of`."""
    levels = _check_levels(levels)
    return np.asarray(np.ravel_multi_index(tuple(levels.T), FACTOR_SIZES), dtype=np.int64)


def factor_values(levels: np.ndarray) -> dict[str, np.ndarray]:
    """Levels (N, 5) -> the factor values by name (shape id, scale, radians, x, y in 0..1)."""
    levels = _check_levels(levels)
    return {"shape": levels[:, 0].astype(np.float64), "scale": _SCALES[levels[:, 1]],
            "orientation": _ORIENTATIONS[levels[:, 2]], "pos_x": _POSITIONS[levels[:, 3]],
            "pos_y": _POSITIONS[levels[:, 4]]}


def _sprites(shape: np.ndarray, scale: np.ndarray, angle: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Coverage (bool) of sprites at pixel offsets ``dx``, ``dy`` from their centres; the
    parameters broadcast against the offsets."""
    cos, sin = np.cos(angle), np.sin(angle)
    r = _RADIUS * scale
    u = (cos * dx + sin * dy) / r  # sprite coordinates, 1 = the outer radius
    v = (cos * dy - sin * dx) / r
    square = np.maximum(np.abs(u), np.abs(v)) <= 0.72  # half-side 0.72 r
    ellipse = u * u + (v / 0.5) ** 2 <= 1.0  # 2:1, long axis along u
    hx, hy = u * 1.3, -(v * 1.3 - 0.15)  # the heart (x^2 + y^2 - 1)^3 <= x^2 y^3, tip down
    heart = (hx * hx + hy * hy - 1.0) ** 3 - hx * hx * hy ** 3 <= 0.0
    return np.asarray(np.where(shape == 0, square, np.where(shape == 1, ellipse, heart)))


@functools.cache
def _atlas() -> np.ndarray:
    """Every sprite once: (3 shapes, 6 scales, 40 orientations, 3 x phases, 3 y phases, P, P) bool.

    A centre lies on a third of a pixel (``_centre``), so each image is one of these patches
    pasted at a whole-pixel offset; drawing 737,280 images costs 6,480 patches.
    """
    s, k, o, px, py = np.meshgrid(np.arange(3), _SCALES, _ORIENTATIONS, np.arange(3) / 3, np.arange(3) / 3,
                                  indexing="ij")
    col = [a.astype(np.float32)[..., None, None] for a in (s, k, o, px, py)]  # (3, 6, 40, 3, 3, 1, 1)
    grid = np.arange(_PATCH, dtype=np.float32) + 0.5 - _PATCH // 2  # pixel centres from the patch centre
    dx = grid[None, :] - col[3]  # (..., 1, P)
    dy = grid[:, None] - col[4]  # (..., P, 1)
    return _sprites(col[0], col[1], col[2], dx, dy)


def _centre(level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(whole pixel, phase 0..2 in thirds) of the centres of position levels: (34 + 4 k) / 3,
    i.e. 11.33 ... 52.67 pixels in steps of 4/3."""
    thirds = 34 + 4 * level
    return thirds // 3, thirds % 3


def render_shapes(levels: np.ndarray) -> np.ndarray:
    """Draw the images of factor level rows (N, 5): uint8 (N, 64, 64, 1), 0 or 255."""
    levels = _check_levels(levels)
    atlas = _atlas()
    pad = _PATCH // 2  # a patch may reach past the frame: draw on a padded canvas, then cut
    n = len(levels)
    out = np.empty((n, SIZE, SIZE, 1), dtype=np.uint8)
    offsets = np.arange(_PATCH)
    for start in range(0, n, _CHUNK):
        lv = levels[start:start + _CHUNK]
        (x0, phase_x), (y0, phase_y) = _centre(lv[:, 3]), _centre(lv[:, 4])
        patches = atlas[lv[:, 0], lv[:, 1], lv[:, 2], phase_x, phase_y]  # (n, P, P)
        canvas = np.zeros((len(lv), SIZE + 2 * pad, SIZE + 2 * pad), dtype=bool)
        rows = y0[:, None, None] + offsets[None, :, None]  # (n, P, 1) canvas rows (patch top: y0 - pad + pad)
        cols = x0[:, None, None] + offsets[None, None, :]  # (n, 1, P)
        canvas[np.arange(len(lv))[:, None, None], rows, cols] = patches
        out[start:start + _CHUNK, :, :, 0] = canvas[:, pad:pad + SIZE, pad:pad + SIZE] * np.uint8(255)
    return out


def make_shapes(n: int = DEFAULT_N, seed: int = 0) -> ImageSet:
    """``n`` images at indices drawn without replacement by ``seed`` (sorted), with their factor
    values as ``factors`` and the shape as the label."""
    if not isinstance(n, (int, np.integer)) or not 0 < n <= N_IMAGES:
        raise LatentlabError(f"shapes: n={n!r}; expected 1 .. {N_IMAGES} images")
    index = np.sort(np.random.default_rng(seed).choice(N_IMAGES, size=n, replace=False))
    levels = levels_of(index)
    return ImageSet(images=render_shapes(levels), labels=levels[:, 0].copy(), label_names=list(SHAPE_NAMES),
                    factors=factor_values(levels), spec=f"shapes:{n}:{seed}")
