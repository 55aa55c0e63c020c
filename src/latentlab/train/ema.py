"""An exponential moving average of a model's weights (Polyak & Juditsky 1992; the decay warm-up
of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``).

After every optimizer step each floating-point parameter's average moves towards it::

    avg = rate * avg + (1 - rate) * p,    rate = min(decay, (1 + updates) / (10 + updates))

The warm-up keeps the first averages from clinging to the random initial weights (with decay
0.999 they would otherwise weigh about 1000 steps). Averages are float32 whatever the
parameters' dtype. Buffers (batch-norm statistics) are not averaged: the model's own are used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from latentlab.errors import LatentlabError


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float, updates: int = 0) -> None:
        self.model = model
        self.decay = decay
        self.updates = updates
        self.params = {n: p for n, p in model.named_parameters() if p.is_floating_point()}
        self.average = {n: p.detach().float().clone() for n, p in self.params.items()}  # same layout as p

    def rate(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        weight = 1.0 - self.rate()
        for name, p in self.params.items():
            self.average[name].lerp_(p.detach().float(), weight)
        self.updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """The model's state dict with the averages in place of its parameters (a loadable set of
        weights: the run's weights when EMA is on), as CPU copies in the parameters' dtypes."""
        out = {}
        for name, value in self.model.state_dict().items():
            source = self.average[name].to(value.dtype) if name in self.average else value.detach()
            out[name] = source.to("cpu", copy=True, memory_format=torch.contiguous_format)
        return out

    def load(self, tensors: dict[str, Tensor], where: str) -> None:
        """Restore the averages from :meth:`state_dict`'s tensors (``where``: the file, for errors)."""
        missing = sorted(set(self.average) - set(tensors))
        if missing:
            raise LatentlabError(f"{where}: no average for parameter '{missing[0]}'")
        for name, avg in self.average.items():
            if tensors[name].shape != avg.shape:
                raise LatentlabError(f"{where}: average of '{name}' has shape {tuple(tensors[name].shape)}, "
                                     f"expected {tuple(avg.shape)}")
            avg.copy_(tensors[name])

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the averages inside the block, its own weights again after it."""
        with torch.no_grad():
            saved = {name: p.detach().clone() for name, p in self.params.items()}
            for name, p in self.params.items():
                p.copy_(self.average[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(saved[name])
