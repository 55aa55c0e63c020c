"""A wall-clock budget (``--budget 10m``): the run's training time, and the steps it should allow.

The budget counts the training loop of every process that worked on the run: steps, validation
and checkpoints, summed over resumes (what a killed process did after its last checkpoint is
redone, and not counted). The run stops at the budget, after a whole step, with a checkpoint:
:meth:`Budget.spent` counts what ending the run costs (a validation and a checkpoint), so that
the run's end lands on the budget. The schedule needs a length before that: once the first
steps' speed is known (:meth:`Budget.ready`), :func:`plan_steps` turns the remaining seconds into
optimizer steps, which the run records (trainer state and ``config.json``) and lays its schedule
out over. The plan is made once: a schedule does not change its shape halfway. If the machine
speeds up, the schedule ends before the budget and the last steps take its final (tiny) learning
rate; if it slows down, the budget ends before the schedule does, whose last steps matter least.
"""

from __future__ import annotations

PLAN_AFTER = 0.05  # time steps for this share of the budget (see Budget) before planning
PLAN_AFTER_SLOW = 0.10  # ... or, when steps are slow, until this process's steps took this share


class Budget:
    """A run's budget in seconds, and when this process's steps ended (the trainer owns the clock).

    The speed is measured as training seconds per step over a window that starts after this
    process's second step (the first ones are slower: memory, kernels and caches warming up) and
    spans at least 3 steps, ``min_steps`` (so that a mid-epoch checkpoint, and the background
    write that slows the steps after it, is in it) and 5% of the budget."""

    def __init__(self, seconds: float, min_steps: int = 3, started: float = 0.0) -> None:
        self.seconds = seconds
        self.min_steps = max(min_steps, 3)
        self.started = started  # the run's elapsed seconds when this process began training
        self.ends: list[float] = []  # ... at the end of each step of this process
        self.end_seconds = 0.0  # what the run's end costs after its last step: validation, checkpoint

    def record_step(self, elapsed: float) -> None:
        self.ends.append(elapsed)

    def ready(self) -> bool:
        """Enough steps are timed to plan the run."""
        if not self.ends:
            return False
        if self.ends[-1] - self.started >= PLAN_AFTER_SLOW * self.seconds:  # slow steps: no more waiting
            return True
        return len(self.ends) - 2 >= self.min_steps and self.ends[-1] - self.ends[1] >= PLAN_AFTER * self.seconds

    def seconds_per_step(self) -> float:
        if len(self.ends) - 2 >= 1:
            return (self.ends[-1] - self.ends[1]) / (len(self.ends) - 2)
        return (self.ends[-1] - self.started) / len(self.ends)  # the warming up included: an overestimate

    def spent(self, elapsed: float) -> bool:
        """The budget is spent after ``elapsed`` seconds, counting what ending the run costs."""
        return elapsed + self.end_seconds >= self.seconds


def plan_steps(remaining: float, step: float, epoch_end: float, checkpoint: float, steps_per_epoch: int,
               checkpoint_every: int = 0) -> int:
    """How many more optimizer steps fit in ``remaining`` seconds: each takes ``step`` seconds,
    every ``steps_per_epoch`` an epoch ends (``epoch_end``: validation and checkpoint), every
    ``checkpoint_every`` steps (0: never) a mid-epoch checkpoint costs ``checkpoint``."""
    per_step = step + epoch_end / max(steps_per_epoch, 1)
    if checkpoint_every:
        per_step += checkpoint / checkpoint_every
    return max(int(remaining / max(per_step, 1e-9)), 0)
