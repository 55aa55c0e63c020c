"""What ``--deterministic`` costs: training speed with and without it, and whether two runs match.

For each preset, ``--steps`` optimizer steps of batch 128 on the CelebA subset (64x64), timed
after 3 warm-up steps, alternating plain and deterministic trials (so that a change in the
machine's load hits both); then two short deterministic runs of the same seed, compared bit for
bit. Plain runs use torch's default thread count (``--threads`` to set it).

    python benchmarks/deterministic.py                  # fcn-1024 and hw8-conv, 3 trials each
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from latentlab.data.batches import BatchSpec
from latentlab.data.rule import PreparedSet, load_prepared, with_source_defaults
from latentlab.losses import model_loss
from latentlab.models.presets import preset_config
from latentlab.models.registry import build
from latentlab.train.batches import ImageBatches
from latentlab.train.trainer import Callback, TrainConfig, Trainer

CELEBA = "celeba:/work/shared/data/celeba_subset/celeba_aligned_6000img_200id.tar#train"
WARMUP = 3


class StepClock(Callback):
    def on_fit_start(self, trainer: Trainer) -> None:
        self.ends: list[float] = []

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        self.ends.append(time.perf_counter())


def trial(preset: str, data: PreparedSet, steps: int, deterministic: bool) -> tuple[float, dict[str, torch.Tensor]]:
    """Images per second after the warm-up steps, and the final weights."""
    batches = ImageBatches(data.images, np.arange((steps + WARMUP) * 128), 128, data.batch, seed=0)
    torch.manual_seed(0)
    model = build(preset_config(preset, in_shape=data.input_shape))
    clock = StepClock()
    cfg = TrainConfig(epochs=1, val_fraction=0.0, deterministic=deterministic)
    Trainer(cfg, callbacks=[clock]).fit(model, model_loss, batches)
    timed = clock.ends[WARMUP - 1:]
    return (len(timed) - 1) * 128 / (timed[-1] - timed[0]), {k: v.clone() for k, v in model.state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="fcn-1024,hw8-conv")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_prepared(CELEBA, with_source_defaults(BatchSpec(), CELEBA))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads by default, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for preset in args.presets.split(","):
        rates: dict[bool, list[float]] = {False: [], True: []}
        weights = []
        for _ in range(args.trials):
            for deterministic in (False, True):
                rate, final = trial(preset, data, args.steps, deterministic)
                rates[deterministic].append(rate)
                if deterministic:
                    weights.append(final)
        same = all(torch.equal(weights[0][k], w[k]) for w in weights[1:] for k in w)
        plain, det = statistics.median(rates[False]), statistics.median(rates[True])
        print(f"{preset}: plain {plain:,.0f} img/s (trials {', '.join(f'{r:,.0f}' for r in rates[False])}); "
              f"deterministic {det:,.0f} img/s (trials {', '.join(f'{r:,.0f}' for r in rates[True])}): "
              f"{det / plain:.2f}x; deterministic trials bit-identical: {same}")
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
