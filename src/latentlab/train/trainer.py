"""A model-agnostic training loop on Lightning Fabric (after minGPT's trainer).

The trainer knows nothing about autoencoders: it gets a model, a loss function that returns
named terms, and batch sources. Fabric supplies devices, precision and multi-process
strategies; the loop adds named-term logging, early stopping, seeded and resumable steps,
crash-safe checkpoints, a stop on non-finite loss, and hooks (progress bar, CSV, plots).
What practitioners expect of a loop is here too, each an option of :class:`TrainConfig`,
recorded in the run and restored exactly on resume: a learning-rate schedule with warm-up
(``schedules.py``), gradient clipping, a moving average of the weights (``ema.py``), gradient
accumulation, a wall-clock budget (``budget.py``) and bit-identical runs (``determinism.py``).
Speed (measured in benchmarks/train_throughput.py): freed memory kept for the next step
(latentlab.allocator), fused Adam, channels-last for models with
convolution weights, per-step seeding of only the generators in use, one host transfer a step.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from latentlab.allocator import release_free_memory
from latentlab.durations import format_duration
from latentlab.errors import LatentlabError
from latentlab.losses import LossTerms
from latentlab.train.batches import Batch, ImageBatches
from latentlab.train.budget import Budget, plan_steps
from latentlab.train.checkpoints import (
    CURRENT,
    EMA_FILE,
    PREVIOUS,
    Best,
    CheckpointWriter,
    latest_checkpoint,
    load_checkpoint,
    load_tensors,
)
from latentlab.train.config import OPTIMIZERS as OPTIMIZERS  # re-exported: the config's old home
from latentlab.train.config import PRECISIONS as PRECISIONS
from latentlab.train.config import TrainConfig as TrainConfig
from latentlab.train.config import TrainState as TrainState
from latentlab.train.determinism import deterministic_mode
from latentlab.train.ema import EMA
from latentlab.train.schedules import Plateau, check_warmup, epochs_of_steps, lr_factor

LossFn = Callable[[torch.nn.Module, Tensor, Tensor], LossTerms]


class Callback:
    """Hooks the trainer calls; override what you need (all no-ops here)."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None: ...
    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None: ...
    def on_checkpoint(self, trainer: Trainer) -> None: ...  # rank 0, before a checkpoint is written
    def on_fit_end(self, trainer: Trainer) -> None: ...


def make_fabric(config: TrainConfig) -> Any:
    """Lightning Fabric for ``config``; for one process on one CPU or CUDA device in 32-true or
    bf16-mixed, :class:`~latentlab.train.one_device.OneDevice`, which does the same without the
    seconds that importing Fabric takes (see one_device.py)."""
    import os

    from latentlab.train.one_device import PRECISIONS as ONE_DEVICE_PRECISIONS
    from latentlab.train.one_device import OneDevice

    precision = PRECISIONS[config.precision]
    launched = any(os.environ.get(v) for v in ("WORLD_SIZE", "LOCAL_RANK", "LT_CLI_USED"))  # torchrun, `fabric run`
    if (config.accelerator in ("cpu", "cuda") and config.devices == 1 and config.num_nodes == 1
            and config.strategy == "auto" and precision in ONE_DEVICE_PRECISIONS and not launched):
        return OneDevice(config.accelerator, precision)
    from lightning_fabric import Fabric  # imported here: seconds, only for what OneDevice does not do

    return Fabric(accelerator=config.accelerator, devices=config.devices, strategy=config.strategy,
                  num_nodes=config.num_nodes, precision=precision)  # type: ignore[arg-type]


def make_optimizer(params: Any, config: TrainConfig, device_type: str) -> torch.optim.Optimizer:
    fused = device_type in ("cpu", "cuda")  # several times faster than the for-loop Adam on CPU
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def step_seed(seed: int, step: int, rank: int) -> int:
    """Seed for one step, so sampling (VAE, dropout) is the same after a resume."""
    return (seed * 1_000_003 + step * 7919 + rank) % (2**63 - 1)


def seed_generators(seed: int, device: torch.device) -> None:
    """``torch.manual_seed(seed)`` for the generators this process draws from: the CPU's and its
    own device's. (``torch.manual_seed`` also queues a lazy seeding of every device kind not in
    use, formatting a stack trace for each: about 2 ms, every step.)"""
    if device.type not in ("cpu", "cuda"):
        torch.manual_seed(seed)
        return
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)  # the current device only; CUDA is initialised by now


def memory_format_for(model: torch.nn.Module) -> torch.memory_format:
    """channels-last for models with convolution weights (oneDNN runs them faster, and the stored
    uint8 pixels already are (N, H, W, C)); the default layout for everything else."""
    has_conv = any(p.ndim == 4 for p in model.parameters())
    return torch.channels_last if has_conv else torch.contiguous_format


def set_memory_format(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      fmt: torch.memory_format) -> None:
    """Lay out every 4-D parameter, and its optimizer state, as ``fmt`` (in place: same Parameters)."""
    for p in model.parameters():
        if p.ndim != 4:
            continue
        p.data = p.data.contiguous(memory_format=fmt)
        state = optimizer.state.get(p, {})
        for name, value in state.items():  # fused Adam pairs elements by memory position
            if isinstance(value, Tensor) and value.shape == p.shape:
                state[name] = value.contiguous(memory_format=fmt)


class Trainer:
    """``clock`` measures the seconds that ``--budget`` counts (tests pass a simulated one)."""

    def __init__(self, config: TrainConfig, *, callbacks: Sequence[Callback] = (), fabric: Any = None,
                 checkpoint_dir: Path | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.fabric = fabric if fabric is not None else make_fabric(config)
        self.checkpoint_dir = checkpoint_dir
        self.clock = clock
        self.state = TrainState()
        self.steps_per_epoch = 0  # optimizer steps
        self.batches_per_epoch = 0
        self.best_state: dict[str, Tensor] | None = None
        self._saved_best_step = -1  # best_step of the checkpoint in force
        self.writer = CheckpointWriter(checkpoint_dir) if checkpoint_dir is not None else None
        self.memory_format = torch.contiguous_format
        self._t0 = 0.0  # clock at the start of the current epoch (less time before a resume)
        self._clock0 = 0.0  # clock when training started (less the time of earlier processes)
        self.ema: EMA | None = None
        self.plateau = Plateau()
        self.budget: Budget | None = None
        self.step_info: dict[str, float] = {}  # the last step's lr, and its gradient norm before clipping

    @property
    def is_global_zero(self) -> bool:
        return bool(self.fabric.is_global_zero)

    @property
    def total_steps(self) -> int | None:
        """Optimizer steps in the whole run (None: a --budget run whose speed is not measured yet)."""
        cfg = self.config
        if cfg.budget is not None:
            return self.state.budget_steps or None
        assert cfg.epochs is not None
        return cfg.epochs * self.steps_per_epoch

    def lr_at(self, step: int) -> float:
        cfg = self.config
        return cfg.lr * lr_factor(cfg.lr_schedule, step, self.total_steps, cfg.warmup_steps) * self.plateau.scale

    def elapsed(self) -> float:
        """Seconds of training so far, summed over the processes that resumed this run."""
        return self.clock() - self._clock0

    # ------------------------------------------------------------ the loop

    def fit(self, model: torch.nn.Module, loss_fn: LossFn, train: ImageBatches,
            val: ImageBatches | None = None, resume: bool = False) -> TrainState:
        with deterministic_mode(self.config.deterministic):
            self._setup(model, loss_fn, train, val, resume)
            try:
                self._loop()
            except BaseException:
                if self.writer is not None:  # the checkpoint being written is kept: finish it first
                    self.writer.wait(raise_error=False)
                raise
            self.state.elapsed = self.elapsed()
            self.optimizer.zero_grad(set_to_none=True)
            set_memory_format(model, self.optimizer, torch.contiguous_format)  # hand back the usual layout
            try:  # the callbacks' last work (the loss plot) overlaps the writing of the last checkpoint
                for cb in self.callbacks:
                    cb.on_fit_end(self)
            finally:
                if self.writer is not None:
                    self.writer.wait()  # the last checkpoint is on disk before fit returns
        release_free_memory()
        return self.state

    def _setup(self, model: torch.nn.Module, loss_fn: LossFn, train: ImageBatches, val: ImageBatches | None,
               resume: bool) -> None:
        cfg, fabric = self.config, self.fabric
        optimizer = make_optimizer(model.parameters(), cfg, fabric.device.type)
        ema_file = self._resume(model, optimizer) if resume and self.checkpoint_dir is not None else None
        self.memory_format = memory_format_for(model)
        set_memory_format(model, optimizer, self.memory_format)
        self.model, self.optimizer = fabric.setup(model, optimizer)
        self._inner, self.loss_fn, self.train_batches, self.val_batches = model, loss_fn, train, val
        self.batches_per_epoch = train.num_batches(fabric.world_size)
        self.steps_per_epoch = -(-self.batches_per_epoch // cfg.accumulate)
        if cfg.budget is None:
            check_warmup(cfg.warmup_steps, self.total_steps, epochs_of_steps(cfg.epochs, self.steps_per_epoch))
        if cfg.ema is not None:  # after setup: the average takes the parameters' device and layout
            self.ema = EMA(model, cfg.ema, self.state.ema_updates)
            if ema_file is not None:
                self.ema.load(load_tensors(ema_file), str(ema_file))
        self.plateau = Plateau(**self.state.plateau)
        self._clock0 = self.clock() - self.state.elapsed
        if cfg.budget is not None:
            self.budget = Budget(cfg.budget, min_steps=cfg.checkpoint_every + 1, started=self.state.elapsed)
        for cb in self.callbacks:
            cb.on_fit_start(self)

    def _loop(self) -> None:
        cfg, st = self.config, self.state
        while (cfg.epochs is None or st.epoch < cfg.epochs) and not st.stopped_early:
            row = self._train_epoch()
            if self.val_batches is not None:
                row.update({f"val_{k}": v for k, v in self.validate(self.val_batches).items()})
            row["lr"] = float(self.optimizer.param_groups[0]["lr"])
            row["seconds"] = round(self.clock() - self._t0, 3)
            self._end_epoch(row)
            for cb in self.callbacks:
                cb.on_epoch_end(self, row)
            self._checkpoint()

    def _train_epoch(self) -> dict[str, float]:
        """The rest of epoch ``state.epoch`` (less, when the budget is spent); returns its row
        (train_* means over all ranks)."""
        cfg, fabric, st = self.config, self.fabric, self.state
        rank, world = fabric.global_rank, fabric.world_size
        self.model.train()
        self._t0 = self.clock() - st.epoch_seconds
        sums = dict(st.partial)  # running sums of each term times its batch size, on this rank
        batches = self.train_batches.epoch(st.epoch, rank, world, start=st.batch_in_epoch, device=fabric.device,
                                           memory_format=self.memory_format)
        while group := list(itertools.islice(batches, cfg.accumulate)):
            values, n = self._step(group)
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v * n
            st.partial_count += n
            st.step += 1
            st.batch_in_epoch += len(group)
            if self.budget is not None:
                self.budget.record_step(self.elapsed())
            for cb in self.callbacks:
                cb.on_step_end(self, values, n * world)
            if self._budget_spent():
                st.stopped_early, st.stop_reason = True, "budget"
                break
            if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0 \
                    and st.batch_in_epoch < self.batches_per_epoch:
                st.partial = dict(sums)
                st.epoch_seconds = self.clock() - self._t0
                self._checkpoint()
        local = torch.tensor([float(st.partial_count), *sums.values()], dtype=torch.float64)
        totals = fabric.all_reduce(local, reduce_op="sum").tolist()
        done = st.batch_in_epoch / self.batches_per_epoch
        row: dict[str, float] = {"epoch": st.epoch + 1 if done >= 1 else round(st.epoch + done, 4), "step": st.step}
        row.update({f"train_{k}": v / max(totals[0], 1.0) for k, v in zip(sums, totals[1:], strict=True)})
        return row

    def _step(self, group: list[Batch]) -> tuple[dict[str, float], int]:
        """One optimizer step over the batches in ``group``, each loss weighted by its share of the
        rows, so that the gradient is the one of a single batch of them all; returns the loss terms
        (the same weighted means) and the number of rows."""
        cfg, fabric, st = self.config, self.fabric, self.state
        module, optimizer = self.model, self.optimizer
        seed_generators(step_seed(cfg.seed, st.step, fabric.global_rank), fabric.device)
        lr = self.lr_at(st.step)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        rows = sum(len(x_in) for x_in, _ in group)
        optimizer.zero_grad(set_to_none=True)
        sums: dict[str, Tensor] = {}
        for i, (x_in, target) in enumerate(group):
            weight = len(x_in) / rows
            with fabric.no_backward_sync(module, enabled=i < len(group) - 1):  # one all-reduce a step
                terms = self.loss_fn(module, x_in, target).items()
                fabric.backward(terms["loss"] * weight)
            for k, v in terms.items():
                sums[k] = sums[k] + v.detach().float() * weight if k in sums else v.detach().float() * weight
        logged = list(sums.values())
        if cfg.grad_clip is not None:  # the norm before clipping
            logged.append(fabric.clip_gradients(module, optimizer, max_norm=cfg.grad_clip,
                                                error_if_nonfinite=False).float())
        optimizer.step()
        if self.ema is not None:
            self.ema.update()
        numbers = torch.stack(logged).tolist()  # one device-to-host transfer per step
        values = dict(zip(sums, numbers, strict=False))
        self.step_info = {"lr": lr, **({"grad_norm": numbers[-1]} if cfg.grad_clip is not None else {})}
        if not math.isfinite(values["loss"]):
            raise LatentlabError(
                f"training diverged: the loss became {values['loss']} at step {st.step + 1} "
                f"(epoch {st.epoch + 1}); the last good checkpoint was kept; try a lower --lr")
        return values, rows

    def _end_epoch(self, row: dict[str, float]) -> None:
        st, cfg = self.state, self.config
        st.history.append(row)
        st.epoch += 1
        st.batch_in_epoch, st.partial, st.partial_count, st.epoch_seconds = 0, {}, 0, 0.0
        watched = row.get("val_loss", row.get("train_loss", math.inf))
        if cfg.lr_schedule == "plateau":
            self.plateau.update(watched)
        if watched < st.best:
            st.best, st.bad_epochs, st.best_step = watched, 0, st.step
            self.best_state = self._validated_weights()
        else:
            st.bad_epochs += 1
            if cfg.patience is not None and st.bad_epochs >= cfg.patience:
                st.stopped_early, st.stop_reason = True, st.stop_reason or "patience"

    def _validated_weights(self) -> dict[str, Tensor]:
        """CPU copies of the weights that validation uses: the moving average under --ema."""
        if self.ema is not None:
            return self.ema.state_dict()
        return {k: v.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
                for k, v in self._inner.state_dict().items()}

    # ------------------------------------------------------------ validation

    def validate(self, batches: ImageBatches, max_batches: int | None = None) -> dict[str, float]:
        """:meth:`evaluate` with the weights validation uses: the moving average under --ema."""
        averaged = self.ema.applied() if self.ema is not None else contextlib.nullcontext()
        with averaged:
            return self.evaluate(self.model, self.loss_fn, batches, max_batches)

    @torch.no_grad()
    def evaluate(self, module: torch.nn.Module, loss_fn: LossFn, batches: ImageBatches,
                 max_batches: int | None = None) -> dict[str, float]:
        """Mean of each loss term over ``batches`` (all ranks; the first ``max_batches`` of them), in eval mode."""
        fabric = self.fabric
        module.eval()
        sums: dict[str, float] = {}
        count = 0
        rank, world = fabric.global_rank, fabric.world_size
        source = batches.epoch(0, rank, world, device=fabric.device, memory_format=self.memory_format)
        for i, (x_in, target) in enumerate(itertools.islice(source, max_batches)):
            seed_generators(step_seed(self.config.seed, i, rank), fabric.device)
            terms = loss_fn(module, x_in, target).items()
            values = torch.stack([v.detach().float() for v in terms.values()]).tolist()
            for k, v in zip(terms, values, strict=True):
                sums[k] = sums.get(k, 0.0) + v * len(x_in)
            count += len(x_in)
        module.train()
        names = fabric.broadcast(list(sums), src=0) if world > 1 else list(sums)  # a rank may have no rows
        local = torch.tensor([float(count), *(sums.get(k, 0.0) for k in names)], dtype=torch.float64)
        totals = fabric.all_reduce(local, reduce_op="sum").tolist()
        return {k: v / max(totals[0], 1.0) for k, v in zip(names, totals[1:], strict=True)}

    # ------------------------------------------------------------ budget

    def _budget_spent(self) -> bool:
        """Whether a --budget run stops after this step; plans the run once its speed is known.
        Rank 0 decides for all (the ranks' clocks differ)."""
        if self.budget is None:
            return False
        flags = (not self.state.budget_steps and self.budget.ready(), self.budget.spent(self.elapsed()))
        if self.fabric.world_size > 1:
            flags = tuple(self.fabric.broadcast(flags, src=0))
        plan_now, spent = flags
        if plan_now:
            self._plan()
        return bool(spent)

    def _plan(self) -> None:
        """Lay the schedule out over the budget: the optimizer steps that fit at the measured
        speed, counting what validation and checkpoints will cost (one batch and one copy, timed now)."""
        cfg, st, budget, world = self.config, self.state, self.budget, self.fabric.world_size
        assert budget is not None and cfg.budget is not None
        started = self.clock()
        if self.val_batches is not None:
            self.validate(self.val_batches, max_batches=1)
        validation = (self.clock() - started) * (self.val_batches.num_batches(world) if self.val_batches else 0)
        started = self.clock()
        copies = [p.detach().to("cpu", copy=True) for p in self._inner.parameters()]
        checkpoint = (self.clock() - started) * (3 + (self.ema is not None))  # weights, optimizer state, average
        del copies
        budget.end_seconds = validation + checkpoint
        remaining = cfg.budget - self.elapsed() - budget.end_seconds
        steps = st.step + plan_steps(remaining, budget.seconds_per_step(), budget.end_seconds, checkpoint,
                                     self.steps_per_epoch, cfg.checkpoint_every)
        if cfg.epochs is not None:
            steps = min(steps, cfg.epochs * self.steps_per_epoch)
        if world > 1:
            steps = int(self.fabric.broadcast(steps, src=0))
        check_warmup(cfg.warmup_steps, steps, f"what --budget {format_duration(cfg.budget)} allows at "
                     f"{budget.seconds_per_step():.3g} s a step")
        st.budget_steps = max(steps, 1)

    # ------------------------------------------------------------ checkpoints

    def _checkpoint(self) -> None:
        st = self.state
        st.elapsed, st.plateau = self.elapsed(), asdict(self.plateau)
        st.ema_updates = self.ema.updates if self.ema is not None else 0
        if self.checkpoint_dir is None or not self.is_global_zero:
            return
        assert self.writer is not None
        best: Best = None
        if self.best_state is not None:
            if st.best_step == st.step:
                best = CURRENT  # these weights: a link, not a second copy
            elif st.best_step == self._saved_best_step:
                best = PREVIOUS  # unchanged since the checkpoint in force: a link to its file
            else:
                best = self.best_state
        for cb in self.callbacks:
            cb.on_checkpoint(self)
        ema = self.ema.state_dict() if self.ema is not None else None
        self.writer.save(self._inner, self.optimizer, asdict(st), best, ema)
        self._saved_best_step = st.best_step if self.best_state is not None else -1

    def _resume(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Path | None:
        """Load the checkpoint in force, if any; returns its averaged weights' file under --ema."""
        assert self.checkpoint_dir is not None
        ckpt = latest_checkpoint(self.checkpoint_dir)
        if ckpt is None:
            return None
        state = load_checkpoint(ckpt, model, optimizer)
        try:
            self.state = TrainState(**state)
        except TypeError as exc:
            raise LatentlabError(f"{ckpt / 'state.json'}: not a trainer state ({exc})") from None
        best_path = ckpt / "best.safetensors"
        if best_path.is_file():
            self.best_state = load_tensors(best_path)
            self._saved_best_step = self.state.best_step
        if self.config.ema is None:
            return None
        if not (ckpt / EMA_FILE).is_file():
            raise LatentlabError(f"{ckpt}: has no {EMA_FILE}; this run was not trained with --ema")
        return ckpt / EMA_FILE
