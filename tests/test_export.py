"""ONNX export: the three files run in onnxruntime and match PyTorch to 1e-4, any batch size."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from latentlab.anomaly.scores import score_images
from latentlab.cli.app import app
from latentlab.data.batches import BatchSpec
from latentlab.errors import LatentlabError
from latentlab.export import export_onnx
from latentlab.runs import Run

ort = pytest.importorskip("onnxruntime")
runner = CliRunner()


def _session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check_run(run_path: Path, out: Path, score: str, images: np.ndarray) -> None:
    exported = export_onnx(run_path, out)
    assert exported.score == score
    run = Run.open(run_path)
    model = run.model
    x = run.inputs(images)
    with torch.no_grad():
        z = model.embed(x)
        x_hat = model.decode(z)
        expected = score_images(model, x, score, value_range=run.rule.value_range)
    z_onnx = _session(out / "encoder.onnx").run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(z_onnx, z.numpy(), atol=1e-4, rtol=1e-4)
    x_hat_onnx = _session(out / "decoder.onnx").run(None, {"z": z.numpy()})[0]
    np.testing.assert_allclose(x_hat_onnx, x_hat.numpy(), atol=1e-4, rtol=1e-4)
    scores = _session(out / "scorer.onnx").run(None, {"images": images})[0]
    assert scores.shape == (len(images),)
    np.testing.assert_allclose(scores, expected.numpy(), atol=1e-4, rtol=1e-4)


def test_fcn_run_exports_and_matches_pytorch(tiny_run, tmp_path) -> None:
    images = Run.open(tiny_run).data("faces:7:3").images  # 7: another batch size than the export's example
    _check_run(tiny_run, tmp_path / "onnx", "mse", np.ascontiguousarray(images))


def test_vae_with_stored_elbo_choice_builds_it_in(tiny_vae_run, tmp_path) -> None:
    from latentlab.anomaly import auto

    run_copy = tmp_path / "vae"
    shutil.copytree(tiny_vae_run, run_copy)
    run = Run.open(run_copy)
    choice = auto.ScoreChoice(parts=("elbo",), combine="sum", components=8, sentence="test", candidates=(),
                              n_held_out=1, held_out="test", n_fit=1, weights=auto.weights_hash(run))
    (run_copy / auto.CHOICE_FILE).write_text(__import__("json").dumps(choice.to_dict()))
    images = np.ascontiguousarray(run.data("faces:5:1").images)
    _check_run(run_copy, tmp_path / "onnx", "elbo", images)


def test_conv_run_with_resize_rule_takes_stored_pixels(tmp_path) -> None:
    from latentlab.data import load_source
    from latentlab.models import ConvConfig
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    rule = BatchSpec(center_crop=48, resize=(32, 32), value_range=(0.0, 1.0))
    config = ConvConfig(in_shape=(3, 32, 32), channels=(4, 8), latent_dim=3, out_activation="sigmoid")
    train_run(config, load_source("faces:64"), rule, TrainConfig(epochs=1, batch_size=32), tmp_path / "conv",
              progress=False)
    images = np.ascontiguousarray(load_source("faces:6:2").images)  # stored 64x64: the scorer cuts and resizes
    _check_run(tmp_path / "conv", tmp_path / "onnx", "mse", images)


def test_cli_export_and_its_errors(tiny_run, tmp_path) -> None:
    out = tmp_path / "onnx"
    result = runner.invoke(app, ["export", str(tiny_run), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"encoder.onnx", "decoder.onnx", "scorer.onnx", "export.json"}
    assert "mse" in result.output
    again = runner.invoke(app, ["export", str(tiny_run), "--format", "onnx", "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output and "Traceback" not in again.output
    other = runner.invoke(app, ["export", str(tiny_run), "--format", "tflite", "--out", str(tmp_path / "x")])
    assert other.exit_code == 2 and "onnx" in other.output
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((tiny_run / "config.json").read_text())
    missing = runner.invoke(app, ["export", str(empty), "--format", "onnx", "--out", str(tmp_path / "y")])
    assert missing.exit_code == 2 and "model.safetensors" in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    assert not (tmp_path / "y").exists()


def test_export_without_onnx_says_how_to_install(tiny_run, tmp_path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(LatentlabError, match=r"latentlab\[export\]"):
        export_onnx(tiny_run, tmp_path / "onnx")
