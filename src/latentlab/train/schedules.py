"""Learning-rate schedules: the multiplier of ``--lr`` at each optimizer step.

* ``constant``: 1.
* ``cosine``: half a cosine from 1 to 0 over the run (Loshchilov & Hutter, "SGDR", ICLR 2017).
* ``onecycle``: a cosine rise from 1/25 to 1 over the first 30% of the run, then a cosine fall to
  1/250000 (Smith & Topin, "Super-convergence", 2018; the defaults of torch's ``OneCycleLR``,
  without its momentum cycling).
* ``plateau``: 1, halved after :data:`PLATEAU_PATIENCE` epochs without a relative improvement of
  the watched loss (validation loss, else training loss) by :data:`PLATEAU_THRESHOLD` (torch's
  ``ReduceLROnPlateau`` with factor 0.5, patience 2).

``--warmup-steps W`` comes first: the multiplier rises linearly to the schedule's starting value
over steps 0..W-1, and the schedule is laid out over the remaining steps. Every schedule but
plateau is a pure function of (step, total), so a resumed run takes exactly the lr an
uninterrupted one would; plateau's state is three numbers, kept in the trainer state (JSON).

``total`` may be unknown for a while (a ``--budget`` run before its speed is measured): the
schedule then gives its starting value, as if the run were endless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latentlab.errors import LatentlabError

SCHEDULES = ("constant", "cosine", "onecycle", "plateau")
ONECYCLE_PEAK_AT, ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 0.3, 25.0, 1e4
PLATEAU_FACTOR, PLATEAU_PATIENCE, PLATEAU_THRESHOLD = 0.5, 2, 1e-4
LENGTH_BOUND = ("cosine", "onecycle")  # schedules laid out over the run's length


def _cos(start: float, end: float, progress: float) -> float:
    """From ``start`` (progress 0) to ``end`` (progress 1) along half a cosine."""
    return end + (start - end) * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0))) / 2.0


def shape(kind: str, t: int, n: int | None) -> float:
    """The schedule's multiplier at step ``t`` of ``n`` (``n`` None: an endless run)."""
    if kind == "cosine":
        return _cos(1.0, 0.0, t / n if n else 0.0)
    if kind == "onecycle":
        start, end = 1.0 / ONECYCLE_DIV, 1.0 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV)
        if not n:
            return start
        peak = ONECYCLE_PEAK_AT * n - 1.0  # the steps of torch's OneCycleLR: the peak, then the end at n - 1
        if t <= peak:
            return _cos(start, 1.0, t / peak if peak > 0 else 1.0)
        return _cos(1.0, end, (t - peak) / max(n - 1.0 - peak, 1e-9))
    return 1.0  # constant, plateau


def lr_factor(kind: str, step: int, total: int | None, warmup: int = 0) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based) of ``total``."""
    n = None if total is None else max(total - warmup, 1)
    if step < warmup:
        return shape(kind, 0, n) * (step + 1) / warmup
    return shape(kind, step - warmup, n)


def check_warmup(warmup_steps: int, total_steps: int | None, what: str) -> None:
    """A warm-up must end before the run does (``what``: how the run's length came about)."""
    if warmup_steps and total_steps is not None and warmup_steps >= total_steps:
        raise LatentlabError(f"--warmup-steps {warmup_steps}: expected fewer than the run's {total_steps} "
                             f"optimizer steps ({what})")


def epochs_of_steps(epochs: int | None, steps_per_epoch: int) -> str:
    """'2 epochs of 38 steps': a run's length, for messages."""
    return f"{epochs} epoch{'' if epochs == 1 else 's'} of {steps_per_epoch} step{'' if steps_per_epoch == 1 else 's'}"


@dataclass
class Plateau:
    """Reduce-on-plateau state: the multiplier, the best watched loss, epochs without improvement."""

    scale: float = 1.0
    best: float = math.inf
    bad_epochs: int = 0

    def update(self, watched: float) -> None:
        """Take one epoch's watched loss; halve ``scale`` after too many epochs without progress."""
        if watched < self.best * (1.0 - PLATEAU_THRESHOLD):
            self.best, self.bad_epochs = watched, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= PLATEAU_PATIENCE:
            self.scale *= PLATEAU_FACTOR
            self.bad_epochs = 0
