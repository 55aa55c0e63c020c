"""Figures of the latent space: traversal grids and GIFs, interpolation strips, sample grids,
latent maps (scatter and the decoded plane of the Keras VAE example), attribute strips and
signed difference maps with colour bars.

Inputs are uint8 (..., H, W, C) images (``latentlab.data.batches.to_uint8``); many panels are
packed into one mosaic per row, so a 9 x 8 traversal is 8 ``imshow`` calls, not 72.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.io import atomic_write, save_figure
from latentlab.viz.grids import show_image
from latentlab.viz.plots import figure

DIFF_CMAP = "RdBu_r"  # diverging: red where the edit raised the value, blue where it lowered it
MARK = "#d62728"


# ---------------------------------------------------------------- helpers


def mosaic(images: np.ndarray, gap: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 (R, S, H, W, C) -> one image (R*(H+gap)-gap, S*(W+gap)-gap, C) with ``fill`` gaps."""
    r, s, h, w, c = images.shape
    out = np.full((r * (h + gap) - gap, s * (w + gap) - gap, c), fill, dtype=np.uint8)
    for i in range(r):
        for j in range(s):
            out[i * (h + gap): i * (h + gap) + h, j * (w + gap): j * (w + gap) + w] = images[i, j]
    return out


def square_mosaic(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """uint8 (N, H, W, C) -> a near-square mosaic; empty cells stay white."""
    n, h, w, c = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    padded = np.full((rows * cols, h, w, c), 255, dtype=np.uint8)
    padded[:n] = images
    return mosaic(padded.reshape(rows, cols, h, w, c), gap)


def _show(ax: Any, image: np.ndarray) -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")


def diff_map(x_after: Any, x_before: Any) -> np.ndarray:
    """Signed per-pixel change averaged over channels: float (H, W) from (C, H, W) tensors/arrays."""
    after, before = np.asarray(x_after, dtype=np.float64), np.asarray(x_before, dtype=np.float64)
    diff: np.ndarray = after.mean(0) - before.mean(0)  # (H, W)
    return diff


def diff_panel(ax: Any, diff: np.ndarray, vmax: float, title: str = "") -> Any:
    """Draw a signed (H, W) difference on a symmetric diverging scale; returns the image for a colour bar."""
    vmax = max(float(vmax), 1e-6)
    im = ax.imshow(diff, cmap=DIFF_CMAP, vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return im


# ---------------------------------------------------------------- traversal


def traversal_figure(images: np.ndarray, values: np.ndarray, elements: Sequence[int], own: Sequence[float],
                     marked: Sequence[int], path: str | Path, row_labels: Sequence[str] | None = None,
                     title: str = "") -> Path:
    """One row per latent element: uint8 images (K, S, H, W, C) decoded at ``values`` (K, S).

    ``marked[k]`` is the step closest to the image's own value ``own[k]``: framed in red.
    """
    k, s, h, w, _ = images.shape
    gap = max(1, h // 16)
    fig = figure(figsize=(min(1.1 * s + 1.6, 22), 1.25 * k + 0.6), layout="constrained")
    axes = fig.subplots(k, 1, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        _show(ax, mosaic(images[i:i + 1], gap))
        centres = [j * (w + gap) + (w - 1) / 2 for j in range(s)]
        ax.set_xticks(centres, [f"{v:.2g}" for v in values[i]], fontsize=7)
        ax.set_yticks([])
        label = row_labels[i] if row_labels else f"z[{elements[i]}]"
        outside = "" if min(values[i]) <= own[i] <= max(values[i]) else " (outside)"
        ax.set_ylabel(f"{label}\nown {own[i]:.2g}{outside}", fontsize=8, rotation=0, ha="right", va="center")
        from matplotlib.patches import Rectangle

        j = marked[i]
        ax.add_patch(Rectangle((j * (w + gap) - 0.5 - gap / 2, -0.5 - gap / 2), w + gap, h + gap,
                               fill=False, edgecolor=MARK, linewidth=2.5, clip_on=False))
        for spine in ax.spines.values():
            spine.set_visible(False)
    axes[-1].set_xlabel("value of the element (red frame: closest to the image's own value)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=110)


def save_gif(frames: np.ndarray, path: str | Path, duration_ms: int = 120, min_side: int = 128) -> Path:
    """Animated GIF of uint8 frames (S, H, W, C), played forth and back, looping; small images are
    enlarged (nearest neighbour) to at least ``min_side`` pixels."""
    from PIL import Image

    scale = max(1, int(np.ceil(min_side / max(frames.shape[1:3]))))
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    seq = list(frames) + list(frames[-2:0:-1])  # forth and back
    pics = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in seq]

    def write(tmp: Path) -> None:
        pics[0].save(tmp, format="GIF", save_all=True, append_images=pics[1:], duration=duration_ms, loop=0)

    return atomic_write(path, write)


# ---------------------------------------------------------------- strips and grids


def strip_figure(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[Sequence[str]], path: str | Path,
                 row_labels: Sequence[str] | None = None, diffs: np.ndarray | None = None,
                 diff_titles: Sequence[str] | None = None, suptitle: str = "") -> Path:
    """Rows of uint8 (H, W, C) panels, with an optional row of signed difference maps
    (S', H, W) under the last row (aligned to its right end) sharing one colour bar."""
    n_cols = max(len(r) for r in rows)
    n_rows = len(rows) + (1 if diffs is not None else 0)
    fig = figure(figsize=(1.35 * n_cols + 1.0, 1.55 * n_rows + 0.4), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            if c < len(row):
                show_image(axes[r][c], row[c], titles[r][c])
            else:
                axes[r][c].axis("off")
        if row_labels:
            axes[r][0].set_ylabel(row_labels[r], fontsize=8)
    if diffs is not None:
        vmax = float(np.abs(diffs).max()) if diffs.size else 1.0
        offset = n_cols - len(diffs)
        im = None
        for c in range(n_cols):
            ax = axes[-1][c]
            if c < offset:
                ax.axis("off")
                continue
            im = diff_panel(ax, diffs[c - offset], vmax, diff_titles[c - offset] if diff_titles else "")
        if im is not None:
            fig.colorbar(im, ax=list(axes[-1][offset:]), shrink=0.8, label="change")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path, dpi=110)


def sample_figure(grids: Sequence[np.ndarray], titles: Sequence[str], path: str | Path,
                  suptitle: str = "") -> Path:
    """Side by side: one square mosaic per uint8 (N, H, W, C) set, each under its title."""
    fig = figure(figsize=(5.2 * len(grids), 5.6), layout="constrained")
    axes = fig.subplots(1, len(grids), squeeze=False)[0]
    for ax, images, title in zip(axes, grids, titles, strict=True):
        _show(ax, square_mosaic(images, gap=max(1, images.shape[1] // 16)))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=10)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return save_figure(fig, path, dpi=110)


# ---------------------------------------------------------------- latent map


def _scatter(ax: Any, xy: np.ndarray, labels: np.ndarray | None, label_names: Sequence[str] | None,
             axis_names: Sequence[str]) -> None:
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.6, color="#1f77b4", linewidths=0)
    else:
        classes = np.unique(labels)
        cmap = "tab10" if len(classes) <= 10 else "tab20" if len(classes) <= 20 else "viridis"
        points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, s=6, alpha=0.7, cmap=cmap, linewidths=0)
        if len(classes) <= 20:
            handles, _ = points.legend_elements()
            names = [label_names[int(c)] if label_names and 0 <= int(c) < len(label_names) else str(int(c))
                     for c in classes]
            ax.legend(handles, names, fontsize=7, markerscale=0.8, title="label", title_fontsize=7)
        else:
            ax.figure.colorbar(points, ax=ax, label="label")
    ax.set_xlabel(axis_names[0], fontsize=9)
    ax.set_ylabel(axis_names[1], fontsize=9)
    ax.grid(alpha=0.3)


def latent_map_figure(xy: np.ndarray, labels: np.ndarray | None, label_names: Sequence[str] | None,
                      axis_names: Sequence[str], path: str | Path, title: str = "",
                      plane: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Path:
    """Scatter of the encoded data (N, 2) coloured by label; with ``plane`` = (uint8 images
    (n, n, H, W, C), z0 values (n,), z1 values (n,) top to bottom) also the decoded grid."""
    fig = figure(figsize=(11.5 if plane is not None else 6.2, 5.4), layout="constrained")
    axes = fig.subplots(1, 2 if plane is not None else 1, squeeze=False)[0]
    _scatter(axes[0], xy, labels, label_names, axis_names)
    axes[0].set_title("encoded data", fontsize=10)
    if plane is not None:
        images, v0, v1 = plane
        n = images.shape[0]
        big = mosaic(images, gap=0)
        if big.shape[-1] == 1:
            axes[1].imshow(big[..., 0], cmap="gray", vmin=0, vmax=255,
                           extent=(float(v0[0]), float(v0[-1]), float(v1[-1]), float(v1[0])))
        else:
            axes[1].imshow(big, extent=(float(v0[0]), float(v0[-1]), float(v1[-1]), float(v1[0])))
        axes[1].set_aspect("auto")
        axes[1].set_xlabel("z[0]", fontsize=9)
        axes[1].set_ylabel("z[1]", fontsize=9)
        axes[1].set_title(f"decoded {n} x {n} grid over the latent plane", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path, dpi=110)

