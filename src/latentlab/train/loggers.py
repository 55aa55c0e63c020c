"""Training loggers: ``train --logger csv`` (the default) and ``tensorboard``, several at once.

``csv`` is the run folder's own ``metrics.csv`` and ``steps.csv`` (always written). ``tensorboard``
adds :class:`TensorBoardLog`, a trainer hook writing TensorBoard event files (through tensorboardX,
which needs only protobuf) into ``RUN/tensorboard/``: per step each loss term, the learning rate
(and the gradient norm under --grad-clip) and images/s; per epoch the train and validation
terms, a grid of held-out reconstructions (originals above, reconstructions below) and, for a
VAE, samples from the prior (the same latents every epoch); the run's hyper-parameters once.
``tensorboard --logdir runs`` shows every run of a folder side by side.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from latentlab.errors import LatentlabError
from latentlab.train.trainer import Callback

if TYPE_CHECKING:
    from latentlab.train.trainer import Trainer

__all__ = ["LOGGERS", "TENSORBOARD_DIR", "TensorBoardLog", "logger_callbacks", "parse_loggers"]

LOGGERS = ("csv", "tensorboard")
TENSORBOARD_DIR = "tensorboard"  # in the run folder
GRID_IMAGES = 8  # held-out images (and prior samples) shown per epoch


def parse_loggers(text: str) -> tuple[str, ...]:
    """'csv,tensorboard' -> ('csv', 'tensorboard'); an unknown name is one line."""
    names = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in LOGGERS]
    if unknown or not names:
        raise LatentlabError(f"--logger {text}: expected one or more of {', '.join(LOGGERS)} (comma-separated)")
    return names


def logger_callbacks(text: str, out: str | Path) -> list[Callback]:
    """The trainer hooks ``--logger text`` asks for, writing into the run folder ``out``."""
    names = parse_loggers(text)
    return [TensorBoardLog(Path(out) / TENSORBOARD_DIR)] if "tensorboard" in names else []


def grid(rows: np.ndarray) -> np.ndarray:
    """(R, K, H, W, C) uint8 -> one (R*H, K*W, C) image (a 1-pixel border between tiles)."""
    r, k, h, w, c = rows.shape
    out = np.full((r * (h + 1) - 1, k * (w + 1) - 1, c), 255, dtype=np.uint8)
    for i in range(r):
        for j in range(k):
            out[i * (h + 1):i * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = rows[i, j]
    return out


class TensorBoardLog(Callback):
    """TensorBoard event files in ``folder`` (rank 0 only); on a resume the steps after the
    checkpoint, taken by the process that stopped, are purged and logged again."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.writer: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if not trainer.is_global_zero:
            return
        from tensorboardX import SummaryWriter

        step = trainer.state.step
        if step == 0 and self.folder.is_dir():  # a new run (or --overwrite): not the old run's curves
            for old in self.folder.glob("events.out.tfevents.*"):
                old.unlink()
        # the file name holds the start time in whole seconds: a resume within the same second would
        # replace the first process's file without a suffix of its own
        self.writer = SummaryWriter(str(self.folder), purge_step=step + 1 if step else None,  # later ones: redone
                                    filename_suffix=f".step{step}")
        self.last = time.perf_counter()
        self.samples: torch.Tensor | None = None
        if step == 0:
            self._hparams(trainer)

    def _hparams(self, trainer: Trainer) -> None:
        from dataclasses import asdict

        from tensorboardX.summary import hparams

        config: dict[str, Any] = {}
        path = self.folder.parent / "config.json"
        if path.is_file():
            config = json.loads(path.read_text(encoding="utf-8"))
        flat: dict[str, Any] = {f"train.{k}": v for k, v in asdict(trainer.config).items()}
        for section in ("model", "data"):
            for key, value in (config.get(section) or {}).items():
                flat[f"{section}.{key}"] = value
        values = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v)
                  for k, v in flat.items() if v is not None}
        metrics = {"epoch/val_loss": 0.0, "epoch/train_loss": 0.0}  # the values come from those scalars
        for summary in hparams(values, metrics):
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("config", "```\n" + json.dumps(config or values, indent=1) + "\n```", 0)

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        if self.writer is None:
            return
        now = time.perf_counter()
        step = trainer.state.step
        for name, value in {**terms, **trainer.step_info}.items():
            self.writer.add_scalar(f"step/{name}", value, step)
        self.writer.add_scalar("step/images_per_s", images / max(now - self.last, 1e-9), step)
        self.last = now

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if self.writer is None:
            return
        step = trainer.state.step
        for name, value in row.items():
            if name != "epoch":
                self.writer.add_scalar(f"epoch/{name}", value, step)
        self._images(trainer, step)
        self.writer.flush()
        self.last = time.perf_counter()  # the epoch's validation and images are not training time

    @torch.no_grad()
    def _images(self, trainer: Trainer, step: int) -> None:
        from latentlab.data.batches import to_model_input, to_uint8

        model = getattr(trainer.model, "module", trainer.model)  # Fabric's or bf16's wrapper: the model
        batches = trainer.val_batches or trainer.train_batches
        rows = np.sort(batches.indices[:GRID_IMAGES])
        device = next(model.parameters()).device
        x = to_model_input(batches.images[rows], batches.spec, device=device)
        was_training = model.training
        model.eval()
        try:
            x_hat = model.decode(model.embed(x))
            pair = np.stack([to_uint8(x, batches.spec.value_range), to_uint8(x_hat, batches.spec.value_range)])
            self.writer.add_image("reconstructions", grid(pair), step, dataformats="HWC")
            if getattr(model, "is_variational", False):
                if self.samples is None:
                    gen = torch.Generator().manual_seed(0)
                    self.samples = torch.randn(GRID_IMAGES, int(model.latent_dim), generator=gen)
                drawn = model.decode(self.samples.to(device=device, dtype=x.dtype))
                self.writer.add_image("prior_samples", grid(to_uint8(drawn, batches.spec.value_range)[None]), step,
                                      dataformats="HWC")
        finally:
            model.train(was_training)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
