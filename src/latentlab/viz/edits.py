"""The edit figure: original | reconstruction | each edit, one row per image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latentlab.data.batches import to_uint8
from latentlab.viz.grids import image_grid


def edit_figure(result: Any, rows: list[int], value_range: tuple[float, float], path: str | Path) -> Path:
    originals = to_uint8(result.x, value_range)
    recons = to_uint8(result.x_hat, value_range)
    edited = [to_uint8(xe, value_range) for xe in result.x_edited]
    grid = [[originals[n], recons[n], *[e[n] for e in edited]] for n in range(len(rows))]
    titles = [[f"original #{i}", "reconstruction", *[e.text for e in result.edits]] for i in rows]
    return image_grid(grid, titles, path)
