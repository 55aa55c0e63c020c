"""Learning-rate schedules and warm-up: their shapes, the lr of every step in steps.csv, plateau, resume."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR

from latentlab.data import BatchSpec, load_source
from latentlab.models import FCNConfig
from latentlab.runs import split_indices
from latentlab.train.api import resume_run, train_run
from latentlab.train.schedules import ONECYCLE_DIV, ONECYCLE_FINAL_DIV, Plateau, lr_factor
from latentlab.train.trainer import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = FCNConfig(in_shape=(3, 64, 64), hidden=(16,), latent_dim=3)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def faces():
    return load_source("faces:96")


# ---- shapes ---------------------------------------------------------------------------------------

def test_constant_is_one_and_warmup_rises_linearly_to_the_schedules_start() -> None:
    assert [lr_factor("constant", s, 100) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert [lr_factor("constant", s, 100, warmup=4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    start = 1 / ONECYCLE_DIV
    assert [lr_factor("onecycle", s, 100, warmup=2) for s in range(3)] == pytest.approx([start / 2, start, start])


def test_cosine_falls_from_one_to_zero_after_the_warmup() -> None:
    assert lr_factor("cosine", 0, 100) == 1.0
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 99, 100) == pytest.approx(0.0, abs=1e-3)
    assert lr_factor("cosine", 10, 110, warmup=10) == 1.0  # the cosine starts where the warm-up ends
    values = [lr_factor("cosine", s, 100) for s in range(100)]
    assert all(a >= b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("total", [7, 100, 1000])
def test_onecycle_and_cosine_are_torchs(total: int) -> None:
    """The same multipliers as torch's OneCycleLR (defaults, no momentum cycling) and CosineAnnealingLR."""
    def torch_lrs(make) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler, out = make(optimizer), []
        for _ in range(total):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    onecycle = torch_lrs(lambda o: OneCycleLR(o, max_lr=1.0, total_steps=total, cycle_momentum=False))
    assert [lr_factor("onecycle", s, total) for s in range(total)] == pytest.approx(onecycle, rel=1e-9, abs=1e-15)
    cosine = torch_lrs(lambda o: CosineAnnealingLR(o, T_max=total))
    assert [lr_factor("cosine", s, total) for s in range(total)] == pytest.approx(cosine, rel=1e-9, abs=1e-15)


def test_onecycle_peaks_at_30_percent_and_ends_far_below_its_start() -> None:
    values = [lr_factor("onecycle", s, 1000) for s in range(1000)]
    assert max(range(1000), key=values.__getitem__) == 299 and max(values) == 1.0
    assert values[0] == pytest.approx(1 / ONECYCLE_DIV)
    assert values[-1] == pytest.approx(1 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV))


def test_an_unknown_length_gives_the_schedules_first_value() -> None:
    """A --budget run before its speed is measured: as if the run were endless."""
    for kind in ("constant", "cosine", "onecycle", "plateau"):
        assert lr_factor(kind, 7, None) == pytest.approx(lr_factor(kind, 0, 10**12))
    assert lr_factor("cosine", 1, None, warmup=4) == 0.5


def test_plateau_halves_after_two_epochs_without_improvement() -> None:
    p = Plateau()
    for loss in (1.0, 0.9, 0.95, 0.9):  # two epochs not better than 0.9
        p.update(loss)
    assert p.scale == 0.5 and p.best == 0.9 and p.bad_epochs == 0
    p.update(0.8999999)  # below 0.9 by less than the relative threshold 1e-4: no progress
    assert p.bad_epochs == 1


# ---- in a run -----------------------------------------------------------------------------------

def test_every_steps_lr_is_logged_and_is_the_schedules(tmp_path, faces) -> None:
    out = tmp_path / "run"
    cfg = TrainConfig(epochs=3, batch_size=16, lr=2e-3, lr_schedule="onecycle", warmup_steps=4)
    train_run(TINY, faces, BatchSpec(), cfg, out, progress=False)
    steps = rows(out / "steps.csv")
    total = len(steps)
    assert total == 3 * math.ceil(len(split_indices(96, 0.1, 0)[0]) / 16)
    assert [int(r["step"]) for r in steps] == list(range(1, total + 1))
    assert [float(r["lr"]) for r in steps] == pytest.approx(
        [2e-3 * lr_factor("onecycle", s, total, 4) for s in range(total)], rel=1e-12)
    assert {"loss", "recon", "epoch"} <= set(steps[0]) and "grad_norm" not in steps[0]
    per_epoch = rows(out / "metrics.csv")
    assert float(per_epoch[-1]["lr"]) == float(steps[-1]["lr"])  # the epoch row: its last step's lr


def test_plateau_state_is_restored_by_resume(tmp_path, faces) -> None:
    """An lr of 1e-12 never improves: the lr halves after epochs 3 and 5 (two epochs without
    progress each). A resume after epoch 2 must carry its one bad epoch over, or the halving
    after epoch 3 would not happen."""
    cfg = TrainConfig(epochs=5, batch_size=32, lr=1e-12, optimizer="sgd", lr_schedule="plateau")
    full = tmp_path / "full"
    train_run(TINY, faces, BatchSpec(), cfg, full, progress=False)
    lrs = [float(r["lr"]) for r in rows(full / "metrics.csv")]
    assert lrs == pytest.approx([1e-12, 1e-12, 1e-12, 5e-13, 5e-13])

    part = tmp_path / "part"
    train_run(TINY, faces, BatchSpec(), TrainConfig(**{**vars(cfg), "epochs": 2}), part, progress=False)
    resume_run(part, faces, progress=False, epochs=5)
    assert rows(part / "steps.csv") == rows(full / "steps.csv")
