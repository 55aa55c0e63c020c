"""The run's ``model.safetensors`` shares its bytes with the checkpoint that already holds them
(a hard link), and is written on its own when no checkpoint holds the same bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from latentlab.data import BatchSpec, load_source
from latentlab.models import FCNConfig, build
from latentlab.runs import open_run
from latentlab.train.api import resume_run, train_run
from latentlab.train.checkpoints import latest_checkpoint, save_final_weights
from latentlab.train.trainer import TrainConfig

TINY = FCNConfig(in_shape=(3, 64, 64), hidden=(16,), latent_dim=3)


@pytest.fixture(scope="module")
def faces():
    return load_source("faces:96")


def _same_file(a: Path, b: Path) -> bool:
    return os.stat(a).st_ino == os.stat(b).st_ino


def _checkpoint(out: Path) -> Path:
    ckpt = latest_checkpoint(out / "checkpoint")
    assert ckpt is not None
    return ckpt


@pytest.mark.parametrize("val_fraction", [0.0, 0.25])
def test_final_weights_are_a_link_to_the_checkpoint(tmp_path, faces, val_fraction) -> None:
    out = tmp_path / "run"
    model = train_run(TINY, faces, BatchSpec(), TrainConfig(epochs=2, batch_size=32, val_fraction=val_fraction),
                      out, progress=False)
    ckpt = _checkpoint(out)
    # without validation the final weights are the last checkpoint's; with it, the best ones
    source = ckpt / ("model.safetensors" if val_fraction == 0 else "best.safetensors")
    assert _same_file(out / "model.safetensors", source)
    saved = load_file(str(out / "model.safetensors"))
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value), name
    assert open_run(out).complete


def test_a_resumed_run_keeps_its_weights_when_old_checkpoints_go(tmp_path, faces) -> None:
    out = tmp_path / "run"
    train_run(TINY, faces, BatchSpec(), TrainConfig(epochs=1, batch_size=32, val_fraction=0.0), out, progress=False)
    first = load_file(str(out / "model.safetensors"))
    old = _checkpoint(out)
    model = resume_run(out, progress=False, epochs=2)
    assert not old.exists()  # the first checkpoint was replaced by the second
    assert _same_file(out / "model.safetensors", _checkpoint(out) / "model.safetensors")
    saved = load_file(str(out / "model.safetensors"))
    assert any(not torch.equal(saved[k], first[k]) for k in first)  # trained on, not the first epoch's bytes
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value), name


def test_weights_no_checkpoint_holds_are_written_on_their_own(tmp_path, faces) -> None:
    out = tmp_path / "run"
    train_run(TINY, faces, BatchSpec(), TrainConfig(epochs=1, batch_size=32, val_fraction=0.0), out, progress=False)
    other = build(TINY)  # fresh weights: in no checkpoint
    target = tmp_path / "other.safetensors"
    save_final_weights(other, target, out / "checkpoint")
    assert not _same_file(target, _checkpoint(out) / "model.safetensors")
    saved = load_file(str(target))
    assert all(torch.equal(saved[k], v) for k, v in other.state_dict().items())
    save_final_weights(other, tmp_path / "alone.safetensors", tmp_path / "no-checkpoints")  # no folder: written
    assert (tmp_path / "alone.safetensors").is_file()


def test_linking_again_onto_the_same_file_leaves_nothing_beside(tmp_path, faces) -> None:
    """A rename of a hard link onto another name of the same file does nothing (POSIX), so
    writing the same final weights twice must not leave the temporary link behind."""
    out = tmp_path / "run"
    model = train_run(TINY, faces, BatchSpec(), TrainConfig(epochs=1, batch_size=32, val_fraction=0.0), out,
                      progress=False)
    save_final_weights(model, out / "model.safetensors", out / "checkpoint")
    assert _same_file(out / "model.safetensors", _checkpoint(out) / "model.safetensors")
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == []
