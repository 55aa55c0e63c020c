"""A model-agnostic training loop on Lightning Fabric (after minGPT's trainer).

The trainer knows nothing about autoencoders: it gets a model, a loss function that returns
named terms, and batch sources. Fabric supplies devices, precision and multi-process
strategies; the loop adds named-term logging, early stopping, seeded and resumable steps,
crash-safe checkpoints, a stop on non-finite loss, and hooks (progress bar, CSV, plots).
Speed (measured in benchmarks/train_throughput.py): freed memory kept for the next step
(latentlab.allocator), fused Adam, channels-last for models with
convolution weights, per-step seeding of only the generators in use, one host transfer a step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from latentlab.allocator import release_free_memory
from latentlab.errors import LatentlabError
from latentlab.losses import LossTerms
from latentlab.train.batches import ImageBatches
from latentlab.train.checkpoints import (
    CURRENT,
    PREVIOUS,
    Best,
    CheckpointWriter,
    latest_checkpoint,
    load_checkpoint,
    load_tensors,
)

OPTIMIZERS = ("adam", "adamw", "sgd")
PRECISIONS = {"32": "32-true", "32-true": "32-true", "bf16-mixed": "bf16-mixed", "bf16-true": "bf16-true",
              "16-mixed": "16-mixed", "64": "64-true", "64-true": "64-true"}
LossFn = Callable[[torch.nn.Module, Tensor, Tensor], LossTerms]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int | None = None  # epochs without validation improvement before stopping
    seed: int = 0
    precision: str = "32"
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    num_nodes: int = 1
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0: at each epoch's end only

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, expected: str) -> LatentlabError:
            return LatentlabError(f"--{name.replace('_', '-')} {value}: expected {expected}")
        for name in ("epochs", "batch_size", "devices", "num_nodes"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise bad(name, v, "a positive integer")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", self.lr, "a positive number")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise bad("weight_decay", self.weight_decay, "a number >= 0")
        if not 0 <= self.val_fraction < 1:
            raise bad("val_fraction", self.val_fraction, "a fraction in [0, 1)")
        if self.patience is not None and self.patience < 1:
            raise bad("patience", self.patience, "a positive integer")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", self.optimizer, "one of " + ", ".join(OPTIMIZERS))
        if self.precision not in PRECISIONS:
            raise bad("precision", self.precision, "one of 32, bf16-mixed, bf16-true, 16-mixed, 64")
        if self.checkpoint_every < 0:
            raise bad("checkpoint_every", self.checkpoint_every, "an integer >= 0")


@dataclass
class TrainState:
    """Everything besides weights and optimizer that a resumed run needs (saved as JSON)."""

    epoch: int = 0
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of ``epoch`` already taken
    partial: dict[str, float] = field(default_factory=dict)  # running sums of this epoch's terms
    partial_count: int = 0
    epoch_seconds: float = 0.0
    best: float = math.inf
    best_step: int = -1  # the step whose weights are the best so far (-1: none yet)
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


class Callback:
    """Hooks the trainer calls; override what you need (all no-ops here)."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None: ...
    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


def make_fabric(config: TrainConfig) -> Any:
    from lightning.fabric import Fabric  # imported here: a second or two, only when training

    return Fabric(accelerator=config.accelerator, devices=config.devices, strategy=config.strategy,
                  num_nodes=config.num_nodes, precision=PRECISIONS[config.precision])  # type: ignore[arg-type]


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
    def __init__(self, config: TrainConfig, *, callbacks: Sequence[Callback] = (), fabric: Any = None,
                 checkpoint_dir: Path | None = None) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.fabric = fabric if fabric is not None else make_fabric(config)
        self.checkpoint_dir = checkpoint_dir
        self.state = TrainState()
        self.steps_per_epoch = 0
        self.best_state: dict[str, Tensor] | None = None
        self._saved_best_step = -1  # best_step of the checkpoint in force
        self.writer = CheckpointWriter(checkpoint_dir) if checkpoint_dir is not None else None
        self.memory_format = torch.contiguous_format
        self._t0 = 0.0  # perf_counter at the start of the current epoch (less time before a resume)

    @property
    def is_global_zero(self) -> bool:
        return bool(self.fabric.is_global_zero)

    # ------------------------------------------------------------ the loop

    def fit(self, model: torch.nn.Module, loss_fn: LossFn, train: ImageBatches,
            val: ImageBatches | None = None, resume: bool = False) -> TrainState:
        cfg, fabric = self.config, self.fabric
        optimizer = make_optimizer(model.parameters(), cfg, fabric.device.type)
        if resume and self.checkpoint_dir is not None:
            self._resume(model, optimizer)
        self.memory_format = memory_format_for(model)
        set_memory_format(model, optimizer, self.memory_format)
        module, optimizer = fabric.setup(model, optimizer)
        self.model = module
        self.steps_per_epoch = train.num_batches(fabric.world_size)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        st = self.state
        try:
            while st.epoch < cfg.epochs and not st.stopped_early:
                row = self._train_epoch(module, optimizer, loss_fn, train)
                if val is not None:
                    row.update({f"val_{k}": v for k, v in self.evaluate(module, loss_fn, val).items()})
                row["lr"] = float(optimizer.param_groups[0]["lr"])
                row["seconds"] = round(time.perf_counter() - self._t0, 3)
                self._end_epoch(module, row)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, row)
                self._checkpoint(module, optimizer)
        except BaseException:
            if self.writer is not None:  # the checkpoint being written is kept: finish it first
                self.writer.wait(raise_error=False)
            raise
        if self.writer is not None:
            self.writer.wait()  # the last checkpoint is on disk before fit returns
        optimizer.zero_grad(set_to_none=True)
        set_memory_format(model, optimizer, torch.contiguous_format)  # hand back the usual layout
        for cb in self.callbacks:
            cb.on_fit_end(self)
        release_free_memory()
        return st

    def _train_epoch(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn,
                     train: ImageBatches) -> dict[str, float]:
        """The rest of epoch ``state.epoch``; returns its row (train_* means over all ranks)."""
        cfg, fabric, st = self.config, self.fabric, self.state
        rank, world = fabric.global_rank, fabric.world_size
        module.train()
        self._t0 = time.perf_counter() - st.epoch_seconds
        sums = dict(st.partial)  # running sums of each term times its batch size, on this rank
        for x_in, target in train.epoch(st.epoch, rank, world, start=st.batch_in_epoch, device=fabric.device,
                                        memory_format=self.memory_format):
            seed_generators(step_seed(cfg.seed, st.step, rank), fabric.device)
            terms = loss_fn(module, x_in, target).items()
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(terms["loss"])
            optimizer.step()
            values = dict(zip(terms, torch.stack([v.detach().float() for v in terms.values()]).tolist(),
                              strict=True))  # one device-to-host transfer per step
            if not math.isfinite(values["loss"]):
                raise LatentlabError(
                    f"training diverged: the loss became {values['loss']} at step {st.step + 1} "
                    f"(epoch {st.epoch + 1}); the last good checkpoint was kept; try a lower --lr")
            n = len(x_in)
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v * n
            st.partial_count += n
            st.step += 1
            st.batch_in_epoch += 1
            for cb in self.callbacks:
                cb.on_step_end(self, values, n * world)
            if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0 \
                    and st.batch_in_epoch < self.steps_per_epoch:
                st.partial = dict(sums)
                st.epoch_seconds = time.perf_counter() - self._t0
                self._checkpoint(module, optimizer)
        local = torch.tensor([float(st.partial_count), *sums.values()], dtype=torch.float64)
        totals = fabric.all_reduce(local, reduce_op="sum").tolist()
        row: dict[str, float] = {"epoch": st.epoch + 1, "step": st.step}
        row.update({f"train_{k}": v / max(totals[0], 1.0) for k, v in zip(sums, totals[1:], strict=True)})
        return row

    def _end_epoch(self, module: torch.nn.Module, row: dict[str, float]) -> None:
        st, cfg = self.state, self.config
        st.history.append(row)
        st.epoch += 1
        st.batch_in_epoch, st.partial, st.partial_count, st.epoch_seconds = 0, {}, 0, 0.0
        watched = row.get("val_loss", row.get("train_loss", math.inf))
        if watched < st.best:
            st.best, st.bad_epochs, st.best_step = watched, 0, st.step
            self.best_state = {k: v.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
                               for k, v in module.state_dict().items()}
        else:
            st.bad_epochs += 1
            if cfg.patience is not None and st.bad_epochs >= cfg.patience:
                st.stopped_early = True

    @torch.no_grad()
    def evaluate(self, module: torch.nn.Module, loss_fn: LossFn, batches: ImageBatches) -> dict[str, float]:
        """Mean of each loss term over ``batches`` (all ranks), in eval mode."""
        fabric = self.fabric
        module.eval()
        sums: dict[str, float] = {}
        count = 0
        rank, world = fabric.global_rank, fabric.world_size
        for i, (x_in, target) in enumerate(batches.epoch(0, rank, world, device=fabric.device,
                                                         memory_format=self.memory_format)):
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

    # ------------------------------------------------------------ checkpoints

    def _checkpoint(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.checkpoint_dir is None or not self.is_global_zero:
            return
        assert self.writer is not None
        inner = getattr(module, "module", module)
        st = self.state
        best: Best = None
        if self.best_state is not None:
            if st.best_step == st.step:
                best = CURRENT  # these weights: a link, not a second copy
            elif st.best_step == self._saved_best_step:
                best = PREVIOUS  # unchanged since the checkpoint in force: a link to its file
            else:
                best = self.best_state
        self.writer.save(inner, optimizer, asdict(st), best)
        self._saved_best_step = st.best_step if self.best_state is not None else -1

    def _resume(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        assert self.checkpoint_dir is not None
        ckpt = latest_checkpoint(self.checkpoint_dir)
        if ckpt is None:
            return
        state = load_checkpoint(ckpt, model, optimizer)
        try:
            self.state = TrainState(**state)
        except TypeError as exc:
            raise LatentlabError(f"{ckpt / 'state.json'}: not a trainer state ({exc})") from None
        best_path = ckpt / "best.safetensors"
        if best_path.is_file():
            self.best_state = load_tensors(best_path)
            self._saved_best_step = self.state.best_step
