"""Gradient accumulation gives one big batch's gradient; clipping logs the norm before it clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentlab.data import BatchSpec, load_source
from latentlab.losses import model_loss
from latentlab.models import ConvConfig, FCNConfig
from latentlab.models.registry import build
from latentlab.train.batches import ImageBatches
from latentlab.train.trainer import Callback, TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

class FirstStep(Callback):
    """Keeps the gradients, the logged terms and the step info of the first optimizer step."""

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        if trainer.state.step == 1:
            self.grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()}
            self.terms, self.info, self.images = dict(terms), dict(trainer.step_info), images


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return load_source("faces:40").images


def first_step(images: np.ndarray, model_config, **train: object) -> FirstStep:
    batches = ImageBatches(images, np.arange(40), int(train.pop("batch_size")), BatchSpec(), seed=1)  # type: ignore[call-overload]
    torch.manual_seed(0)
    model = build(model_config)
    hook = FirstStep()
    cfg = TrainConfig(epochs=1, val_fraction=0.0, optimizer="sgd", lr=0.1, batch_size=batches.batch_size, **train)  # type: ignore[arg-type]
    Trainer(cfg, callbacks=[hook]).fit(model, model_loss, batches)
    return hook


@pytest.mark.parametrize("model_config", [FCNConfig(in_shape=(3, 64, 64), hidden=(16,), latent_dim=4),
                                          ConvConfig(in_shape=(3, 64, 64), channels=(4, 8), latent_dim=4)],
                         ids=["fcn", "conv"])
def test_accumulated_gradients_equal_one_big_batch(images, model_config) -> None:
    """40 rows as batches of 16, 16 and 8 accumulated: the gradient of one batch of 40 (the
    short last batch weighs by its rows, not as a third)."""
    big = first_step(images, model_config, batch_size=40)
    small = first_step(images, model_config, batch_size=16, accumulate=3)
    assert small.images == big.images == 40
    assert small.terms["loss"] == pytest.approx(big.terms["loss"], rel=1e-6)
    for name, grad in big.grads.items():
        torch.testing.assert_close(small.grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_accumulation_counts_optimizer_steps(tmp_path, images) -> None:
    batches = ImageBatches(images, np.arange(40), 8, BatchSpec(), seed=1)  # 5 batches an epoch
    cfg = TrainConfig(epochs=2, batch_size=8, accumulate=2, val_fraction=0.0)
    trainer = Trainer(cfg)
    state = trainer.fit(build(FCNConfig(in_shape=(3, 64, 64), hidden=(8,), latent_dim=2)), model_loss, batches)
    assert trainer.steps_per_epoch == 3 and state.step == 6  # 2 + 2 + 1 batches
    assert [row["step"] for row in state.history] == [3, 6]


def test_clipping_logs_the_norm_before_and_clips_to_the_limit(images) -> None:
    config = FCNConfig(in_shape=(3, 64, 64), hidden=(16,), latent_dim=4)
    free = first_step(images, config, batch_size=40)
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in free.grads.values()])).item()
    assert "grad_norm" not in free.info
    clipped = first_step(images, config, batch_size=40, grad_clip=norm / 4)
    assert clipped.info["grad_norm"] == pytest.approx(norm, rel=1e-5)
    after = torch.linalg.vector_norm(torch.stack([g.norm() for g in clipped.grads.values()])).item()
    assert after == pytest.approx(norm / 4, rel=1e-4)
    for name, grad in free.grads.items():  # scaled, not changed in direction
        torch.testing.assert_close(clipped.grads[name], grad / 4, rtol=1e-4, atol=1e-8)


def test_the_norm_of_every_step_is_in_steps_csv(tmp_path) -> None:
    import csv

    from latentlab.train.api import train_run

    out = tmp_path / "run"
    config = FCNConfig(in_shape=(3, 64, 64), hidden=(16,), latent_dim=4)
    train_run(config, load_source("faces:48"), BatchSpec(), TrainConfig(epochs=2, batch_size=16, grad_clip=0.01),
              out, progress=False)
    with open(out / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and all(float(r["grad_norm"]) > 0.01 for r in rows)
