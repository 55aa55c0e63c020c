"""Training throughput: latentlab's trainer against the course-style loop, and against the matmul limit.

For each model (``fcn-1024``, ``hw8-fcn``, ``hw8-conv`` by default) on 64x64x3 uint8 data:

* the reference: the loop as the course sample code writes it (``benchmarks/common.py``);
* latentlab: :class:`latentlab.train.trainer.Trainer` on the same model, data and batch size,
  once per ``--precision``.

Every measurement runs in a fresh Python process, as a user's script or ``latentlab train``
would (the reference with the C library's own malloc settings: :mod:`latentlab.allocator` tunes
only the processes that use latentlab's trainer). It prints images/s (median and best of
``--trials``, the runs interleaved so that a change in the machine's load hits both sides),
the ratio to the reference, the fraction of the float32 and bfloat16 matmul limits (the model's
forward + backward FLOPs per image, ``6 * multiply-adds``, against the matmul rates measured
first), and batch preparation as a fraction of step time.
With bf16-mixed among the precisions it also compares the training loss after the same number
of steps with float32's (same initial weights, same batches of generated faces), at the course's
learning rate 1e-3 and at 1e-4: at 1e-3 fcn-1024's loss first rises for tens of steps (Adam's
first steps are too large for a 12288-wide layer), and in that unstable stretch any change in
rounding shows as a different trajectory; 1e-4 trains smoothly and isolates the precision.

    python benchmarks/train_throughput.py                       # everything, ~10 min on 2 quiet cores
    python benchmarks/train_throughput.py --models hw8-fcn --steps 5 --trials 1 --loss-steps 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CourseLoop,
    child_result,
    fmt_rate,
    machine_line,
    macs_per_image,
    matmul_rate,
    median,
    synthetic_images,
    uptime,
)

from latentlab import allocator
from latentlab.data.batches import BatchSpec
from latentlab.losses import model_loss
from latentlab.models.presets import preset_config
from latentlab.models.registry import build
from latentlab.train.batches import ImageBatches
from latentlab.train.trainer import Callback, TrainConfig, Trainer


class TimedBatches(ImageBatches):
    """ImageBatches that records how long each batch took to make (the trainer waits for it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prep_seconds: list[float] = []

    def epoch(self, *args: Any, **kwargs: Any) -> Any:
        batches = super().epoch(*args, **kwargs)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            self.prep_seconds.append(time.perf_counter() - t0)
            yield batch


class StepClock(Callback):
    """Time at the end of every step, and every step's loss."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.losses: list[float] = []

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        self.times.append(time.perf_counter())
        self.losses.append(terms["loss"])


def build_model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build(preset_config(name))


def latentlab_run(name: str, images: np.ndarray, batch_size: int, precision: str, accelerator: str,
                  warmup: int, seed: int = 0, lr: float = 1e-3, epochs: int = 1) -> tuple[float, float, list[float]]:
    """(images/s over the steps after ``warmup``, batch preparation / step time, per-step losses)."""
    allocator.keep_freed_memory()  # as the `latentlab` entry point does (the reference keeps the C library's malloc)
    model = build_model(name, seed)
    clock = StepClock()
    config = TrainConfig(epochs=epochs, batch_size=batch_size, precision=precision, accelerator=accelerator,
                         val_fraction=0.0, seed=seed, lr=lr)
    batches = TimedBatches(images, np.arange(len(images)), batch_size, BatchSpec(), seed=seed)
    Trainer(config, callbacks=[clock]).fit(model, model_loss, batches)
    steps = len(clock.times) - warmup
    seconds = clock.times[-1] - clock.times[warmup - 1]
    prep = sum(batches.prep_seconds[warmup:])
    return steps * batch_size / seconds, prep / seconds, clock.losses


def reference_run(name: str, images: np.ndarray, batch_size: int, steps: int, warmup: int,
                  device: str) -> float:
    loop = CourseLoop(build_model(name), images, batch_size, device)
    for _ in range(warmup):
        loop.step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loop.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


def worker(args: argparse.Namespace) -> None:
    """One measurement in this fresh process; prints it as JSON on the last line."""
    images = synthetic_images(args.batch_size * (args.steps + args.warmup))
    if args.worker == "reference":
        rate, prep = reference_run(args.models, images, args.batch_size, args.steps, args.warmup, args.device), 0.0
        assert not allocator.tuned(), "the reference must run with the C library's own malloc settings"
    else:
        rate, prep, _ = latentlab_run(args.models, images, args.batch_size, args.worker, args.device, args.warmup)
    print(json.dumps({"rate": rate, "prep": prep}))


def measure(side: str, name: str, args: argparse.Namespace) -> tuple[float, float]:
    """(images/s, batch prep / step) of ``side`` (reference or a precision) in a fresh process,
    as a user's ``python train.py`` or ``latentlab train`` would run it."""
    cmd = ["--worker", side, "--models", name, "--batch-size", str(args.batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device,
           "--threads", str(args.threads)]
    result = child_result(__file__, cmd)
    return result["rate"], result["prep"]


def bench_model(name: str, args: argparse.Namespace, limits: dict[str, float]) -> None:
    model = build_model(name)
    macs = macs_per_image(model, tuple(model.config.in_shape))
    flops = 6 * macs  # forward + backward
    n_params = sum(p.numel() for p in model.parameters())
    del model
    print(f"\n## {name}: {n_params:,} parameters, {macs / 1e6:.2f} M multiply-adds per image, "
          f"{flops / 1e6:.1f} MFLOP per image forward + backward")
    print("matmul limit for this model: " + ", ".join(
        f"{dt} {fmt_rate(rate / flops)} images/s" for dt, rate in limits.items()))
    ref: list[float] = []
    ours: dict[str, list[tuple[float, float]]] = {p: [] for p in args.precisions}
    for trial in range(args.trials):
        ref.append(measure("reference", name, args)[0])
        for precision in args.precisions:
            ours[precision].append(measure(precision, name, args))
        print(f"  trial {trial + 1}: reference {fmt_rate(ref[-1])}, " + ", ".join(
            f"{p} {fmt_rate(v[-1][0])}" for p, v in ours.items()) + f"  [{machine_line()}]", flush=True)
    ref_med = median(ref)
    print(f"\n| {name} | images/s median (best) | x reference | of float32 limit | of bf16 limit "
          f"| batch prep / step |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| course-style reference | {fmt_rate(ref_med)} ({fmt_rate(max(ref))}) | 1.00 "
          f"| {ref_med * flops / limits['float32']:.0%} | {ref_med * flops / limits['bfloat16']:.0%} | |")
    for precision, runs in ours.items():
        rate = median([r for r, _ in runs])
        prep = median([p for _, p in runs])
        print(f"| latentlab {precision} | {fmt_rate(rate)} ({fmt_rate(max(r for r, _ in runs))}) "
              f"| {rate / ref_med:.2f} | {rate * flops / limits['float32']:.0%} "
              f"| {rate * flops / limits['bfloat16']:.0%} | {prep:.1%} |")


def loss_check(name: str, args: argparse.Namespace) -> None:
    """Training loss after the same steps, float32 vs bf16-mixed, on generated faces
    (``faces:N``: image statistics like the course's, unlike the blobs), for ``--loss-seeds``
    seeds: each seed gives both precisions the same initial weights and batches. Two seeds of
    the same precision show how far apart runs land anyway, the yardstick for the precision's
    difference."""
    from latentlab.data.sources import load_source

    images = load_source(f"faces:{args.batch_size * args.loss_steps}").images
    tail = max(1, min(10, args.loss_steps // 5))
    for lr in args.loss_lrs:
        final: dict[str, list[float]] = {"32": [], "bf16-mixed": []}
        for seed in range(args.loss_seeds):
            for precision in final:
                _, _, losses = latentlab_run(name, images, args.batch_size, precision, args.device, warmup=1,
                                             lr=lr, seed=seed)
                final[precision].append(float(np.mean(losses[-tail:])))
        f32, bf16 = np.array(final["32"]), np.array(final["bf16-mixed"])
        print(f"\n{name}, lr {lr:g}: training loss after {args.loss_steps} steps (mean of the last {tail}), "
              f"seeds 0-{args.loss_seeds - 1}:")
        for seed in range(args.loss_seeds):
            print(f"  seed {seed}: float32 {f32[seed]:.5f}, bf16-mixed {bf16[seed]:.5f} "
                  f"({bf16[seed] / f32[seed] - 1:+.2%})")
        print(f"  mean over seeds: float32 {f32.mean():.5f} (seeds span {f32.min():.5f}-{f32.max():.5f}), "
              f"bf16-mixed {bf16.mean():.5f} ({bf16.mean() / f32.mean() - 1:+.2%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="fcn-1024,hw8-fcn,hw8-conv")
    parser.add_argument("--precisions", default="32,bf16-mixed")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--trials", type=int, default=3, help="interleaved runs of each side")
    parser.add_argument("--loss-steps", type=int, default=200, help="steps of the bf16 loss check (0: skip)")
    parser.add_argument("--loss-models", default="fcn-1024")
    parser.add_argument("--loss-lrs", default="1e-3,1e-4", help="learning rates of the loss check")
    parser.add_argument("--loss-seeds", type=int, default=3, help="seeds of the loss check")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one measurement, in a child process
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker(args)
        return
    args.precisions = args.precisions.split(",")
    args.loss_lrs = [float(v) for v in args.loss_lrs.split(",")]
    print(f"# training throughput, batch {args.batch_size}, {args.device}\n{uptime()}\n{machine_line()}")
    limits = {"float32": matmul_rate(torch.float32, device=args.device),
              "bfloat16": matmul_rate(torch.bfloat16, device=args.device)}
    print("matmul rate: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in limits.items()))
    for name in args.models.split(","):
        bench_model(name, args, limits)
    if args.loss_steps and "bf16-mixed" in args.precisions:
        for name in args.loss_models.split(","):
            loss_check(name, args)
    print(f"\n{uptime()}")


if __name__ == "__main__":
    main()
