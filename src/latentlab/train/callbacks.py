"""Trainer hooks: a live progress bar, the per-epoch metrics file and the per-step log."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from latentlab.io import write_text

if TYPE_CHECKING:
    from latentlab.train.trainer import Trainer

from latentlab.train.trainer import Callback

STEP_LOG = "steps.csv"  # in the run folder, beside metrics.csv


class ProgressBar(Callback):
    """rich progress: epoch, step, each loss term, images/s and ETA (rank 0 only)."""

    def __init__(self, console: object | None = None) -> None:
        self.console = console

    def on_fit_start(self, trainer: Trainer) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.enabled = trainer.is_global_zero
        if not self.enabled:
            return
        st = trainer.state
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[terms]}"), TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
            console=self.console, transient=False)  # type: ignore[arg-type]
        self.task = self.progress.add_task("train", total=trainer.total_steps, completed=st.step,
                                           epoch=_epoch(trainer), terms="", speed="")
        self.progress.start()
        self.t0, self.images = time.perf_counter(), 0

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        if not self.enabled:
            return
        self.images += images
        rate = self.images / max(time.perf_counter() - self.t0, 1e-9)
        text = " ".join(f"{k} {v:.4g}" for k, v in {**terms, **trainer.step_info}.items())
        self.progress.update(self.task, advance=1, terms=text, speed=f"{rate:,.0f} img/s",
                             epoch=_epoch(trainer), total=trainer.total_steps)

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        parts = [f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("train_", "val_"))]
        self.progress.console.print(f"epoch {int(row['epoch'])}: " + "  ".join(parts))

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.enabled:
            self.progress.stop()


def _epoch(trainer: Trainer) -> str:
    """'3/10', or '3' when a --budget decides how many epochs there are."""
    epochs = trainer.config.epochs
    return f"{trainer.state.epoch + 1}" + (f"/{epochs}" if epochs is not None and trainer.config.budget is None
                                           else "")


class MetricsCSV(Callback):
    """Rewrites ``metrics.csv`` (one row per epoch) atomically after every epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if trainer.is_global_zero:
            write_metrics(self.path, trainer.state.history)


def write_metrics(path: Path, history: Sequence[Mapping[str, float | str]]) -> None:
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


class StepLog(Callback):
    """``steps.csv``: one row per optimizer step (step, epoch, each loss term, lr, and the gradient
    norm before clipping under --grad-clip), rewritten atomically before each checkpoint. On a
    resume, the rows after the checkpoint's step (taken by a process that was killed) are dropped:
    they are taken again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, float | str]] = []  # rows read back stay text: rewritten as they were

    def on_fit_start(self, trainer: Trainer) -> None:
        self.rows = []
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                self.rows = [row for row in csv.DictReader(f) if int(row["step"]) <= trainer.state.step]

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        if trainer.is_global_zero:
            self.rows.append({"step": trainer.state.step, "epoch": trainer.state.epoch + 1, **terms,
                              **trainer.step_info})

    def on_checkpoint(self, trainer: Trainer) -> None:
        write_metrics(self.path, self.rows)
