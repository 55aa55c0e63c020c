"""Learning-rate schedules on the CelebA subset: epochs to reach constant lr 1e-3's held-out loss (issue 17).

Trains a preset on ``celeba:...#train`` (all 4,800 images: ``--val-fraction 0``) and after every
epoch measures the loss on ``#valid`` (600 held-out faces, never trained on) with the weights
validation uses (the moving average under ``--ema``). Schedules were chosen by their ``#valid``
curves, so each epoch also records the loss on ``#test`` (600 more faces, used for nothing else):
the verdict is read there too, on data no choice was made on. Each run writes
its curve as JSON into ``--results``; ``--plot`` draws every curve found there in one figure, one
panel per preset, with the constant-lr run's final held-out loss as the line to reach.

    python benchmarks/schedules.py --preset fcn-1024 --schedule constant --epochs 30
    python benchmarks/schedules.py --preset fcn-1024 --schedule onecycle --epochs 15
    python benchmarks/schedules.py --plot

A run is named ``<preset>-<schedule>-<epochs>`` (plus ``-lr<LR>``, ``-warmup<N>``, ``-ema<D>`` when given).
Runs use one torch thread by default: on the shared 2-core machine, two threads mostly wait for
each other (see the throughput section of RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentlab.data.batches import BatchSpec
from latentlab.data.rule import load_prepared, with_source_defaults
from latentlab.models.presets import preset_config
from latentlab.train.api import train_run
from latentlab.train.batches import ImageBatches
from latentlab.train.trainer import Callback, TrainConfig, Trainer

CELEBA = "celeba:/work/shared/data/celeba_subset/celeba_aligned_6000img_200id.tar"
RESULTS = Path(__file__).with_name("results") / "schedules"
FIGURE = Path(__file__).with_name("schedules.png")


class HeldOut(Callback):
    """After each epoch: the held-out loss of the weights validation uses; the rows as JSON."""

    def __init__(self, batches: ImageBatches, test: ImageBatches, path: Path, meta: dict[str, Any]) -> None:
        self.batches, self.test, self.path, self.meta = batches, test, path, meta
        self.rows: list[dict[str, float]] = []
        self.t0 = time.perf_counter()

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        held_out = trainer.validate(self.batches)["loss"]
        test = trainer.validate(self.test)["loss"]
        self.rows.append({"epoch": row["epoch"], "step": row["step"], "train_loss": row["train_loss"],
                          "heldout_loss": held_out, "test_loss": test, "lr": row["lr"],
                          "seconds": time.perf_counter() - self.t0})
        print(f"epoch {row['epoch']}: train {row['train_loss']:.5f} held-out {held_out:.5f} test {test:.5f} "
              f"lr {row['lr']:.3g} ({self.rows[-1]['seconds']:.0f} s)", flush=True)
        self.path.write_text(json.dumps({**self.meta, "rows": self.rows}, indent=1))


def run_name(args: argparse.Namespace) -> str:
    name = f"{args.preset}-{args.schedule}-{args.epochs}"
    if args.lr != 1e-3:
        name += f"-lr{args.lr:g}"
    if args.warmup:
        name += f"-warmup{args.warmup}"
    if args.ema:
        name += f"-ema{args.ema:g}"
    if args.grad_clip:
        name += f"-clip{args.grad_clip:g}"
    if args.seed:
        name += f"-seed{args.seed}"
    return name


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    rule = with_source_defaults(BatchSpec(), CELEBA)
    train_set = load_prepared(f"{CELEBA}#train", rule)
    valid = load_prepared(f"{CELEBA}#valid", rule)
    held_out = ImageBatches(valid.images, np.arange(len(valid)), 256, valid.batch, shuffle=False,
                            equal_shards=False)
    test_set = load_prepared(f"{CELEBA}#test", rule)
    test = ImageBatches(test_set.images, np.arange(len(test_set)), 256, test_set.batch, shuffle=False,
                        equal_shards=False)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, val_fraction=0.0, seed=args.seed,
                      lr_schedule=args.schedule, warmup_steps=args.warmup, ema=args.ema,
                      grad_clip=args.grad_clip)
    name = run_name(args)
    args.results.mkdir(parents=True, exist_ok=True)
    meta = {"name": name, "preset": args.preset, "train": asdict(cfg),
            "threads": args.threads, "torch": torch.__version__}
    hook = HeldOut(held_out, test, args.results / f"{name}.json", meta)
    with tempfile.TemporaryDirectory() as tmp:
        model = preset_config(args.preset, in_shape=train_set.input_shape)
        train_run(model, train_set, rule, cfg, Path(tmp) / "run", progress=False, callbacks=[hook])


def epochs_to_reach(rows: list[dict[str, float]], target: float) -> float:
    """The first epoch whose held-out loss is at or below ``target`` (inf: never)."""
    return next((r["epoch"] for r in rows if r["heldout_loss"] <= target), math.inf)


def label(train: dict[str, Any]) -> str:
    text = f"{train['lr_schedule']}, lr {train['lr']:g}"
    if train["warmup_steps"]:
        text += f", warm-up {train['warmup_steps']}"
    if train["ema"]:
        text += f", EMA {train['ema']:g}"
    if train.get("grad_clip"):
        text += f", clip {train['grad_clip']:g}"
    if train.get("seed"):
        text += f", seed {train['seed']}"
    return text


def plot(results: Path, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    presets = sorted({r["preset"] for r in runs})
    fig, axes = plt.subplots(1, len(presets), figsize=(7.0 * len(presets), 5.0), squeeze=False)
    for ax, preset in zip(axes[0], presets, strict=True):
        mine = [r for r in runs if r["preset"] == preset]
        constants = {r["train"]["seed"]: r for r in mine if r["train"]["lr_schedule"] == "constant"}
        baseline = constants.get(0)
        target = baseline["rows"][-1]["heldout_loss"] if baseline else None
        for r in mine:
            xs, ys = [row["epoch"] for row in r["rows"]], [row["heldout_loss"] for row in r["rows"]]
            text = f"{label(r['train'])} ({len(xs)} ep.)"
            own = constants.get(r["train"]["seed"], baseline)  # the line of the constant run with the same seed
            if own is not None and r["train"]["lr_schedule"] != "constant":
                reach = epochs_to_reach(r["rows"], own["rows"][-1]["heldout_loss"])
                seed = f" (seed {r['train']['seed']}'s)" if r["train"]["seed"] else ""
                text += f": line{seed} at epoch {reach:g}" if math.isfinite(reach) else f": line{seed} not reached"
            style = "--" if r["train"]["seed"] else "-"
            ax.plot(xs, ys, style + "o", markersize=2, linewidth=2.0 if r is baseline else 1.2, label=text)
        if target is not None:
            ax.axhline(target, color="black", linestyle=":", linewidth=1,
                       label=f"constant's last (seed 0): {target:.4f}")
            lowest = min(row["heldout_loss"] for r in mine for row in r["rows"])
            ax.set_ylim(0.95 * min(lowest, target), 3.5 * target)
        ax.set_yscale("log")
        ax.set_title(f"{preset}, CelebA 64x64: held-out (#valid) loss")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper right", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(figure, dpi=80)
    print(f"wrote {figure}")
    for r in runs:
        last = r["rows"][-1]
        print(f"{r['name']}: {len(r['rows'])} epochs, final held-out {last['heldout_loss']:.5f}, "
              f"{last['seconds']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fcn-1024")
    parser.add_argument("--schedule", default="constant")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=0, help="--warmup-steps")
    parser.add_argument("--ema", type=float, default=None)
    parser.add_argument("--grad-clip", type=float, default=None, help="--grad-clip (global norm)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--plot", action="store_true", help="draw the curves in --results into schedules.png")
    args = parser.parse_args()
    if args.plot:
        plot(args.results, FIGURE)
    else:
        train(args)


if __name__ == "__main__":
    main()
