"""--budget: the duration syntax, the plan from measured speed, a clean stop, and resuming.

Most checks run the trainer on a simulated clock (one second per optimizer step, nothing else
takes time), so that the plan and the stop are the same on every machine, and a resumed run can
be compared bit for bit with an uninterrupted one; one runs the command line on the real clock.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.data import BatchSpec
from latentlab.durations import format_duration, parse_duration
from latentlab.errors import LatentlabError
from latentlab.losses import model_loss
from latentlab.models import FCNConfig
from latentlab.models.registry import build
from latentlab.train.batches import ImageBatches
from latentlab.train.budget import Budget, plan_steps
from latentlab.train.trainer import Callback, TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

# ---- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("1.5h", 5400), (" 2m ", 120), ("1d", 86400),
    ("2m30s", 150), ("0.5s", 0.5), ("10M", 600),
])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10", "", "m", "10 minutes", "-5s", "0s", "1m1h", "1m1m", "nans", "1e3s",
                                  "inf h", "10m!", "h1"])
def test_a_duration_that_does_not_parse_is_one_line(text: str) -> None:
    with pytest.raises(LatentlabError, match=r"^--budget .*: expected a duration such as 90s, 10m, 2h or 1h30m"):
        parse_duration(text, option="--budget")


@pytest.mark.parametrize("seconds", [90.0, 600.0, 5400.0, 7200.0, 86400.0, 2.5, 61.0])
def test_format_duration_reads_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
    assert format_duration(600) == "10m" and format_duration(90) == "90s" and format_duration(5400) == "1h30m"


# ---- the plan -----------------------------------------------------------------------------------

def test_plan_steps_counts_epoch_ends_and_checkpoints() -> None:
    assert plan_steps(100.0, step=1.0, epoch_end=0.0, checkpoint=0.0, steps_per_epoch=10) == 100
    assert plan_steps(100.0, step=1.0, epoch_end=10.0, checkpoint=0.0, steps_per_epoch=10) == 50  # 2 s a step
    assert plan_steps(100.0, step=1.0, epoch_end=0.0, checkpoint=3.0, steps_per_epoch=10, checkpoint_every=3) == 50
    assert plan_steps(-5.0, step=1.0, epoch_end=0.0, checkpoint=0.0, steps_per_epoch=10) == 0


def test_the_plan_waits_for_timed_steps_after_two_warming_up() -> None:
    budget = Budget(100.0)
    for end in (2.0, 4.0, 5.0, 6.0, 7.0, 8.0):  # two slow steps, then a second each
        budget.record_step(end)
        assert not budget.ready()  # at most 4 s timed after the second step: not yet 5% of the budget
    budget.record_step(9.0)
    assert budget.ready() and budget.seconds_per_step() == 1.0


def test_the_window_holds_a_checkpoint_and_slow_steps_plan_at_once() -> None:
    budget = Budget(100.0, min_steps=8, started=30.0)  # a resumed run: 30 s were spent before
    for end in range(31, 39):
        budget.record_step(float(end))
    assert not budget.ready()  # 6 timed steps, 6 s: but a checkpoint every 7 steps is not in the window yet
    budget.record_step(39.0)
    budget.record_step(40.0)
    assert budget.ready() and budget.seconds_per_step() == 1.0
    slow = Budget(100.0)
    slow.record_step(11.0)
    assert slow.ready() and slow.seconds_per_step() == 11.0  # one step took over 10% of the budget


# ---- a budgeted run on a simulated clock ---------------------------------------------------------

class StepClock:
    """One second per optimizer step, whatever the machine (``later`` seconds per step after step
    20, to change the machine's speed after the plan is made)."""

    trainer: Trainer | None = None

    def __init__(self, later: float = 1.0) -> None:
        self.later = later

    def __call__(self) -> float:
        step = self.trainer.state.step if self.trainer is not None else 0
        return float(min(step, 20) + max(step - 20, 0) * self.later)


class Interrupt(Callback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        if trainer.state.step == self.at_step:
            raise KeyboardInterrupt


TINY = FCNConfig(in_shape=(3, 8, 8), hidden=(8,), latent_dim=2)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """72 random 8x8 images: a step takes about a millisecond (the clock is simulated anyway)."""
    return np.random.default_rng(0).integers(0, 256, size=(72, 8, 8, 3), dtype=np.uint8)


def budgeted(tmp_path, images, name: str, *, resume: bool = False, interrupt: int = 0, later: float = 1.0,
             **options: object) -> Trainer:
    cfg = TrainConfig(**{"epochs": None, "batch_size": 16, "budget": 99.0, "lr_schedule": "cosine",
                         "val_fraction": 0.0, **options})  # type: ignore[arg-type]
    clock = StepClock(later)
    trainer = Trainer(cfg, checkpoint_dir=tmp_path / name, clock=clock,
                      callbacks=[Interrupt(interrupt)] if interrupt else [])
    clock.trainer = trainer
    batches = ImageBatches(images[:64], np.arange(64), 16, BatchSpec(), seed=2)  # 4 steps an epoch
    val = ImageBatches(images[64:], np.arange(8), 16, BatchSpec(), shuffle=False, equal_shards=False)
    torch.manual_seed(0)
    trainer.fit(build(TINY), model_loss, batches, val, resume=resume)
    return trainer


def test_the_run_is_laid_out_over_the_budget_and_stops_with_a_checkpoint(tmp_path, images) -> None:
    trainer = budgeted(tmp_path, images, "run")
    st = trainer.state
    # planned after 7 steps (2 warming up, then 5 s: over 5% of 99 s): 92 s left are 92 more steps
    assert st.budget_steps == 99 and st.step == 99 and st.stop_reason == "budget" and st.stopped_early
    assert st.elapsed == 99.0 and st.epoch == 25 and st.history[-1]["epoch"] == 24.75  # 3 of 4 steps
    assert trainer.optimizer.param_groups[0]["lr"] < 1e-3 * 1e-3  # the cosine has reached its end
    pointer = json.loads((tmp_path / "run" / "latest.json").read_text())
    assert pointer["checkpoint"] == "ckpt-000000099"


OPTIONS = {"lr_schedule": "onecycle", "ema": 0.9, "grad_clip": 1.0, "accumulate": 2}  # 2 steps an epoch


def test_a_budgeted_run_resumed_after_its_plan_ends_bit_for_bit_as_an_uninterrupted_one(tmp_path, images) -> None:
    """Interrupted at step 21, after the plan (made at step 7) and a checkpoint (step 20, the end
    of epoch 10): the resumed run keeps the recorded plan, counts the budget on from the
    checkpoint's seconds, and ends with the same weights as an uninterrupted run."""
    reference = budgeted(tmp_path, images, "reference", **OPTIONS)
    with pytest.raises(KeyboardInterrupt):
        budgeted(tmp_path, images, "interrupted", interrupt=21, **OPTIONS)
    resumed = budgeted(tmp_path, images, "interrupted", resume=True, **OPTIONS)
    assert resumed.state.step == reference.state.step == reference.state.budget_steps == 99
    assert resumed.state.history == reference.state.history
    final, expected = resumed.model.state_dict(), reference.model.state_dict()
    for key, value in expected.items():
        assert torch.equal(final[key], value), key


def test_a_budgeted_run_resumed_before_its_plan_plans_again(tmp_path, images) -> None:
    """Interrupted at step 5 (checkpoint at step 4, no plan yet): the resumed process measures
    its own steps and lays out what is left of the budget (same steps here, on a steady clock;
    its first planned steps' lr differs from an uninterrupted run's, so its weights do too)."""
    with pytest.raises(KeyboardInterrupt):
        budgeted(tmp_path, images, "early", interrupt=5, **OPTIONS)
    resumed = budgeted(tmp_path, images, "early", resume=True, **OPTIONS)
    assert resumed.state.budget_steps == resumed.state.step == 99 and resumed.state.elapsed == 99.0


@pytest.mark.parametrize(("later", "steps", "elapsed"), [(0.5, 178, 99.0), (2.0, 60, 100.0)])
def test_the_clock_stops_the_run_when_the_speed_changes_after_the_plan(tmp_path, images, later, steps,
                                                                        elapsed) -> None:
    """Planned at 1 s a step (99 steps), then the machine speeds up (0.5 s: the schedule ends at
    step 99 and the steps after it take its final lr) or slows down (2 s: the budget ends first,
    after the whole step that crossed it)."""
    trainer = budgeted(tmp_path, images, "changed", later=later)
    st = trainer.state
    assert st.budget_steps == 99 and st.step == steps and st.stop_reason == "budget" and st.elapsed == elapsed
    final_lr = trainer.optimizer.param_groups[0]["lr"]
    assert final_lr == 0.0 if later < 1 else final_lr > 1e-5


def test_a_warmup_longer_than_the_budget_allows_is_refused_once_measured(tmp_path, images) -> None:
    with pytest.raises(LatentlabError, match=r"--warmup-steps 500: expected fewer than the run's 99 optimizer steps "
                                             r"\(what --budget 99s allows at 1 s a step\)"):
        budgeted(tmp_path, images, "warm", warmup_steps=500)


def test_epochs_cap_a_budgeted_run(tmp_path, images) -> None:
    trainer = budgeted(tmp_path, images, "capped", epochs=3)
    assert trainer.state.budget_steps == 12 and trainer.state.step == 12 and trainer.state.epoch == 3


# ---- the command line, on the real clock ---------------------------------------------------------

def test_budget_from_the_command_line(tmp_path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--data", "faces:96", "--model", "fcn", "--hidden", "8",
                                      "--latent-dim", "2", "--batch-size", "16", "--budget", "4s",
                                      "--lr-schedule", "cosine", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["budget"] == 4.0 and config["train"]["epochs"] is None
    assert config["train"]["budget_steps"] > 0  # the plan, written once measured
    ckpt = out / "checkpoint" / json.loads((out / "checkpoint" / "latest.json").read_text())["checkpoint"]
    state = json.loads((ckpt / "state.json").read_text())
    assert state["budget_steps"] == config["train"]["budget_steps"] and state["stop_reason"] == "budget"
    assert 0 < state["elapsed"] < 4.0 + 2.0  # a step and the run's end after the budget, at most
    assert (out / "COMPLETE").read_text().endswith("the budget spent\n")
