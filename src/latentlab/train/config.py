"""What a training run is told (:class:`TrainConfig`, recorded in the run's ``config.json``) and
what it has done so far (:class:`TrainState`, saved as JSON in every checkpoint)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from latentlab.errors import LatentlabError
from latentlab.train.schedules import SCHEDULES

OPTIMIZERS = ("adam", "adamw", "sgd")
PRECISIONS = {"32": "32-true", "32-true": "32-true", "bf16-mixed": "bf16-mixed", "bf16-true": "bf16-true",
              "16-mixed": "16-mixed", "64": "64-true", "64-true": "64-true"}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int | None = 10  # None: as many as the --budget allows
    batch_size: int = 128  # rows per forward pass (a micro-batch when accumulate > 1)
    lr: float = 1e-3  # the peak learning rate of a schedule
    optimizer: str = "adam"
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int | None = None  # epochs without validation improvement before stopping
    seed: int = 0
    precision: str = "32"
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    num_nodes: int = 1
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0: at each epoch's end only
    lr_schedule: str = "constant"  # constant, cosine, onecycle or plateau (see schedules.py)
    warmup_steps: int = 0  # optimizer steps of linear warm-up before the schedule
    grad_clip: float | None = None  # largest global gradient norm; larger ones are scaled down
    ema: float | None = None  # decay of the weights' moving average, used to validate and as the result
    accumulate: int = 1  # batches whose gradients make one optimizer step
    budget: float | None = None  # wall-clock seconds of training
    deterministic: bool = False  # bit-identical runs (see determinism.py)

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, expected: str) -> LatentlabError:
            return LatentlabError(f"--{name.replace('_', '-')} {value}: expected {expected}")
        if self.epochs is None and self.budget is None:
            raise LatentlabError("--epochs: expected a number of epochs, a --budget, or both")
        for name in ("epochs", "batch_size", "devices", "num_nodes", "accumulate"):
            v = getattr(self, name)
            if (v is not None or name != "epochs") and (not isinstance(v, int) or v < 1):
                raise bad(name, v, "a positive integer")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", self.lr, "a positive number")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise bad("weight_decay", self.weight_decay, "a number >= 0")
        if not 0 <= self.val_fraction < 1:
            raise bad("val_fraction", self.val_fraction, "a fraction in [0, 1)")
        if self.patience is not None and self.patience < 1:
            raise bad("patience", self.patience, "a positive integer")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", self.optimizer, "one of " + ", ".join(OPTIMIZERS))
        if self.precision not in PRECISIONS:
            raise bad("precision", self.precision, "one of 32, bf16-mixed, bf16-true, 16-mixed, 64")
        if self.checkpoint_every < 0:
            raise bad("checkpoint_every", self.checkpoint_every, "an integer >= 0")
        self._check_new_options(bad)

    def _check_new_options(self, bad: Callable[[str, Any, str], LatentlabError]) -> None:
        if self.lr_schedule not in SCHEDULES:
            raise bad("lr_schedule", self.lr_schedule, "one of " + ", ".join(SCHEDULES))
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise bad("warmup_steps", self.warmup_steps, "an integer >= 0")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise bad("grad_clip", self.grad_clip, "a positive gradient norm")
        if self.ema is not None and not 0 < self.ema < 1:
            raise bad("ema", self.ema, "a decay between 0 and 1, e.g. 0.999")
        if self.budget is not None and not (math.isfinite(self.budget) and self.budget > 0):
            raise bad("budget", self.budget, "a positive number of seconds")


@dataclass
class TrainState:
    """Everything besides weights and optimizer that a resumed run needs (saved as JSON)."""

    epoch: int = 0
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of ``epoch`` already taken
    partial: dict[str, float] = field(default_factory=dict)  # running sums of this epoch's terms
    partial_count: int = 0
    epoch_seconds: float = 0.0
    best: float = math.inf
    best_step: int = -1  # the step whose weights are the best so far (-1: none yet)
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""  # why training stopped before its last epoch: "patience" or "budget"
    elapsed: float = 0.0  # seconds of training, summed over resumes (what --budget counts)
    budget_steps: int = 0  # the schedule's length: steps the --budget should allow, once measured (0: not yet)
    plateau: dict[str, Any] = field(default_factory=dict)  # the plateau schedule's state
    ema_updates: int = 0  # updates of the moving average so far
