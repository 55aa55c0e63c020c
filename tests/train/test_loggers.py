"""``train --logger``: TensorBoard event files read back; csv stays the default; unknown names refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.errors import LatentlabError
from latentlab.train.loggers import parse_loggers

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
runner = CliRunner()


def _events(folder: Path):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _train(out: Path, *extra: str):
    return runner.invoke(app, ["train", "--data", "faces:64", "--hidden", "16", "--latent-dim", "3",
                               "--epochs", "2", "--batch-size", "16", "--quiet", "--out", str(out), *extra])


def test_tensorboard_logs_steps_epochs_images_and_hparams(tmp_path) -> None:
    out = tmp_path / "vae"
    result = _train(out, "--model", "vae-fcn", "--logger", "csv,tensorboard")
    assert result.exit_code == 0, result.output
    acc = _events(out / "tensorboard")
    tags = acc.Tags()
    steps = acc.Scalars("step/loss")
    assert [e.step for e in steps] == list(range(1, 9))  # 58 training images / 16 = 4 steps, 2 epochs
    assert {"step/recon", "step/kl", "step/lr", "step/images_per_s"} <= set(tags["scalars"])
    assert all(e.value > 0 for e in acc.Scalars("step/images_per_s"))
    val = acc.Scalars("epoch/val_loss")
    assert [e.step for e in val] == [4, 8]
    with open(out / "metrics.csv", newline="") as fp:
        recorded = [float(row["val_loss"]) for row in csv.DictReader(fp)]
    assert [e.value for e in val] == pytest.approx(recorded, rel=1e-6)
    assert {"reconstructions", "prior_samples"} <= set(tags["images"])
    image = acc.Images("reconstructions")[-1]
    assert image.height == 2 * 64 + 1 and image.width == 6 * 65 - 1  # originals above reconstructions: 6 held out
    assert len(acc.Images("prior_samples")) == 2
    assert "config/text_summary" in tags["tensors"]
    plugin = acc.PluginTagToContent("hparams")
    assert plugin, "the hyper-parameters are written"
    assert any(b"train.lr" in content for content in plugin.values())


def test_resume_continues_the_event_log(tmp_path) -> None:
    out = tmp_path / "ae"
    assert _train(out, "--epochs", "1", "--logger", "tensorboard").exit_code == 0
    resumed = runner.invoke(app, ["train", "--out", str(out), "--resume", "--epochs", "2", "--quiet",
                                  "--logger", "tensorboard"])
    assert resumed.exit_code == 0, resumed.output
    acc = _events(out / "tensorboard")
    assert [e.step for e in acc.Scalars("step/loss")] == list(range(1, 9))
    assert [e.step for e in acc.Scalars("epoch/val_loss")] == [4, 8]
    assert len(acc.Images("reconstructions")) == 2


def test_csv_is_the_default_and_writes_no_event_files(tmp_path) -> None:
    out = tmp_path / "ae"
    assert _train(out).exit_code == 0
    assert (out / "metrics.csv").is_file() and (out / "steps.csv").is_file()
    assert not (out / "tensorboard").exists()


def test_unknown_logger_is_one_line(tmp_path) -> None:
    result = _train(tmp_path / "x", "--logger", "csv,wandb")
    assert result.exit_code == 2
    assert "--logger csv,wandb" in result.output and "tensorboard" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("text", "expected"), [("csv", ("csv",)), ("tensorboard, csv", ("tensorboard", "csv")),
                                                 ("TensorBoard,tensorboard", ("tensorboard",))])
def test_parse_loggers(text: str, expected: tuple[str, ...]) -> None:
    assert parse_loggers(text) == expected


@pytest.mark.parametrize("text", ["", ",", "mlflow"])
def test_parse_loggers_refuses(text: str) -> None:
    with pytest.raises(LatentlabError, match="expected one or more of csv, tensorboard"):
        parse_loggers(text)
