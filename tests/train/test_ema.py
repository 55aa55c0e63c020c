"""--ema: the moving average is what validation sees and what the run keeps; the raw weights stay
in the checkpoint; the average is restored exactly by a resume."""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch
from safetensors.torch import load_file

from latentlab.data import BatchSpec, load_source
from latentlab.errors import LatentlabError
from latentlab.losses import model_loss
from latentlab.models import FCNConfig
from latentlab.models.registry import build
from latentlab.runs import split_indices
from latentlab.train.api import resume_run, train_run
from latentlab.train.batches import ImageBatches
from latentlab.train.ema import EMA
from latentlab.train.trainer import Callback, TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = FCNConfig(in_shape=(3, 64, 64), hidden=(16,), latent_dim=3)


def test_the_average_follows_the_weights_with_a_warmed_up_rate() -> None:
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update()  # rate min(0.99, 1/10) = 0.1: mostly the new weights
    assert ema.average["weight"][0, 0].item() == pytest.approx(0.1 * 1.0 + 0.9 * 2.0)
    ema.updates = 10**6
    assert ema.rate() == 0.99


def test_applied_swaps_the_average_in_and_the_weights_back() -> None:
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.applied():
        assert torch.equal(model.weight, ema.average["weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert set(ema.state_dict()) == set(before)


def test_loading_averages_of_another_model_is_one_line(tmp_path) -> None:
    ema = EMA(torch.nn.Linear(3, 2), decay=0.5)
    with pytest.raises(LatentlabError, match="no average for parameter 'bias'"):
        ema.load({"weight": torch.zeros(2, 3)}, "ema.safetensors")
    with pytest.raises(LatentlabError, match=r"has shape \(3, 2\), expected \(2, 3\)"):
        ema.load({"weight": torch.zeros(3, 2), "bias": torch.zeros(2)}, "ema.safetensors")


@pytest.fixture(scope="module")
def faces():
    return load_source("faces:96")


def test_a_run_keeps_the_average_and_validates_it(tmp_path, faces) -> None:
    out = tmp_path / "run"
    cfg = TrainConfig(epochs=2, batch_size=16, lr=3e-3, ema=0.9, seed=1)
    model = train_run(TINY, faces, BatchSpec(), cfg, out, progress=False)
    ckpt = out / "checkpoint" / json.loads((out / "checkpoint" / "latest.json").read_text())["checkpoint"]
    kept, raw, average = (load_file(str(p)) for p in (out / "model.safetensors", ckpt / "model.safetensors",
                                                        ckpt / "ema.safetensors"))
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[1]["val_loss"]) < float(rows[0]["val_loss"])  # so the last epoch is the best
    assert os.stat(ckpt / "best.safetensors").st_ino == os.stat(ckpt / "ema.safetensors").st_ino  # linked
    for name in kept:
        assert torch.equal(kept[name], average[name]), name  # the run's weights: the average
    assert any(not torch.equal(raw[n], average[n]) for n in raw)  # the checkpoint keeps the raw ones too

    # validation saw the average: its loss on the validation rows is the logged one
    _, val_idx = split_indices(len(faces), cfg.val_fraction, cfg.seed)
    val = ImageBatches(faces.images, val_idx, 16, BatchSpec(), shuffle=False, equal_shards=False)
    loss = Trainer(cfg).evaluate(model, model_loss, val)["loss"]
    assert loss == pytest.approx(float(rows[1]["val_loss"]), rel=1e-6)


class Interrupt(Callback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        if trainer.state.step == self.at_step:
            raise KeyboardInterrupt


def test_resume_restores_the_average_exactly(tmp_path, faces) -> None:
    cfg = TrainConfig(epochs=3, batch_size=16, ema=0.95, lr_schedule="cosine", grad_clip=1.0, accumulate=2,
                      checkpoint_every=2)
    full, part = tmp_path / "full", tmp_path / "part"
    train_run(TINY, faces, BatchSpec(), cfg, full, progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_run(TINY, faces, BatchSpec(), cfg, part, progress=False, callbacks=[Interrupt(5)])
    resume_run(part, faces, progress=False)
    a, b = load_file(str(full / "model.safetensors")), load_file(str(part / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert (part / "steps.csv").read_text() == (full / "steps.csv").read_text()


def test_a_checkpoint_without_the_average_is_refused(tmp_path, faces) -> None:
    out = tmp_path / "run"
    cfg = TrainConfig(epochs=2, batch_size=32, ema=0.9)
    train_run(TINY, faces, BatchSpec(), TrainConfig(**{**vars(cfg), "epochs": 1}), out, progress=False)
    for ema_file in (out / "checkpoint").glob("ckpt-*/ema.safetensors"):
        ema_file.unlink()
    trainer = Trainer(cfg, checkpoint_dir=out / "checkpoint")
    batches = ImageBatches(faces.images, range(32), 32, BatchSpec())
    with pytest.raises(LatentlabError, match="has no ema.safetensors"):
        trainer.fit(build(TINY), model_loss, batches, resume=True)
