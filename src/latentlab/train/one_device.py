"""One process on one device: what Lightning Fabric does there, without importing it.

Importing ``lightning_fabric`` costs about 1.6 CPU-seconds on 2 busy cores beyond what a training
process imports anyway (torch, and the ``torch._dynamo`` that torch's first optimizer imports):
torchmetrics with matplotlib and scipy for a version check, and Fabric's own modules. A training
process on one device uses none of that.
:func:`latentlab.train.trainer.make_fabric` returns :class:`OneDevice` for one CPU or CUDA
device in ``32-true`` or ``bf16-mixed`` precision, and a real ``Fabric`` for everything else
(several devices, processes or nodes, a strategy, other precisions).

It does what Fabric's single-device strategy does with those precisions, step for step, so
that the two train to the same bits (``tests/test_startup.py`` compares them): the model is
moved to the device; under ``bf16-mixed`` the forward pass runs under ``torch.autocast`` with its
floating-point inputs cast to bfloat16 and its floating-point outputs cast back to float32;
``backward`` is ``loss.backward()``; gradient clipping is ``clip_grad_norm_`` over the
optimizer's parameters; collectives return their input.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from latentlab.errors import LatentlabError

PRECISIONS = ("32-true", "bf16-mixed")  # the ones handled here; Fabric does the others


class OneDevice:
    """The part of ``lightning_fabric.Fabric``'s API the trainer uses, for one process."""

    world_size = 1
    global_rank = 0
    local_rank = 0
    node_rank = 0
    is_global_zero = True

    def __init__(self, accelerator: str, precision: str) -> None:
        if accelerator not in ("cpu", "cuda") or precision not in PRECISIONS:
            raise ValueError(f"OneDevice: {accelerator} / {precision} is Fabric's to run")
        if accelerator == "cuda":
            if not torch.cuda.is_available():
                raise LatentlabError("--accelerator cuda: no CUDA device is available here")
            torch.cuda.set_device(0)
        self.device = torch.device(accelerator, 0) if accelerator == "cuda" else torch.device("cpu")
        self.precision = precision

    def launch(self) -> None:
        """Nothing to launch: this is the only process."""

    def setup(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        module.to(self.device)
        for state in optimizer.state.values():  # a resumed state: to the device, but "step" stays where it is
            for key, value in state.items():
                if key != "step" and isinstance(value, Tensor):
                    state[key] = value.to(self.device)
        if self.precision == "bf16-mixed":
            return Autocast(module, self.device.type), optimizer
        return module, optimizer

    def backward(self, loss: Tensor) -> None:
        loss.backward()

    @contextlib.contextmanager
    def no_backward_sync(self, module: nn.Module, enabled: bool = True) -> Iterator[None]:
        yield  # no other process to synchronise with

    def clip_gradients(self, module: nn.Module, optimizer: torch.optim.Optimizer, max_norm: float,
                       norm_type: float = 2.0, error_if_nonfinite: bool = True) -> Tensor:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        return torch.nn.utils.clip_grad_norm_(params, max_norm=max_norm, norm_type=norm_type,
                                              error_if_nonfinite=error_if_nonfinite)

    def all_reduce(self, data: Tensor, reduce_op: str = "mean") -> Tensor:
        return data

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        return obj

    def barrier(self) -> None:
        """Nothing to wait for."""


class Autocast(nn.Module):
    """``module`` run under bf16 autocast, as Fabric's ``bf16-mixed`` runs it: floating-point
    inputs cast to bfloat16, outputs (tensors, and the tensor fields of a dataclass such as
    ``AEOutput``) cast to float32. ``state_dict`` is the inner module's, without a prefix."""

    def __init__(self, module: nn.Module, device_type: str) -> None:
        super().__init__()
        self.module = module
        self.device_type = device_type

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _cast((args, kwargs), torch.bfloat16)
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.module(*args, **kwargs)
        return _cast(out, torch.get_default_dtype())

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.load_state_dict(*args, **kwargs)


def _cast(data: Any, dtype: torch.dtype) -> Any:
    """Floating-point tensors in ``data`` (through tuples, lists, dicts and dataclasses) as ``dtype``."""
    if isinstance(data, Tensor):
        return data.to(dtype) if data.is_floating_point() else data
    if isinstance(data, (tuple, list)):
        return type(data)(_cast(v, dtype) for v in data)
    if isinstance(data, dict):
        return {k: _cast(v, dtype) for k, v in data.items()}
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return dataclasses.replace(data, **{f.name: _cast(getattr(data, f.name), dtype)
                                            for f in dataclasses.fields(data) if f.init})
    return data
