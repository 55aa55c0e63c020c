"""Line plots: loss curves per named term."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentlab.io import save_figure
from latentlab.train.trainer import Callback, Trainer

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def figure(*args: Any, **kwargs: Any) -> Figure:
    """A matplotlib figure on the Agg backend (no display needed, no pyplot global state)."""
    from matplotlib.figure import Figure

    return Figure(*args, **kwargs)


def plot_loss(history: list[dict[str, float]], path: str | Path) -> Path:
    """One panel per loss term (loss, recon, kl), train and validation curves over epochs."""
    terms = [k[len("train_"):] for k in (history[0] if history else {}) if k.startswith("train_")]
    if "kl" not in terms:  # a plain autoencoder's loss is its reconstruction error: one panel
        terms = ["loss"]
    fig = figure(figsize=(4.2 * len(terms), 3.2), layout="constrained")
    epochs = [row["epoch"] for row in history]
    for i, term in enumerate(terms):
        ax = fig.add_subplot(1, len(terms), i + 1)
        for split, style in (("train", "-o"), ("val", "--s")):
            ys = [row.get(f"{split}_{term}", float("nan")) for row in history]
            if any(y == y for y in ys):  # not all missing (NaN)
                ax.plot(epochs, ys, style, markersize=3, label=split)
        ax.set_title(term)
        ax.set_xlabel("epoch")
        if term in ("loss", "recon") and all(row.get(f"train_{term}", 1) > 0 for row in history):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path, dpi=110)


class LossPlot(Callback):
    """A trainer hook that draws the loss curves into ``path`` once training ends: the command
    line adds it, so ``train/`` draws nothing itself."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.is_global_zero and trainer.state.history:
            plot_loss(trainer.state.history, self.path)
