"""Train a model into a run folder, or resume one: what ``latentlab train`` and ``demo`` call."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from latentlab import __version__
from latentlab.data.batches import BatchSpec
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError
from latentlab.io import remove_temporaries, write_json, write_text
from latentlab.losses import model_loss
from latentlab.models.base import Autoencoder, config_to_dict, tuples
from latentlab.models.registry import CONFIG, build, config_from_dict, save_weights
from latentlab.runs import (
    CHECKPOINTS,
    COMPLETE,
    LOSS_PLOT,
    METRICS,
    batch_spec_from_dict,
    batch_spec_to_dict,
    prepare_out_dir,
    read_config,
    split_indices,
)
from latentlab.train.batches import ImageBatches
from latentlab.train.callbacks import MetricsCSV, ProgressBar
from latentlab.train.trainer import Callback, TrainConfig, Trainer, make_fabric


def check_fits(model_config: Any, data: ImageSet, batch: BatchSpec) -> None:
    shape = batch.output_shape(data.image_shape)
    if tuple(model_config.in_shape) != tuple(shape):
        raise LatentlabError(
            f"model input {tuple(model_config.in_shape)} does not match the data {shape} "
            f"({data.spec}); use --resize/--crop or a model for this shape")


def run_config(model_config: Any, data: ImageSet, batch: BatchSpec, train: TrainConfig) -> dict[str, Any]:
    return {
        "latentlab": __version__,
        "model": config_to_dict(model_config),
        "data": {"spec": data.spec, "n_images": len(data), "image_shape": list(data.image_shape),
                 "batch": batch_spec_to_dict(batch)},
        "train": asdict(train),
    }


def train_run(model_config: Any, data: ImageSet, batch: BatchSpec, train: TrainConfig, out: str | Path,
              *, overwrite: bool = False, progress: bool = True,
              callbacks: Sequence[Callback] = ()) -> Autoencoder:
    """Train a new model on ``data`` into the run folder ``out``; returns the trained model."""
    out = Path(out)
    check_fits(model_config, data, batch)
    config = run_config(model_config, data, batch, train)
    torch.manual_seed(train.seed)
    model = build(model_config)
    fabric = _launch(train)

    def start() -> None:
        prepare_out_dir(out, overwrite)
        write_json(out / CONFIG, config)

    on_rank_zero(fabric, start)
    return _fit(model, data, batch, train, out, fabric, resume=False, progress=progress, callbacks=callbacks)


def resume_run(out: str | Path, data: ImageSet | None = None, *, progress: bool = True,
               epochs: int | None = None, callbacks: Sequence[Callback] = ()) -> Autoencoder:
    """Continue an interrupted run from its last checkpoint (``epochs`` may raise the target)."""
    from latentlab.data.sources import load_source

    out = Path(out)
    if not out.is_dir():
        raise LatentlabError(f"{out}: run folder not found; nothing to resume")
    config = read_config(out)
    source = str(out / CONFIG)
    model_config = config_from_dict(config.get("model"), source)
    batch = batch_spec_from_dict(config.get("data", {}).get("batch"), source)
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    saved = {k: tuples(v) for k, v in config.get("train", {}).items() if k in train_fields}
    train = TrainConfig(**{**saved, **({"epochs": epochs} if epochs else {})})
    if data is None:
        spec = config.get("data", {}).get("spec")
        if not spec:
            raise LatentlabError(f"{source}: has no data spec; pass --data")
        resize = batch.resize if spec.startswith(("folder:", "tar:")) else None
        data = load_source(spec, resize=resize)
    check_fits(model_config, data, batch)
    torch.manual_seed(train.seed)
    model = build(model_config)
    fabric = _launch(train)

    def restart() -> None:
        (out / COMPLETE).unlink(missing_ok=True)
        remove_temporaries(out)  # what a killed write left behind
        if epochs:
            config["train"] = asdict(train)
            write_json(out / CONFIG, config)

    on_rank_zero(fabric, restart)
    return _fit(model, data, batch, train, out, fabric, resume=True, progress=progress, callbacks=callbacks)


def _launch(train: TrainConfig) -> Any:
    """Fabric for ``train``; with several processes, start the others (Fabric's launcher re-runs
    this command with LOCAL_RANK set) or join them (torchrun, SLURM, ... started them)."""
    fabric = make_fabric(train)
    launched_by_fabric_cli = os.environ.get("LT_CLI_USED") == "1"  # `fabric run`: Fabric(...) joined already
    if (fabric.world_size > 1 or train.strategy != "auto") and not launched_by_fabric_cli:
        fabric.launch()
    return fabric


def on_rank_zero(fabric: Any, fn: Callable[[], None]) -> None:
    """Run ``fn`` on global rank 0 only. A LatentlabError it raises is raised on every rank, so
    that no rank waits forever for one that stopped (e.g. on an existing run folder)."""
    error = None
    if fabric.is_global_zero:
        try:
            fn()
        except LatentlabError as exc:
            error = str(exc)
    if fabric.world_size > 1:
        error = fabric.broadcast(error, src=0)  # also the barrier: rank 0 has finished ``fn``
    if error is not None:
        raise LatentlabError(error)


def is_global_zero() -> bool:
    """True in a single process and on global rank 0 of a multi-process run (to print once)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _fit(model: Autoencoder, data: ImageSet, batch: BatchSpec, train: TrainConfig, out: Path, fabric: Any,
         *, resume: bool, progress: bool, callbacks: Sequence[Callback]) -> Autoencoder:
    train_idx, val_idx = split_indices(len(data), train.val_fraction, train.seed)
    train_batches = ImageBatches(data.images, train_idx, train.batch_size, batch, seed=train.seed, noise=batch.noise)
    val_batches = None
    if len(val_idx):
        val_batches = ImageBatches(data.images, val_idx, train.batch_size, dataclasses.replace(batch, noise=0.0),
                                   shuffle=False, seed=train.seed, equal_shards=False)
    hooks: list[Callback] = [MetricsCSV(out / METRICS), *callbacks]
    if progress:
        hooks.insert(0, ProgressBar())
    trainer = Trainer(train, callbacks=hooks, fabric=fabric, checkpoint_dir=out / CHECKPOINTS)
    trainer.fit(model, model_loss, train_batches, val_batches, resume=resume)
    if trainer.best_state is not None:
        model.load_state_dict(trainer.best_state)
    model.eval()
    if fabric.is_global_zero:
        save_weights(model, out / "model.safetensors")
        from latentlab.viz.plots import plot_loss

        plot_loss(trainer.state.history, out / LOSS_PLOT)
        write_text(out / COMPLETE, f"epochs {trainer.state.epoch}, steps {trainer.state.step}\n")
    fabric.barrier()
    return model
