"""What the benchmarks share: the machine's matmul rate, FLOPs per image, the course-style loop.

* :func:`matmul_rate` times square ``torch.mm`` in float32 and bfloat16 (best of a few
  sizes and repeats: the machine may be shared, and the best run is the closest to its limit).
* :func:`macs_per_image` counts the multiply-adds of one image through the model's Linear,
  Conv2d and ConvTranspose2d layers, from their shapes and (for convolutions) the output sizes
  seen by forward hooks. Forward + backward is ``6 * macs`` (2 forward, 4 backward), forward
  only ``2 * macs``.
* :class:`CourseDataset` and :func:`course_train_steps` are the reference: the training loop as
  the course sample code (ML2022 HW8) writes it -- a Dataset that converts one uint8 image to
  float and scales it to [-1, 1] in ``__getitem__``, a DataLoader, float32, ``torch.optim.Adam``
  with default settings, ``nn.MSELoss``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

# ---------------------------------------------------------------------------- the machine


def machine_line() -> str:
    """One line for the results: CPU threads, torch version and the load average right now."""
    load = os.getloadavg()
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "uptime: not available"


def child_result(script: str, args: list[str]) -> dict[str, Any]:
    """Run ``python script *args`` in a fresh process and read the JSON object on its last line
    (one measurement, untouched by what this process has loaded or tuned)."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def matmul_rate(dtype: torch.dtype, sizes: tuple[int, ...] = (1024, 2048), seconds: float = 0.5,
                repeats: int = 3, device: str = "cpu") -> float:
    """Best measured FLOP/s of a square ``torch.mm`` in ``dtype`` (2 * n^3 FLOPs per product)."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        for _ in range(2):
            a @ b
        for _ in range(repeats):
            sync(device)
            count, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                a @ b
                count += 1
            sync(device)
            best = max(best, 2 * n**3 * count / (time.perf_counter() - t0))
    return best


def sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------- FLOPs from layer shapes


def macs_per_image(model: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """Multiply-adds of one image through the model's Linear / Conv2d / ConvTranspose2d layers."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):  # every output element: in_c/groups * k * k MACs
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * module.in_channels // module.groups * k
        elif isinstance(module, nn.ConvTranspose2d):  # every input element scatters out_c * k * k
            k = module.kernel_size[0] * module.kernel_size[1]
            total += inputs[0][0].numel() * module.out_channels // module.groups * k

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *in_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


# ---------------------------------------------------------------------------- data


def synthetic_images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size, 3): smooth random blobs (learnable, unlike pure noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, 1024):
        m = min(1024, n - start)
        cx, cy, r = (rng.random((3, m, 1, 1), dtype=np.float32) * [[[[1]]], [[[1]]], [[[0.3]]]])
        colour = rng.random((m, 1, 1, 3), dtype=np.float32)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (r + 0.05) ** 2))[..., None]
        out[start:start + m] = (255 * (0.2 + 0.8 * blob * colour)).astype(np.uint8)
    return out


# ---------------------------------------------------------------------------- the course-style reference


class CourseDataset(Dataset):
    """The course's ``CustomTensorDataset``: one uint8 image -> float in [-1, 1] per ``__getitem__``."""

    def __init__(self, images: np.ndarray) -> None:
        self.tensors = torch.from_numpy(images).permute(0, 3, 1, 2)  # (N, C, H, W) uint8 view

    def __len__(self) -> int:
        return len(self.tensors)

    def __getitem__(self, index: int) -> torch.Tensor:
        x = self.tensors[index].to(torch.float32)
        return 2.0 * x / 255.0 - 1.0


def forever(loader: DataLoader) -> Iterator[torch.Tensor]:
    while True:
        yield from loader


@dataclass
class CourseLoop:
    """The course sample's training loop on ``model`` (its forward returns ``.x_hat``)."""

    model: nn.Module
    images: np.ndarray
    batch_size: int = 128
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.model.to(self.device).train()
        loader = DataLoader(CourseDataset(self.images), sampler=RandomSampler(self.images),
                            batch_size=self.batch_size, drop_last=True)
        self.batches = forever(loader)
        self.criterion = nn.MSELoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.losses: list[float] = []

    def step(self) -> None:
        img = next(self.batches).float().to(self.device)
        output = self.model(img).x_hat
        loss = self.criterion(output, img)
        self.losses.append(loss.item())
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


# ---------------------------------------------------------------------------- timing


def rate(step: Callable[[], None], steps: int, images_per_step: int, device: str = "cpu") -> float:
    """images/s of ``steps`` calls of ``step``."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * images_per_step / (time.perf_counter() - t0)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"
