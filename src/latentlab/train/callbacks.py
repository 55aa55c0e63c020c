"""Trainer hooks: a live progress bar, and the per-epoch metrics file."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING

from latentlab.io import write_text

if TYPE_CHECKING:
    from latentlab.train.trainer import Trainer

from latentlab.train.trainer import Callback


class ProgressBar(Callback):
    """rich progress: epoch, step, each loss term, images/s and ETA (rank 0 only)."""

    def __init__(self, console: object | None = None) -> None:
        self.console = console

    def on_fit_start(self, trainer: Trainer) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.enabled = trainer.is_global_zero
        if not self.enabled:
            return
        cfg, st = trainer.config, trainer.state
        total = cfg.epochs * trainer.steps_per_epoch
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[terms]}"), TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
            console=self.console, transient=False)  # type: ignore[arg-type]
        self.task = self.progress.add_task("train", total=total, completed=st.step,
                                           epoch=f"{st.epoch + 1}/{cfg.epochs}", terms="", speed="")
        self.progress.start()
        self.t0, self.images = time.perf_counter(), 0

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        if not self.enabled:
            return
        self.images += images
        rate = self.images / max(time.perf_counter() - self.t0, 1e-9)
        text = " ".join(f"{k} {v:.4g}" for k, v in terms.items())
        self.progress.update(self.task, advance=1, terms=text, speed=f"{rate:,.0f} img/s",
                             epoch=f"{trainer.state.epoch + 1}/{trainer.config.epochs}")

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        parts = [f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("train_", "val_"))]
        self.progress.console.print(f"epoch {int(row['epoch'])}: " + "  ".join(parts))

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.enabled:
            self.progress.stop()


class MetricsCSV(Callback):
    """Rewrites ``metrics.csv`` (one row per epoch) atomically after every epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if trainer.is_global_zero:
            write_metrics(self.path, trainer.state.history)


def write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    names: list[str] = []
    for row in history:
        names += [k for k in row if k not in names]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buf.getvalue())


def read_metrics(path: Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
