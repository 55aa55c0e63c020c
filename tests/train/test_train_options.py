"""The options of issue 17 from the command line: recorded in the run, bad values refused in one
line before anything is written, a changed one refused on --resume; --deterministic."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.errors import LatentlabError
from latentlab.train.determinism import CUBLAS_WORKSPACE, deterministic_mode
from latentlab.train.trainer import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = ["train", "--data", "faces:48", "--model", "fcn", "--hidden", "8", "--latent-dim", "2", "--batch-size", "16",
        "--quiet"]
NEW = ["--lr-schedule", "cosine", "--warmup-steps", "2", "--grad-clip", "1.5", "--ema", "0.9", "--accumulate", "2"]


def invoke(*args: str):
    return CliRunner().invoke(app, [*args])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> object:
    out = tmp_path_factory.mktemp("options") / "run"
    result = invoke(*BASE, *NEW, "--epochs", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_every_option_is_recorded_in_the_run(run) -> None:
    train = json.loads((run / "config.json").read_text())["train"]
    assert {k: train[k] for k in ("lr_schedule", "warmup_steps", "grad_clip", "ema", "accumulate", "budget",
                                  "deterministic")} == {
        "lr_schedule": "cosine", "warmup_steps": 2, "grad_clip": 1.5, "ema": 0.9, "accumulate": 2, "budget": None,
        "deterministic": False}


@pytest.mark.parametrize(("args", "message"), [
    (["--lr-schedule", "linear"], "--lr-schedule linear: expected one of constant, cosine, onecycle, plateau"),
    (["--warmup-steps", "4"], "--warmup-steps 4: expected fewer than the run's 4 optimizer steps "
                              "(2 epochs of 2 steps)"),
    (["--warmup-steps", "-1"], "--warmup-steps -1: expected an integer >= 0"),
    (["--grad-clip", "-1"], "--grad-clip -1.0: expected a positive gradient norm"),
    (["--grad-clip", "0"], "--grad-clip 0.0: expected a positive gradient norm"),
    (["--ema", "1.5"], "--ema 1.5: expected a decay between 0 and 1, e.g. 0.999"),
    (["--ema", "1"], "--ema 1.0: expected a decay between 0 and 1, e.g. 0.999"),
    (["--ema", "0"], "--ema 0.0: expected a decay between 0 and 1, e.g. 0.999"),
    (["--accumulate", "0"], "--accumulate 0: expected a positive integer"),
    (["--budget", "10"], "--budget '10': expected a duration such as 90s, 10m, 2h or 1h30m"),
    (["--budget", "ten minutes"], "--budget 'ten minutes': expected a duration such as 90s, 10m, 2h or 1h30m"),
    (["--budget", "0s"], "--budget '0s': expected a duration such as 90s, 10m, 2h or 1h30m, longer than zero"),
])
def test_a_bad_value_is_one_line_and_writes_nothing(tmp_path, args, message) -> None:
    out = tmp_path / "run"
    result = invoke(*BASE, "--epochs", "2", "--accumulate", "2", *args, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: {message}"
    assert not out.exists()


def test_the_same_checks_hold_in_the_api() -> None:
    with pytest.raises(LatentlabError, match="--epochs: expected a number of epochs, a --budget, or both"):
        TrainConfig(epochs=None)
    with pytest.raises(LatentlabError, match="--budget -3.0: expected a positive number of seconds"):
        TrainConfig(budget=-3.0)
    assert TrainConfig(epochs=None, budget=60.0).epochs is None


@pytest.mark.parametrize(("extra", "named"), [
    (["--lr-schedule", "onecycle"], "--lr-schedule onecycle differs from the run's (cosine)"),
    (["--warmup-steps", "3"], "--warmup-steps 3 differs"),
    (["--grad-clip", "2"], "--grad-clip 2.0 differs"),
    (["--ema", "0.99"], "--ema 0.99 differs"),
    (["--accumulate", "1"], "--accumulate 1 differs"),
    (["--budget", "10m"], "--budget 10m differs from the run's (None)"),
    (["--deterministic"], "--deterministic True differs"),
])
def test_resume_refuses_a_changed_option_in_one_line(run, extra, named) -> None:
    before = (run / "config.json").read_bytes()
    result = invoke("train", "--out", str(run), "--resume", *extra)
    assert result.exit_code == 2, result.output
    assert named in result.output and result.output.strip().count("\n") == 0
    assert (run / "config.json").read_bytes() == before


def test_resume_refuses_to_stretch_a_schedule_laid_out_over_the_epochs(run, tmp_path) -> None:
    copy = shutil.copytree(run, tmp_path / "copy")
    (copy / "COMPLETE").unlink()
    result = invoke("train", "--out", str(copy), "--resume", "--epochs", "4")
    assert result.exit_code == 2, result.output
    assert "--epochs 4 would reshape the run's cosine schedule, laid out over 2 epochs" in result.output
    result = invoke("train", *NEW, "--out", str(copy), "--resume", "--epochs", "2")  # the same options: fine
    assert result.exit_code == 0, result.output


def test_deterministic_mode_sets_and_restores_the_settings() -> None:
    threads, cublas = torch.get_num_threads(), None
    torch.set_num_threads(2)
    try:
        with deterministic_mode():
            assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
            assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
            import os

            cublas = os.environ.get(CUBLAS_WORKSPACE)
        assert torch.get_num_threads() == 2 and not torch.are_deterministic_algorithms_enabled()
        assert cublas == ":4096:8"
    finally:
        torch.set_num_threads(threads)
