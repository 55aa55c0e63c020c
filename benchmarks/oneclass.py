"""One-class MNIST benchmark: the 10-class protocol of Ruff et al. (ICML 2018) with the fixed config.

For each digit k: train the model of ``latentlab/configs/oneclass.json`` on the training images
of k only, score all 10,000 test images, anomalies = every other digit, ROC AUC. Prints a
Markdown table of the per-class ROC AUC (the configured score and each of its parts alone)
beside the published one-class Deep SVDD and DCAE numbers (Ruff et al. 2018, Table 1), the
mean, and the time: wall clock, this process's CPU seconds, and the load average (the machine
may be shared; CPU seconds / threads is what an unloaded machine would need at best).

    python benchmarks/oneclass.py                       # all 10 classes, 2 worker processes
    python benchmarks/oneclass.py --normal 2,8 --epochs 3 --workers 1 --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_line

from latentlab.anomaly.oneclass import PUBLISHED, ClassResult, load_config, run_oneclass

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"


class LoadSampler:
    """Samples the 1-minute load average every few seconds while the benchmark runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        s = self.samples or [os.getloadavg()[0]]
        return f"1-min load average during the run: mean {sum(s) / len(s):.1f}, min {min(s):.1f}, max {max(s):.1f}"


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def table(results: list[ClassResult], score: str) -> str:
    parts = list(results[0].part_auc)
    head = ["normal", f"latentlab ({score})", *[f"{p} alone" for p in parts], *PUBLISHED]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [str(r.normal), f"**{100 * r.roc_auc:.1f}**", *[f"{100 * r.part_auc[p]:.1f}" for p in parts],
               *[f"{pub[r.normal]:.1f}" for pub in PUBLISHED.values()]]
        lines.append("| " + " | ".join(row) + " |")
    n = len(results)
    mean = [f"**{100 * sum(r.roc_auc for r in results) / n:.1f}**",
            *[f"{100 * sum(r.part_auc[p] for r in results) / n:.1f}" for p in parts],
            *[f"{sum(pub[r.normal] for r in results) / n:.1f}" for pub in PUBLISHED.values()]]
    lines.append("| mean | " + " | ".join(mean) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder of the MNIST IDX files")
    parser.add_argument("--normal", default="all", help="all, or class ids like 2,8")
    parser.add_argument("--config", default=None, help="protocol config (default: the package's oneclass.json)")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs (not the protocol)")
    parser.add_argument("--seed", type=int, default=None, help="override the config's training seed")
    parser.add_argument("--workers", type=int, default=2, help="classes trained at once (one thread each)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads when --workers 1")
    parser.add_argument("--out", default=None, help="keep the run folders here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if args.seed is not None:
        config = dataclasses.replace(config, train={**config.train, "seed": args.seed})
    detail = {"combined": f" ({', '.join(config.parts)})", "gmm": f" ({config.components} components)"}
    print(f"config: {config.source}; model {config.model}; train {config.train}; "
          f"score {config.score}{detail.get(config.score, '')}", flush=True)
    print(f"start: {machine_line()}", flush=True)
    t0, c0 = time.perf_counter(), cpu_seconds()

    def show(r: ClassResult) -> None:
        alone = ", ".join(f"{k} {v:.4f}" for k, v in r.part_auc.items())
        print(f"class {r.normal}: ROC AUC {r.roc_auc:.4f} ({alone}); train {r.train_seconds:.1f}s, "
              f"score {r.score_seconds:.1f}s, cpu {r.cpu_seconds:.1f}s; elapsed {time.perf_counter() - t0:.0f}s",
              flush=True)

    with LoadSampler() as load:
        results = run_oneclass(f"idx:{args.data}", args.normal, config, Path(args.out) if args.out else None,
                               epochs=args.epochs, workers=args.workers, on_result=show)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    cores = args.workers if args.workers > 1 else args.threads
    print()
    print(table(results, config.score))
    print()
    how = f"{args.workers} worker processes x 1 thread" if args.workers > 1 else f"1 process x {args.threads} threads"
    print(f"{len(results)} classes trained and scored in {wall:.0f} s wall clock ({wall / 60:.1f} min), {how}; "
          f"CPU {cpu:.0f} s in all (CPU / {cores} cores = {cpu / cores / 60:.1f} min: about the wall clock on "
          f"{cores} free cores while all stay busy)")
    print(load.summary())
    print(f"end: {machine_line()}")


if __name__ == "__main__":
    main()
