"""Train a model into a run folder, or resume one: what ``latentlab train`` and ``demo`` call."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from latentlab import __version__
from latentlab.data.batches import BatchSpec
from latentlab.data.imageset import ImageSet
from latentlab.data.rule import PreparedSet, load_prepared, refuse_undecoded, with_source_defaults
from latentlab.data.sources import absolute_spec
from latentlab.durations import format_duration
from latentlab.errors import LatentlabError
from latentlab.io import read_json, remove_temporaries, write_json, write_text
from latentlab.losses import model_loss
from latentlab.models.base import Autoencoder, config_to_dict, tuples
from latentlab.models.registry import CONFIG, build, config_from_dict
from latentlab.runs import (
    CHECKPOINTS,
    COMPLETE,
    METRICS,
    prepare_out_dir,
    read_config,
    rule_from_config,
    rule_to_dict,
    split_indices,
)
from latentlab.train.batches import ImageBatches
from latentlab.train.callbacks import STEP_LOG, MetricsCSV, ProgressBar, StepLog
from latentlab.train.checkpoints import save_final_weights
from latentlab.train.lock import RunLock
from latentlab.train.schedules import LENGTH_BOUND, check_warmup, epochs_of_steps
from latentlab.train.trainer import Callback, TrainConfig, Trainer, make_fabric


def prepare_data(data: str | ImageSet, rule: BatchSpec) -> PreparedSet:
    """Training data under ``rule``: a data spec is loaded by :func:`load_prepared`; an array set
    in memory is prepared per batch by the whole rule (as an array source is)."""
    if isinstance(data, str):
        return load_prepared(data, rule)  # (the rule with its source's defaults: see train_run)
    if isinstance(data, PreparedSet):
        return data
    if data.spec:
        refuse_undecoded(data, rule)
    return PreparedSet(images=data.images, labels=data.labels, label_names=data.label_names,
                       factors=data.factors, spec=data.spec, batch=dataclasses.replace(rule, noise=0.0))


def check_fits(model_config: Any, data: PreparedSet) -> None:
    shape = data.input_shape
    if tuple(model_config.in_shape) != tuple(shape):
        raise LatentlabError(
            f"model input {tuple(model_config.in_shape)} does not match the data {shape} "
            f"({data.spec}); use --resize/--crop or a model for this shape")


def run_config(model_config: Any, data: PreparedSet, rule: BatchSpec, train: TrainConfig) -> dict[str, Any]:
    return {
        "latentlab": __version__,
        "model": config_to_dict(model_config),
        "data": {"spec": absolute_spec(data.spec), "n_images": len(data), "stored_shape": list(data.image_shape),
                 "rule": rule_to_dict(rule),
                 "cut_while_decoding": data.batch != dataclasses.replace(rule, noise=0.0)},
        "train": asdict(train),
    }


def train_run(model_config: Any, data: str | ImageSet, rule: BatchSpec, train: TrainConfig, out: str | Path,
              *, overwrite: bool = False, progress: bool = True,
              callbacks: Sequence[Callback] = (), extra: Mapping[str, Any] | None = None) -> Autoencoder:
    """Train a new model on ``data`` (a data spec, or a set in memory) under the input rule
    ``rule`` into the run folder ``out``; returns the trained model. ``extra`` sections are
    written into the run's config.json beside the ones the trainer writes (e.g. ``recipe``)."""
    out = Path(out)
    spec = data if isinstance(data, str) else data.spec
    rule = with_source_defaults(rule, spec) if spec else rule  # recorded whole: celeba's 140 -> 64
    prepared = prepare_data(data, rule)
    check_fits(model_config, prepared)
    config = {**run_config(model_config, prepared, rule, train), **(extra or {})}
    torch.manual_seed(train.seed)
    model = build(model_config)
    fabric = _launch(train)
    _check_length(train, _batches(prepared, rule, train)[0], fabric.world_size)  # before the folder is made
    lock = RunLock(out)

    def start() -> None:
        lock.acquire()
        prepare_out_dir(out, overwrite)
        write_json(out / CONFIG, config)

    try:
        on_rank_zero(fabric, start)
        return _fit(model, prepared, rule, train, out, fabric, resume=False, progress=progress, callbacks=callbacks)
    finally:
        lock.release()


# options a resumed run takes from its config; only the number of epochs may change
RESUME_FIXED = ("data", "model", "rule", "train")


def resume_run(out: str | Path, data: str | ImageSet | None = None, *, progress: bool = True,
               epochs: int | None = None, callbacks: Sequence[Callback] = (),
               given: Mapping[str, Any] | None = None) -> Autoencoder:
    """Continue an interrupted run from its last checkpoint (``epochs`` may raise the target).

    ``given`` holds the options the user stated along with the resume (e.g. ``{"batch_size":
    64}``); any that contradicts the run is refused with one line naming it.
    """
    out = Path(out)
    if not out.is_dir():
        raise LatentlabError(f"{out}: run folder not found; nothing to resume")
    config = read_config(out)
    source = str(out / CONFIG)
    model_config = config_from_dict(config.get("model"), source)
    rule = rule_from_config(config, source)
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    saved = {k: tuples(v) for k, v in config.get("train", {}).items() if k in train_fields}
    train = TrainConfig(**{**saved, **({"epochs": epochs} if epochs else {})})
    check_resume_options(config, given or {}, out)
    _check_new_length(train, saved.get("epochs"), epochs, out)
    if data is None:
        spec = config.get("data", {}).get("spec")
        if not spec:
            raise LatentlabError(f"{source}: has no data spec; pass --data")
        data = spec
    prepared = prepare_data(data, rule)
    check_fits(model_config, prepared)
    torch.manual_seed(train.seed)
    model = build(model_config)
    fabric = _launch(train)
    lock = RunLock(out)

    def restart() -> None:
        lock.acquire()
        (out / COMPLETE).unlink(missing_ok=True)
        remove_temporaries(out)  # what a killed write left behind
        if epochs:
            config["train"] = asdict(train)
            write_json(out / CONFIG, config)

    try:
        on_rank_zero(fabric, restart)
        return _fit(model, prepared, rule, train, out, fabric, resume=True, progress=progress, callbacks=callbacks)
    finally:
        lock.release()


def _check_new_length(train: TrainConfig, recorded: Any, epochs: int | None, out: Path) -> None:
    """``--epochs`` may change on resume, unless the run was laid out over its length."""
    if not epochs or epochs == recorded:
        return
    if train.budget is not None:
        raise LatentlabError(f"--resume {out}: --epochs {epochs}: the run's length is its --budget "
                             f"{format_duration(train.budget)}; start a new --out to train longer")
    if train.lr_schedule in LENGTH_BOUND:
        raise LatentlabError(f"--resume {out}: --epochs {epochs} would reshape the run's {train.lr_schedule} "
                             f"schedule, laid out over {recorded} epochs; start a new --out to train longer")


def check_resume_options(config: dict[str, Any], given: Mapping[str, Any], out: Path) -> None:
    """Refuse options given with ``--resume`` that differ from what the run recorded.

    ``given`` maps a recorded name to the value the user gave: ``data`` (the spec), ``model``
    (a whole model config dict), ``rule`` (a BatchSpec) or a TrainConfig field. ``epochs`` may
    change; everything else must equal the run's own value.
    """
    recorded_train = config.get("train", {})
    for name, value in given.items():
        if name == "epochs":
            continue
        if name == "data":
            recorded: Any = config.get("data", {}).get("spec")
        elif name == "model":
            recorded = config.get("model")
        elif name == "rule":
            recorded, value = rule_to_dict(rule_from_config(config, str(out / CONFIG))), rule_to_dict(value)
        else:
            recorded = recorded_train.get(name)
        if tuples(recorded) != tuples(value):
            option = "--" + name.replace("_", "-")
            if name == "budget":  # seconds, shown as typed
                value, recorded = (format_duration(v) if v is not None else v for v in (value, recorded))
            shown = {"model": "the model options", "rule": "the input rule (--crop/--center-crop/--resize/"
                     "--range/--noise)"}.get(name, f"{option} {value}")
            raise LatentlabError(f"--resume {out}: {shown} differs from the run's ({recorded}); only --epochs "
                                 "may change when resuming (start a new --out for other settings)")


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


def _batches(data: PreparedSet, rule: BatchSpec, train: TrainConfig) -> tuple[ImageBatches, ImageBatches | None]:
    """The training batches and, unless ``val_fraction`` is 0, the validation batches."""
    train_idx, val_idx = split_indices(len(data), train.val_fraction, train.seed)
    train_batches = ImageBatches(data.images, train_idx, train.batch_size, data.batch, seed=train.seed,
                                 noise=rule.noise)
    val_batches = None
    if len(val_idx):
        val_batches = ImageBatches(data.images, val_idx, train.batch_size, data.batch,
                                   shuffle=False, seed=train.seed, equal_shards=False)
    return train_batches, val_batches


def _check_length(train: TrainConfig, batches: ImageBatches, world_size: int) -> None:
    """Refuse a warm-up that outlasts a run of ``train.epochs`` (a --budget run is checked once
    its speed is known)."""
    if train.budget is None and train.epochs is not None:
        steps = -(-batches.num_batches(world_size) // train.accumulate)
        check_warmup(train.warmup_steps, train.epochs * steps, epochs_of_steps(train.epochs, steps))


class RecordBudgetSteps(Callback):
    """Writes the optimizer steps a --budget allows, once measured, into ``config.json``
    (``train.budget_steps``), before the checkpoint that records them is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0

    def on_checkpoint(self, trainer: Trainer) -> None:
        steps = trainer.state.budget_steps
        if steps and steps != self.written:
            config = read_json(self.path, "run config")
            config["train"]["budget_steps"] = steps
            write_json(self.path, config)
            self.written = steps


def _fit(model: Autoencoder, data: PreparedSet, rule: BatchSpec, train: TrainConfig, out: Path, fabric: Any,
         *, resume: bool, progress: bool, callbacks: Sequence[Callback]) -> Autoencoder:
    train_batches, val_batches = _batches(data, rule, train)
    hooks: list[Callback] = [MetricsCSV(out / METRICS), StepLog(out / STEP_LOG), RecordBudgetSteps(out / CONFIG),
                             *callbacks]
    if progress:
        hooks.insert(0, ProgressBar())
    trainer = Trainer(train, callbacks=hooks, fabric=fabric, checkpoint_dir=out / CHECKPOINTS)
    st = trainer.fit(model, model_loss, train_batches, val_batches, resume=resume)
    if trainer.best_state is not None:  # the moving average's, under --ema
        model.load_state_dict(trainer.best_state)
    model.eval()
    if fabric.is_global_zero:
        save_final_weights(model, out / "model.safetensors", out / CHECKPOINTS)  # a link to equal checkpoint bytes
        stopped = {"budget": ", the budget spent", "patience": ", stopped early"}.get(st.stop_reason, "")
        write_text(out / COMPLETE, f"epochs {st.epoch}, steps {st.step}{stopped}\n")
    fabric.barrier()
    return model
