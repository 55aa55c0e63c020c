"""A loss or weights that stop being finite stop training with the step named; the last good checkpoint stays.

Three ways in: a loss that turns NaN (or infinite) at a known step, a learning rate so large that
plain ``latentlab train`` diverges, and weights that overflow while the loss of that step was
still finite (so only the checkpoint writer can notice).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.data import BatchSpec, load_source
from latentlab.errors import LatentlabError
from latentlab.losses import LossTerms, model_loss
from latentlab.models import FCNConfig, build
from latentlab.train.batches import ImageBatches
from latentlab.train.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from latentlab.train.trainer import TrainConfig, Trainer, make_optimizer

SMALL = BatchSpec(resize=(8, 8))


def _setup(tmp_path: Path, checkpoint_every: int = 2) -> tuple[Trainer, torch.nn.Module, ImageBatches]:
    data = load_source("faces:64")
    model = build(FCNConfig(in_shape=(3, 8, 8), hidden=(16,), latent_dim=2))
    config = TrainConfig(epochs=3, batch_size=16, checkpoint_every=checkpoint_every, seed=0)
    batches = ImageBatches(data.images, torch.arange(64).numpy(), 16, SMALL, seed=0)
    return Trainer(config, checkpoint_dir=tmp_path / "checkpoint"), model, batches


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _finite(ckpt: Path) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in load_file(str(ckpt / "model.safetensors")).values())


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_stops_at_its_step(tmp_path: Path, bad: float) -> None:
    trainer, model, batches = _setup(tmp_path)
    calls = []

    def loss_fn(module: torch.nn.Module, x_in: torch.Tensor, target: torch.Tensor) -> LossTerms:
        terms = model_loss(module, x_in, target)
        calls.append(1)
        if len(calls) == 7:  # the 7th step: epoch 2 (4 steps an epoch), after checkpoints at steps 2, 4, 6
            return LossTerms(total=terms.total * bad, recon=terms.recon)
        return terms

    with pytest.raises(LatentlabError) as info:
        trainer.fit(model, loss_fn, batches)
    message = str(info.value)
    assert f"the loss became {bad} at step 7 (epoch 2)" in message and "last good checkpoint" in message
    ckpt = latest_checkpoint(tmp_path / "checkpoint")
    assert ckpt is not None and ckpt.name == "ckpt-000000006"
    assert _finite(ckpt)
    fresh = build(FCNConfig(in_shape=(3, 8, 8), hidden=(16,), latent_dim=2))
    state = load_checkpoint(ckpt, fresh, make_optimizer(fresh.parameters(), trainer.config, "cpu"))
    assert state["step"] == 6


def test_non_finite_weights_are_never_checkpointed(tmp_path: Path) -> None:
    """The loss of a step can be finite while its update overflows: the checkpoint writer refuses."""
    model = build(FCNConfig(in_shape=(3, 8, 8), hidden=(16,), latent_dim=2))
    optimizer = make_optimizer(model.parameters(), TrainConfig(), "cpu")
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, {"step": 12})  # a good checkpoint, in force
    before = _files(folder)
    with torch.no_grad():
        model.decoder[0].weight[0, 0] = math.inf
    with pytest.raises(LatentlabError, match=r"weight 'decoder\.0\.weight' is no longer finite after step 13"):
        save_checkpoint(folder, model, optimizer, {"step": 13})
    assert _files(folder) == before
    assert latest_checkpoint(folder) == folder / "ckpt-000000012"


def test_cli_training_that_diverges(tmp_path: Path) -> None:
    """``--lr 1e30`` with SGD: one line naming the step, exit 2, and the checkpoint in force is finite."""
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--data", "faces:64", "--resize", "8", "--model", "fcn",
                                      "--hidden", "16", "--latent-dim", "2", "--optimizer", "sgd", "--lr", "1e30",
                                      "--epochs", "3", "--batch-size", "16", "--checkpoint-every", "1",
                                      "--quiet", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = " ".join(result.output.split())
    assert "training diverged: the loss became nan at step 2 (epoch 1); the last good checkpoint was kept" in line
    ckpt = latest_checkpoint(out / "checkpoint")
    assert ckpt is not None and _finite(ckpt)
    assert not (out / "COMPLETE").exists()
