"""Generated cartoon faces whose generative factors are known.

Each image is drawn from six independent uniform factors, stored in ``ImageSet.factors``:

=============  =======  ===========================================================
factor         range    what it changes
=============  =======  ===========================================================
``hue``        [0, 1]   skin colour: 0 warm red-orange ... 1 cool blue-violet
``face_width`` [0, 1]   horizontal half-axis of the face ellipse (narrow ... wide)
``eye_size``   [0, 1]   eye radius (small ... large)
``mouth``      [0, 1]   0 a closed straight mouth ... 1 a wide-open smile
``head_turn``  [-1, 1]  eyes, nose and mouth shift left (-1) ... right (+1) inside the face
``background`` [0, 1]   background brightness, dark blue ... pale grey-green
=============  =======  ===========================================================

``labels`` are 1 ("smiling") where ``mouth > 0.5``, else 0 ("neutral"). Everything is drawn
with array masks over a coordinate grid (no per-pixel Python), with soft edges from an
approximate signed distance, so 5,000 faces take well under a second. The same seed gives the
same faces. :func:`render_faces` draws faces for given factor values, e.g. to vary one factor
while the others stay fixed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

__all__ = ["FACTOR_RANGES", "make_faces", "render_faces"]

FACTOR_RANGES: dict[str, tuple[float, float]] = {
    "hue": (0.0, 1.0),
    "face_width": (0.0, 1.0),
    "eye_size": (0.0, 1.0),
    "mouth": (0.0, 1.0),
    "head_turn": (-1.0, 1.0),
    "background": (0.0, 1.0),
}
LABEL_NAMES = ["neutral", "smiling"]

_HAIR = np.array([0.25, 0.15, 0.08], dtype=np.float32)[:, None, None]  # (3, 1, 1)
_EYE_WHITE = np.array([0.97, 0.97, 0.95], dtype=np.float32)[:, None, None]
_PUPIL = np.array([0.08, 0.07, 0.12], dtype=np.float32)[:, None, None]
_MOUTH = np.array([0.50, 0.06, 0.10], dtype=np.float32)[:, None, None]
_CHUNK_PIXELS = 32 * 64 * 64  # pixels per chunk: keeps the float32 planes cache-sized


def _col(v: np.ndarray) -> np.ndarray:
    """(n,) -> (n, 1, 1) so per-image values broadcast over the (n, S, S) grid."""
    return v.astype(np.float32)[:, None, None]


def _ellipse(x: np.ndarray, y: np.ndarray, cx: Any, cy: Any, a: Any, b: Any, px: float) -> np.ndarray:
    """Soft coverage (n, R, S) in [0, 1] of ellipses centred (cx, cy) with half-axes (a, b).

    ``x`` is (1, 1, S) and ``y`` (1, R, 1); the parameters are scalars or (n, 1, 1). The edge
    is a one-pixel ramp on the normalised radius q scaled by the geometric mean half-axis, a good
    approximation of the signed distance for the near-round shapes drawn here.
    """
    dx, dy = (x - cx) / a, (y - cy) / b  # (n, 1, S), (n, R, 1): squared once, then broadcast
    q = np.sqrt(dx * dx + dy * dy)  # (n, R, S)
    k = np.sqrt(a * b) / px  # pixels per unit of q at the edge
    q *= -k
    q += k + 0.5
    return np.asarray(np.clip(q, 0.0, 1.0, out=q))


def _ramp(d: np.ndarray, px: float) -> np.ndarray:
    """Coverage from a signed distance that is > 0 inside (coordinate units)."""
    return np.clip(d / px + 0.5, 0.0, 1.0)


def _paint(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """In place: img (n, 3, R, S) <- img + alpha * (colour - img); colour (3, 1, 1) or (n, 3, 1, 1).

    Channels come before the pixels so numpy's inner loops run over whole rows, not over 3 values.
    """
    img += alpha[:, None] * (colour - img)


def _skin(hue: np.ndarray) -> np.ndarray:
    """Skin colour (n, 3, 1, 1): warm red-orange at 0, cool blue-violet at 1."""
    warm = np.array([0.96, 0.68, 0.50], dtype=np.float32)
    cool = np.array([0.62, 0.66, 0.95], dtype=np.float32)
    h = hue.astype(np.float32)[:, None]
    return (warm + h * (cool - warm))[:, :, None, None]


def _rows(grid: np.ndarray, lo: float, hi: float, px: float) -> slice:
    """The band of grid rows whose y lies in [lo, hi] (plus a pixel): features are drawn only there."""
    start = int(np.searchsorted(grid, lo - 2 * px))
    return slice(start, int(np.searchsorted(grid, hi + 2 * px)))


def _render_chunk(f: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Faces for one chunk of factors -> float32 (n, 3, S, S) in [0, 1]."""
    px = 2.0 / size  # one pixel in coordinate units; the grid spans [-1, 1]
    grid = (np.arange(size, dtype=np.float32) + 0.5) * px - 1.0
    x, y = grid[None, None, :], grid[None, :, None]  # (1, 1, S) and (1, S, 1)

    a = _col(0.42 + 0.26 * f["face_width"])  # face half-width
    turn = _col(f["head_turn"])
    shift = 0.24 * a * turn  # features move sideways inside the face
    eye_r = _col(0.055 + 0.075 * f["eye_size"])
    mouth = _col(f["mouth"])
    skin = _skin(f["hue"])

    dark = np.array([0.06, 0.08, 0.20], dtype=np.float32)
    pale = np.array([0.82, 0.88, 0.80], dtype=np.float32)
    bg = dark + f["background"].astype(np.float32)[:, None] * (pale - dark)  # (n, 3)
    bg = bg[:, :, None, None]  # (n, 3, 1, 1)

    # hair behind and above the face (painted straight onto the flat background), a fringe
    img = _ellipse(x, y, 0.0, 0.0, a + 0.07, 0.84, px)[:, None] * (_HAIR - bg)
    img += bg  # (n, 3, S, S)
    face = _ellipse(x, y, 0.0, 0.1, a, 0.76, px)  # (n, S, S)
    _paint(img, face * _ramp(y + 0.42 - 0.08 * np.abs(x - shift), px), skin)

    # eyes: the eye on the side the head turns to gets narrower, pupils look that way
    eye_y, r = -0.1, _rows(grid, -0.1 - 0.13, -0.1 + 0.13, px)
    img_r, face_r, y_r = img[:, :, r], face[:, r], y[:, r]
    for side in (-1.0, 1.0):
        cx = shift + side * (0.2 * a + 0.07)
        rx = eye_r * (1.0 - 0.3 * np.clip(side * turn, 0.0, 1.0))
        _paint(img_r, _ellipse(x, y_r, cx, eye_y, rx, 0.85 * eye_r, px) * face_r, _EYE_WHITE)
        pupil_r = 0.5 * eye_r
        pupil = _ellipse(x, y_r, cx + 0.45 * rx * turn, eye_y, 0.8 * pupil_r, pupil_r, px)
        _paint(img_r, pupil * face_r, _PUPIL)

    # nose: a darker skin ellipse, shifted a bit further than the eyes (perspective)
    r = _rows(grid, 0.16 - 0.09, 0.16 + 0.09, px)
    _paint(img[:, :, r], _ellipse(x, y[:, r], 1.35 * shift, 0.16, 0.05, 0.09, px) * face[:, r], skin * 0.78)

    # mouth: between an upper and a lower curve; corners rise and the lower lip drops with `mouth`
    mx, my, half_w = 1.2 * shift, 0.44, 0.42 * a + 0.04
    r = _rows(grid, my - 0.014 - 0.09, my + 0.014 + 0.2, px)
    y_r = y[:, r]
    u = (x - mx) / half_w  # (n, 1, S): -1 .. 1 across the mouth
    upper = my - 0.014 - 0.09 * mouth * u * u
    lower = upper + 0.028 + 0.2 * mouth * np.clip(1.0 - u * u, 0.0, 1.0)
    inside = np.minimum(np.minimum(y_r - upper, lower - y_r), (1.0 - np.abs(u)) * half_w)
    _paint(img[:, :, r], _ramp(inside, px) * face[:, r], _MOUTH)
    return np.asarray(img)


def render_faces(factors: dict[str, np.ndarray], size: int = 64) -> np.ndarray:
    """Draw faces for given factor values (each an (N,) array, see ``FACTOR_RANGES``).

    Returns uint8 (N, size, size, 3). Values outside a factor's range are clipped to it.
    """
    missing = sorted(set(FACTOR_RANGES) - set(factors))
    if missing:
        raise LatentlabError(f"faces: missing factor(s) {missing}; expected {sorted(FACTOR_RANGES)}")
    if size < 8:
        raise LatentlabError(f"faces: size {size} too small; expected at least 8 pixels")
    f = {k: np.clip(np.asarray(factors[k], dtype=np.float32).ravel(), *FACTOR_RANGES[k])
         for k in FACTOR_RANGES}
    n = len(f["hue"])
    if any(len(v) != n for v in f.values()):
        raise LatentlabError(f"faces: factor arrays of different lengths {[len(v) for v in f.values()]}")
    out = np.empty((n, size, size, 3), dtype=np.uint8)  # (N, S, S, 3)
    step = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, n, step):
        chunk = {k: v[start:start + step] for k, v in f.items()}
        img = _render_chunk(chunk, size)  # (n, 3, S, S) float32 in [0, 1]
        img *= 255.0
        img += 0.5
        out[start:start + step] = img.transpose(0, 2, 3, 1)  # truncating cast after +0.5 rounds
    return out


def make_faces(n: int, seed: int = 0, size: int = 64) -> ImageSet:
    """``n`` random faces (size x size RGB) with their factors and a smiling label.

    Factors are independent uniform draws over ``FACTOR_RANGES`` from ``seed``.
    """
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise LatentlabError(f"faces: n={n!r}; expected a positive number of faces")
    rng = np.random.default_rng(seed)
    factors = {k: rng.uniform(lo, hi, size=n) for k, (lo, hi) in FACTOR_RANGES.items()}
    images = render_faces(factors, size=size)
    labels = (factors["mouth"] > 0.5).astype(np.int64)
    return ImageSet(images=images, labels=labels, label_names=list(LABEL_NAMES),
                    factors=factors, spec=f"faces:{n}:{seed}")
