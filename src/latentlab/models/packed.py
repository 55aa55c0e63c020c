"""Inference with Linear weights packed once for MKL's GEMM, for many batches through a fixed model.

A float32 ``nn.Linear`` on the CPU calls MKL's GEMM, which copies ("packs") the weight into the
blocked layout of its kernel on every call. For a scoring pass the weights never change, so
:func:`packed_linears` packs each one once (``torch.ops.mkl._mkl_reorder_linear_weight``, the
kernel that Inductor's CPU freezing uses) and multiplies with the packed copy. On the
development machine the 12288 x 1024 products of ``fcn-1024`` went from about 270 to about
340 GFLOP/s. Results equal ``F.linear``'s to float32 rounding; the packed copy takes
about 1.8x the weight's memory while the context is open.

A wrapped layer falls back to ``F.linear`` when gradients are on, when its input is not float32
on the CPU, and when its weight has changed since it was packed (``Tensor._version``). So a
model left wrapped by mistake still computes the right thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MIN_WEIGHT = 1 << 16  # elements: packing smaller weights gains nothing measurable


def available() -> bool:
    """Whether this torch has MKL and its packed linear kernels."""
    if not torch.backends.mkl.is_available():
        return False
    try:
        return bool(torch.ops.mkl._mkl_reorder_linear_weight) and bool(torch.ops.mkl._mkl_linear)
    except (AttributeError, RuntimeError):
        return False


class _PackedForward:
    """A replacement ``forward`` for one Linear: the packed product while its weight is unchanged."""

    def __init__(self, layer: nn.Linear, batch_size: int) -> None:
        self.layer = layer
        self.batch_size = batch_size
        weight = layer.weight.detach()
        self.version = weight._version
        self.packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, batch_size)

    def __call__(self, x: Tensor) -> Tensor:
        layer = self.layer
        if (torch.is_grad_enabled() or x.dtype != torch.float32 or x.device.type != "cpu"
                or layer.weight._version != self.version or layer.weight.device.type != "cpu"):
            return F.linear(x, layer.weight, layer.bias)
        out: Tensor = torch.ops.mkl._mkl_linear(x, self.packed, layer.weight, layer.bias, self.batch_size)
        return out


def _packable(module: nn.Module) -> bool:
    return (isinstance(module, nn.Linear) and module.weight.dtype == torch.float32
            and module.weight.device.type == "cpu" and module.weight.numel() >= MIN_WEIGHT
            and "forward" not in vars(module))


@contextmanager
def packed_linears(model: nn.Module, batch_size: int) -> Iterator[int]:
    """Inside the ``with``, ``model``'s large float32 CPU Linear layers multiply with packed weights.

    Yields how many layers were wrapped (0 where MKL is missing or nothing qualifies). Use it
    around inference over many batches of about ``batch_size`` rows, with gradients off.
    """
    layers = [m for m in model.modules() if _packable(m)] if available() else []
    wrapped: list[nn.Module] = []
    try:
        for layer in layers:
            forward: Any = _PackedForward(layer, batch_size)  # type: ignore[arg-type]
            layer.forward = forward  # an instance attribute: shadows nn.Linear.forward until removed
            wrapped.append(layer)
        yield len(wrapped)
    finally:
        for layer in wrapped:
            del layer.forward
