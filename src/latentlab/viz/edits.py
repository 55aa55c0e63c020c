"""The edit figure: original | reconstruction | one panel per edit, one row per image; with
descriptions, a second row per image of signed difference maps (edited minus reconstruction,
averaged over channels) on a shared diverging scale with a colour bar, each captioned with its
measured description."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.data.batches import to_uint8
from latentlab.io import save_figure
from latentlab.viz.grids import image_grid, show_image
from latentlab.viz.latent import diff_map, diff_panel
from latentlab.viz.plots import figure


def edit_figure(result: Any, rows: list[int], value_range: tuple[float, float], path: str | Path,
                descriptions: Sequence[Sequence[Any]] | None = None) -> Path:
    """Save the figure of an :class:`~latentlab.latent.apply.EditResult`.

    ``descriptions[n][e]`` (a :class:`~latentlab.latent.describe.ChangeDescription` per image and
    edit) adds the difference-map row under each image row.
    """
    originals = to_uint8(result.x, value_range)
    recons = to_uint8(result.x_hat, value_range)
    edited = [to_uint8(xe, value_range) for xe in result.x_edited]
    titles = [[f"original #{i}", "reconstruction", *[e.text for e in result.edits]] for i in rows]
    if descriptions is None:
        grid = [[originals[n], recons[n], *[e[n] for e in edited]] for n in range(len(rows))]
        return image_grid(grid, titles, path)

    n_cols = 2 + len(result.edits)
    fig = figure(figsize=(1.9 * n_cols + 0.9, 4.3 * len(rows)), layout="constrained")
    axes = fig.subplots(2 * len(rows), n_cols, squeeze=False, height_ratios=[1.0, 1.1] * len(rows))
    x_hat = result.x_hat.detach().cpu().float().numpy()  # (N, C, H, W)
    for n in range(len(rows)):
        top, bottom = axes[2 * n], axes[2 * n + 1]
        for c, image in enumerate([originals[n], recons[n], *[e[n] for e in edited]]):
            show_image(top[c], image, titles[n][c])
        diffs = [diff_map(xe[n].detach().cpu().float().numpy(), x_hat[n]) for xe in result.x_edited]
        vmax = max(float(np.abs(d).max()) for d in diffs) if diffs else 1.0
        bottom[0].axis("off")
        bottom[1].axis("off")
        bottom[1].text(1.0, 0.5, "edited minus\nreconstruction\n(mean over channels)", ha="right",
                       va="center", fontsize=8, transform=bottom[1].transAxes)
        im = None
        for e, d in enumerate(diffs):
            im = diff_panel(bottom[2 + e], d, vmax)
            bottom[2 + e].set_xlabel(descriptions[n][e].caption(), fontsize=7)
        if im is not None:
            fig.colorbar(im, ax=list(bottom[2:]), shrink=0.75, label="change (model units)")
    return save_figure(fig, path, dpi=120)
