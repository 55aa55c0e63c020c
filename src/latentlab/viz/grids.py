"""Image grids: rows of panels with titles (original | reconstruction | edits ...)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from latentlab.io import save_figure
from latentlab.viz.plots import figure


def show_image(ax, image: np.ndarray, title: str = "") -> None:  # type: ignore[no-untyped-def]
    """Draw a uint8 (H, W, C) image without axes; grayscale when C == 1."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def image_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[Sequence[str]] | None,
               path: str | Path, row_labels: Sequence[str] | None = None, panel: float = 1.6,
               suptitle: str | None = None) -> Path:
    """Save a grid of uint8 (H, W, C) images; ``titles[r][c]`` above each panel."""
    n_rows = len(rows)
    n_cols = max(len(r) for r in rows)
    fig = figure(figsize=(panel * n_cols + (0.8 if row_labels else 0), panel * n_rows + 0.35 * n_rows),
                 layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            if c < len(row):
                show_image(ax, row[c], titles[r][c] if titles else "")
            else:
                ax.axis("off")
        if row_labels:
            axes[r][0].set_ylabel(row_labels[r], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path, dpi=120)
