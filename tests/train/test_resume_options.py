"""--resume takes everything from the run but --epochs; two trainings of one folder never race."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app

BASE = ["--data", "faces:48", "--model", "fcn", "--hidden", "8", "--latent-dim", "2", "--batch-size", "16",
        "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "run"
    result = CliRunner().invoke(app, ["train", *BASE, "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize(("extra", "named"), [
    (["--batch-size", "8"], "--batch-size 8"),
    (["--lr", "0.01"], "--lr 0.01"),
    (["--data", "faces:64"], "--data faces:64"),
    (["--latent-dim", "3"], "the model options"),
    (["--preset", "hw8-conv"], "the model options"),
    (["--resize", "32"], "the input rule"),
    (["--range", "0,1"], "the input rule"),
])
def test_resume_refuses_an_option_that_contradicts_the_run(run, extra, named) -> None:
    before = (run / "config.json").read_bytes()
    result = CliRunner().invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2", *extra])
    assert result.exit_code == 2, result.output
    assert named in result.output and "only --epochs may change" in result.output
    assert (run / "config.json").read_bytes() == before


def test_resume_accepts_the_same_options_and_a_new_epoch_count(run, tmp_path) -> None:
    import shutil

    copy = Path(shutil.copytree(run, tmp_path / "copy"))
    result = CliRunner().invoke(app, ["train", *BASE, "--out", str(copy), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert (copy / "COMPLETE").read_text().startswith("epochs 2")


def test_two_trainings_of_one_folder_at_once_one_runs_one_refuses(tmp_path) -> None:
    out = tmp_path / "race"
    command = [sys.executable, "-c", "from latentlab.cli.app import main; main()", "train", *BASE,
               "--epochs", "3", "--out", str(out)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    [refusal] = [text for code, text in results if code == 2]
    assert refusal.strip().count("\n") == 0, refusal  # one line
    assert "another latentlab process is writing" in refusal or "folder exists and is not empty" in refusal
    assert (out / "COMPLETE").read_text().startswith("epochs 3")
