"""Checkpoints written in the background, and the best weights never written twice."""

from __future__ import annotations

import os

import pytest
import torch

from latentlab.errors import LatentlabError
from latentlab.train.checkpoints import CURRENT, PREVIOUS, CheckpointWriter, latest_checkpoint, load_tensors


def _model_and_optimizer(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(8, 4)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_a_current_best_is_a_link_and_an_unchanged_one_links_the_previous_file(tmp_path) -> None:
    folder = tmp_path / "checkpoint"
    writer = CheckpointWriter(folder)
    model, optimizer = _model_and_optimizer(0)
    writer.save(model, optimizer, {"step": 1}, CURRENT)
    writer.wait()
    first = latest_checkpoint(folder)
    assert first is not None
    best, weights = first / "best.safetensors", first / "model.safetensors"
    assert os.stat(best).st_ino == os.stat(weights).st_ino  # one file, two names
    kept = load_tensors(best)
    with torch.no_grad():
        model.weight.add_(1.0)  # training goes on; the best stays
    writer.save(model, optimizer, {"step": 2}, PREVIOUS)
    writer.wait()
    second = latest_checkpoint(folder)
    assert second is not None and second != first and not first.exists()
    assert os.stat(second / "best.safetensors").st_ino != os.stat(second / "model.safetensors").st_ino
    assert all(torch.equal(kept[k], v) for k, v in load_tensors(second / "best.safetensors").items())
    assert not torch.equal(load_tensors(second / "model.safetensors")["weight"], kept["weight"])


def test_the_snapshot_is_taken_at_save_not_when_written(tmp_path) -> None:
    folder = tmp_path / "checkpoint"
    writer = CheckpointWriter(folder)
    model, optimizer = _model_and_optimizer(1)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    writer.save(model, optimizer, {"step": 5})
    with torch.no_grad():
        model.weight.mul_(-3.0)  # changed while the writer may still be running
    writer.wait()
    ckpt = latest_checkpoint(folder)
    assert ckpt is not None
    saved = load_tensors(ckpt / "model.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in expected.items())


def test_a_write_error_reaches_the_training_thread(tmp_path) -> None:
    blocker = tmp_path / "checkpoint"
    blocker.write_text("a file where the folder should be")
    writer = CheckpointWriter(blocker)
    model, optimizer = _model_and_optimizer(2)
    writer.save(model, optimizer, {"step": 1})
    with pytest.raises((OSError, LatentlabError)):
        writer.wait()
    writer.wait()  # raised once, then cleared
