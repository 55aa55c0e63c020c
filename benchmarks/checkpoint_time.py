"""What per-epoch checkpoints cost a training run: fcn-1024 on 10,000 generated 64x64x3 images.

Each trial is two fresh processes, one after the other: the trainer with a checkpoint folder
(a checkpoint at every epoch's end: weights, optimizer state, the best weights as a link, all
fsynced, written on the checkpoint thread) and the same training without one. It reports

* the training thread's time in each checkpoint (``Trainer._checkpoint``: copying the weights
  and optimizer state for the writer thread, and waiting for the previous write if it is not
  done) and in each epoch-end copy of the best weights, against the epoch's time: the goal is at
  most 5%;
* the wait for the last write when training ends;
* the whole cost: the time of ``fit`` with checkpoints minus without, per epoch, which also
  counts the writer thread taking CPU time from the steps (2 cores here).

    python benchmarks/checkpoint_time.py                 # 3 trials of 3 epochs, ~8 min on 2 cores
    python benchmarks/checkpoint_time.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import child_result, synthetic_images


def worker(args: argparse.Namespace) -> None:
    from latentlab import allocator
    from latentlab.data.batches import BatchSpec
    from latentlab.losses import model_loss
    from latentlab.models.presets import preset_config
    from latentlab.models.registry import build
    from latentlab.train.batches import ImageBatches
    from latentlab.train.trainer import Callback, TrainConfig, Trainer

    allocator.keep_freed_memory()  # as the `latentlab` entry point does
    images = np.load(args.data, mmap_mode="r")

    class EpochClock(Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
            self.seconds.append(row["seconds"])

    clock = EpochClock()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp) / "checkpoint" if args.worker == "checkpoints" else None
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, val_fraction=0.0,
                             accelerator=args.device)
        trainer = Trainer(config, callbacks=[clock], checkpoint_dir=folder)
        spent: dict[str, list[float]] = {"checkpoint": [], "best_copy": [], "final_wait": []}

        def timed(name: str, fn: Any) -> Any:
            def wrapper(*a: Any, **k: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    spent[name].append(time.perf_counter() - t0)
            return wrapper

        trainer._checkpoint = timed("checkpoint", trainer._checkpoint)  # type: ignore[method-assign]
        if hasattr(trainer, "_validated_weights"):  # the copy of the best weights at an epoch's end
            trainer._validated_weights = timed("best_copy", trainer._validated_weights)  # type: ignore[method-assign]
        if trainer.writer is not None:
            save, wait = trainer.writer.save, trainer.writer.wait
            inside_save = {"on": False}

            def save_(*a: Any, **k: Any) -> Any:
                inside_save["on"] = True
                try:
                    return save(*a, **k)
                finally:
                    inside_save["on"] = False

            def wait_(*a: Any, **k: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return wait(*a, **k)
                finally:
                    if not inside_save["on"]:
                        spent["final_wait"].append(time.perf_counter() - t0)

            trainer.writer.save, trainer.writer.wait = save_, wait_  # type: ignore[method-assign]
        import torch

        torch.manual_seed(0)
        model = build(preset_config("fcn-1024"))
        batches = ImageBatches(images, np.arange(len(images)), args.batch_size, BatchSpec(), seed=0)
        t0 = time.perf_counter()
        trainer.fit(model, model_loss, batches)
        fit_seconds = time.perf_counter() - t0
    print(json.dumps({"fit": fit_seconds, "epochs": clock.seconds, **spent}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tmp", default=None, help="where the checkpoints are written (default: the system's)")
    parser.add_argument("--worker", choices=["checkpoints", "none"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "images.npy"
        np.save(data, synthetic_images(args.images))
        common = ["--data", str(data), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                  "--device", args.device, *(["--tmp", args.tmp] if args.tmp else [])]
        print(f"fcn-1024, {args.images} images, {args.epochs} epochs of batch {args.batch_size}, "
              f"{args.trials} trials; load {os.getloadavg()[0]:.2f} (1 min) before")
        results: dict[str, list[dict[str, Any]]] = {"checkpoints": [], "none": []}
        for trial in range(args.trials):
            for side in results:
                results[side].append(child_result(__file__, ["--worker", side, *common]))
            with_, without = results["checkpoints"][-1], results["none"][-1]
            print(f"  trial {trial + 1}: fit {with_['fit']:.1f} s with checkpoints, {without['fit']:.1f} s without; "
                  f"checkpoints on the training thread {', '.join(f'{s:.2f}' for s in with_['checkpoint'])} s; "
                  f"epochs {', '.join(f'{s:.1f}' for s in with_['epochs'])} s  [load {os.getloadavg()[0]:.2f}]",
                  flush=True)
    with_runs, without_runs = results["checkpoints"], results["none"]
    epoch = statistics.median(s for r in with_runs for s in r["epochs"])
    ckpt = statistics.median(s for r in with_runs for s in r["checkpoint"])
    best = statistics.median([s for r in with_runs for s in r["best_copy"]] or [float("nan")])
    final = statistics.median(s for r in with_runs for s in r["final_wait"])
    extra = statistics.median((w["fit"] - n["fit"]) / args.epochs for w, n in zip(with_runs, without_runs,
                                                                                       strict=True))
    print("\n| per epoch (medians) | seconds | of an epoch |")
    print("| --- | --- | --- |")
    print(f"| an epoch (training, with checkpoints) | {epoch:.2f} | |")
    print(f"| **checkpoint, on the training thread** | **{ckpt:.3f}** | **{ckpt / epoch:.1%}** |")
    print(f"| best-weights copy at the epoch's end (also without checkpoints) | {best:.3f} | {best / epoch:.1%} |")
    print(f"| wait for the last write when training ends (once a run) | {final:.3f} | {final / epoch:.1%} |")
    print(f"| fit with checkpoints - without, per epoch (all costs, writer thread included) | {extra:.2f} "
          f"| {extra / epoch:.1%} |")


if __name__ == "__main__":
    main()
