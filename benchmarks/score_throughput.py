"""Scoring throughput: anomaly scores (per-image reconstruction error) for a whole uint8 set.

* the reference: inference as the course sample code (ML2022 HW8) writes it -- the same
  per-image Dataset as for training (``benchmarks/common.py``), a DataLoader in order,
  ``model.eval()``, ``torch.no_grad()``, ``nn.MSELoss(reduction="none")`` summed per image,
  ``torch.cat`` and ``sqrt`` at the end;
* latentlab: :func:`latentlab.anomaly.scores.score_dataset` (kind ``mse``) on the same model,
  data and batch size -- what ``latentlab score`` runs.

Each side runs in a fresh Python process (the reference with the C library's own malloc
settings), scores the set once to warm up, then ``--passes`` times, timed, and keeps the best
pass. It prints images/s (median and best of ``--trials``, interleaved), the ratio, and the
fraction of the float32 / bfloat16 matmul limits (forward FLOPs per image, ``2 * multiply-adds``).

    python benchmarks/score_throughput.py
    python benchmarks/score_throughput.py --models hw8-fcn --images 1024 --trials 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CourseDataset,
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
from latentlab.anomaly.scores import score_dataset
from latentlab.data.batches import BatchSpec
from latentlab.models.presets import preset_config
from latentlab.models.registry import build


def course_scores(model: nn.Module, images: np.ndarray, batch_size: int, device: str) -> np.ndarray:
    loader = DataLoader(CourseDataset(images), sampler=SequentialSampler(images), batch_size=batch_size)
    eval_loss = nn.MSELoss(reduction="none")
    model.eval()
    anomality = []
    with torch.no_grad():
        for data in loader:
            img = data.float().to(device)
            output = model(img).x_hat
            anomality.append(eval_loss(output, img).sum([1, 2, 3]))
    return torch.sqrt(torch.cat(anomality, dim=0)).cpu().numpy()


def timed(fn, device: str) -> float:  # type: ignore[no-untyped-def]
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def make_model(name: str, device: str) -> nn.Module:
    torch.manual_seed(0)
    return build(preset_config(name)).to(device).eval()


def worker(args: argparse.Namespace) -> None:
    """One side's best rate over ``--passes`` timed passes in this fresh process (the matmul rate
    is a best of several runs too); JSON on the last line."""
    model = make_model(args.models, args.device)
    images = synthetic_images(args.images)
    if args.worker == "reference":
        def run() -> np.ndarray:
            return course_scores(model, images, args.batch_size, args.device)
    else:
        allocator.keep_freed_memory()  # as the `latentlab` entry point does

        def run() -> np.ndarray:
            return score_dataset(model, images, BatchSpec(), "mse", batch_size=args.batch_size)
    scores = run()  # warm-up
    seconds = min(timed(run, args.device) for _ in range(args.passes))
    if args.worker == "reference":
        assert not allocator.tuned(), "the reference must run with the C library's own malloc settings"
    print(json.dumps({"rate": len(images) / seconds, "scores": scores[:64].tolist()}))


def measure(side: str, name: str, args: argparse.Namespace) -> tuple[float, np.ndarray]:
    cmd = ["--worker", side, "--models", name, "--images", str(args.images),
           "--batch-size", str(args.batch_size), "--device", args.device, "--threads", str(args.threads),
           "--passes", str(args.passes)]
    result = child_result(__file__, cmd)
    return result["rate"], np.asarray(result["scores"])


def bench_model(name: str, args: argparse.Namespace, limits: dict[str, float]) -> None:
    model = make_model(name, "cpu")
    macs = macs_per_image(model, tuple(model.config.in_shape))
    flops = 2 * macs  # forward only
    print(f"\n## {name}: {macs / 1e6:.2f} M multiply-adds, {flops / 1e6:.1f} MFLOP per image (forward); "
          "matmul limit " + ", ".join(f"{dt} {fmt_rate(r / flops)} images/s" for dt, r in limits.items()))
    pixels = int(np.prod(model.config.in_shape))
    ref, ours = [], []
    for trial in range(args.trials):
        rate, ref_scores = measure("reference", name, args)
        ref.append(rate)
        rate, our_scores = measure("latentlab", name, args)
        ours.append(rate)
        # the same ranking: course = sqrt(sum of squares), ours = mean of squares
        assert np.allclose(ref_scores**2 / pixels, our_scores, rtol=1e-3, atol=1e-7)
        print(f"  trial {trial + 1}: reference {fmt_rate(ref[-1])}, latentlab {fmt_rate(ours[-1])} images/s"
              f"  [{machine_line()}]", flush=True)
    print(f"\n| {name}, batch {args.batch_size} | images/s median (best) | x reference | of float32 limit "
          "| of bf16 limit |\n| --- | --- | --- | --- | --- |")
    for label, rates in (("course-style reference", ref), ("latentlab score_dataset", ours)):
        rate = median(rates)
        print(f"| {label} | {fmt_rate(rate)} ({fmt_rate(max(rates))}) | {rate / median(ref):.2f} "
              f"| {rate * flops / limits['float32']:.0%} | {rate * flops / limits['bfloat16']:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="fcn-1024,hw8-fcn,hw8-conv")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--trials", type=int, default=3, help="interleaved processes of each side")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the set in each process")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one side, in a child process
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker(args)
        return
    print(f"# scoring throughput, {args.images} images, batch {args.batch_size}, {args.device}\n"
          f"{uptime()}\n{machine_line()}")
    limits = {"float32": matmul_rate(torch.float32, device=args.device),
              "bfloat16": matmul_rate(torch.bfloat16, device=args.device)}
    print("matmul rate: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in limits.items()))
    for name in args.models.split(","):
        bench_model(name, args, limits)
    print(f"\n{uptime()}")


if __name__ == "__main__":
    main()
