"""The latent-size sweep figure: held-out error vs latent size beside PCA, and active units."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from latentlab.io import save_figure
from latentlab.viz.plots import figure

if TYPE_CHECKING:
    from latentlab.metrics.sweep import SweepResult


def sweep_figure(result: SweepResult, path: str | Path, title: str = "") -> Path:
    """Two panels: held-out MSE (log) vs latent size (log2) for the model and PCA with the
    suggested size marked; active units vs latent size against the diagonal."""
    sizes = [s.latent_dim for s in result.sizes]
    fig = figure(figsize=(8.4, 3.2), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(sizes, [s.recon_error for s in result.sizes], "-o", markersize=4, label="autoencoder")
    ax.plot(sizes, [s.pca_error for s in result.sizes], "--s", markersize=4, label="PCA, same size")
    ax.axvline(result.suggested, color="0.5", linestyle=":", label=f"suggested: {result.suggested}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(d) for d in sizes])
    ax.set_yscale("log")
    ax.set_xlabel("latent size")
    ax.set_ylabel("held-out MSE per value")
    fig.suptitle(_short(title) if title else "reconstruction error against latent size", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    ax.plot(sizes, [s.active_units for s in result.sizes], "-o", markersize=4, label="active units")
    ax.plot(sizes, sizes, ":", color="0.5", label="all elements")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(d) for d in sizes])
    ax.set_xlabel("latent size")
    ax.set_ylabel("active units (Cov E[z|x] > 0.01)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=80)


def _short(title: str) -> str:
    """File paths in a title cut to their last part (``celeba:/long/path/x.tar#train`` ->
    ``celeba:x.tar#train``), so the title fits above the figure."""
    words = []
    for word in title.split(" "):
        kind, sep, rest = word.partition(":")
        if sep and "/" in rest:
            path, hash_, fragment = rest.partition("#")
            word = f"{kind}:{Path(path).name}{hash_}{fragment}"
        words.append(word)
    return " ".join(words)
