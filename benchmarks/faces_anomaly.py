"""The face-anomaly suite: does a detector trained on real faces find images that are not normal faces?

Train on the CelebA subset's train split (4,800 images, 64x64 by the usual centred 140 crop);
normal test images = its test split (600 faces of the same 200 people, never trained on); seven
kinds of anomalies, 600 images each, every kind scored against the same 600 normal faces:

================  ===================================================================================
kind              how it is made (all 64x64 RGB uint8; seeded)
================  ===================================================================================
``mnist``         600 random MNIST test digits (``../shared/data/mnist``), 28x28 resized to 64x64
                  (bilinear, antialiased), the grey value copied to R, G and B: white strokes on black
``cartoon``       600 generated cartoon faces (``faces:600:1``, latentlab's own generator)
``crops``         not faces: from each CelebA *validation-split* original (178x218, never used for
                  training or as a normal) one 56x56 corner crop (a random one of the four corners:
                  background, hair, shoulders, clothes), resized to 64x64
``upside-down``   the 600 normal test faces flipped vertically
``noise``         the test faces with Gaussian noise, std 16 grey levels, rounded and clipped
``channel-swap``  the test faces with red and blue swapped (RGB read as BGR)
``grayscale``     the test faces in grey (ITU-R 601 luma copied to R, G and B)
================  ===================================================================================

The kinds were fixed before any model was trained, and nothing in the recipe or in the ``auto``
choice reads them or their labels (``auto`` chooses from the run's own validation faces and
pseudo-anomalies made from them: ``latentlab.anomaly.pseudo``).

For each kind the table gives the ROC AUC of: the course baseline (preset ``hw8-fcn`` trained the
course's way -- Adam lr 1e-3, MSE, batch 2,000, 50 epochs, no validation split -- scored by the
course's ``course`` score); every single score of the recipe's model; and the recipe's model with
``--score auto``.

    python benchmarks/faces_anomaly.py --out /tmp/faces-suite        # trains both models (~8 min)
    python benchmarks/faces_anomaly.py --out /tmp/faces-suite --reuse  # score existing runs again
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CELEBA_TAR = SHARED / "celeba_subset" / "celeba_aligned_6000img_200id.tar"
MNIST = SHARED / "mnist"
KINDS = ("mnist", "cartoon", "crops", "upside-down", "noise", "channel-swap", "grayscale")
N_PER_KIND = 600
NOISE_STD = 16.0  # grey levels
CORNER = 56  # side of a corner crop of a 178x218 original


def celeba_spec(split: str) -> str:
    return f"celeba:{CELEBA_TAR}#{split}"


def normal_faces() -> np.ndarray:
    """The normal test images: the test split at 64x64, uint8 (600, 64, 64, 3)."""
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import load_prepared

    return np.asarray(load_prepared(celeba_spec("test"), BatchSpec()).images)


def _mnist(n: int, rng: np.random.Generator) -> np.ndarray:
    from latentlab.data.batches import resize_uint8
    from latentlab.data.sources import load_source

    digits = load_source(f"idx:{MNIST}#test").images  # (10000, 28, 28, 1)
    rows = np.sort(rng.choice(len(digits), size=n, replace=False))
    return np.repeat(resize_uint8(np.asarray(digits[rows]), (64, 64)), 3, axis=-1)


def _crops(n: int, rng: np.random.Generator) -> np.ndarray:
    from latentlab.data.decode import Geometry
    from latentlab.data.sources import load_source

    spec = f"tar:{CELEBA_TAR}#Datasets/validation_dataset"
    corners = [(0, 0), (0, 178 - CORNER), (218 - CORNER, 0), (218 - CORNER, 178 - CORNER)]
    sets = [load_source(spec, geometry=Geometry(crop=(top, left, CORNER, CORNER), resize=(64, 64))).images
            for top, left in corners]
    rows = np.sort(rng.choice(len(sets[0]), size=min(n, len(sets[0])), replace=False))
    which = rng.integers(0, len(corners), size=len(rows))
    return np.stack([sets[c][r] for r, c in zip(rows, which, strict=True)])


def build_suite(normals: np.ndarray, n: int = N_PER_KIND, seed: int = 0) -> dict[str, np.ndarray]:
    """kind -> anomalous images, uint8 (n, 64, 64, 3); see the module docstring for how each is made."""
    from latentlab.data.sources import load_source

    rng = np.random.default_rng(seed)
    faces = normals[:n].astype(np.float32)
    luma = faces @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    noisy = faces + rng.normal(0.0, NOISE_STD, size=faces.shape).astype(np.float32)
    return {
        "mnist": _mnist(n, rng),
        "cartoon": load_source(f"faces:{n}:1").images,
        "crops": _crops(n, rng),
        "upside-down": np.ascontiguousarray(normals[:n, ::-1]),
        "noise": np.clip(np.rint(noisy), 0, 255).astype(np.uint8),
        "channel-swap": np.ascontiguousarray(normals[:n, ..., ::-1]),
        "grayscale": np.repeat(np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None], 3, axis=-1),
    }


# ---------------------------------------------------------------------------- the two models


COURSE_TRAIN = {"epochs": 50, "batch_size": 2000, "lr": 1e-3, "optimizer": "adam", "val_fraction": 0.0, "seed": 0,
                "precision": "32"}  # the course sample code: num_epochs 50, batch_size 2000, Adam lr 1e-3, MSE
SINGLE_SCORES = ("mse", "course", "ssim", "mahalanobis", "gmm", "features", "transforms", "transform-features")


def train_models(out: Path, reuse: bool, seed: int | None = None) -> dict[str, dict[str, float]]:
    """Train the course baseline and the recipe into ``out/course`` and ``out/recipe``; returns
    their training times (wall and CPU seconds, epochs). ``seed`` replaces the recipe's seeds
    (the autoencoder's and the classifier's; the course baseline keeps its own)."""
    from latentlab.anomaly.recipe import finish_run, load_recipe
    from latentlab.data.batches import BatchSpec
    from latentlab.models.presets import preset_config
    from latentlab.runs import COMPLETE
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    found = load_recipe("anomaly")
    seeds = {} if seed is None else {"seed": seed}
    transforms = {**found.transforms, **seeds}
    jobs = {
        "recipe": (found.model_config((3, 64, 64), (-1.0, 1.0)), BatchSpec(**found.rule),
                   TrainConfig(**{**found.train_overrides(), **seeds})),
        "course": (preset_config("hw8-fcn", in_shape=(3, 64, 64)), BatchSpec(), TrainConfig(**COURSE_TRAIN)),
    }
    times = {}
    for name, (model_config, rule, train) in jobs.items():
        if reuse and (out / name / COMPLETE).is_file():
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        extra = {"recipe": {"name": found.name, "transforms": transforms}} if name == "recipe" else None
        train_run(model_config, celeba_spec("train"), rule, train, out / name, overwrite=True, progress=False,
                  extra=extra)
        finish_run(out / name)  # the recipe's transform classifier, as `latentlab train --recipe` trains it
        times[name] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                       "epochs": float(train.epochs or 0)}
        print(f"trained {name}: {times[name]['wall']:.0f} s wall, {times[name]['cpu']:.0f} s CPU "
              f"({os.getloadavg()[0]:.1f} load)", flush=True)
    return times


# ---------------------------------------------------------------------------- scoring


def roc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    from latentlab.anomaly.metrics import roc_auc

    return roc_auc(np.r_[normal, anomalous], np.r_[np.zeros(len(normal)), np.ones(len(anomalous))])


def suite_aucs(run_dir: Path, score: str, normals: np.ndarray, suite: dict[str, np.ndarray],
               ) -> tuple[dict[str, float], object]:
    """ROC AUC per kind of ``score`` over the run (fitted on the run's training rows, its
    threshold from its validation rows), and the fitted detector."""
    from latentlab.anomaly.detector import ReconstructionDetector
    from latentlab.anomaly.evaluate import normal_images
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import PreparedSet
    from latentlab.runs import open_run

    run = open_run(run_dir)
    normal = normal_images(run)
    det = ReconstructionDetector(run, score=score).fit(normal.fit, held_out=normal.held_out)
    plain = BatchSpec(value_range=run.rule.value_range)  # the suite is stored at the model's 64x64 already

    def scores(images: np.ndarray) -> np.ndarray:
        return det.decision_function(PreparedSet(images=images, batch=plain))

    base = scores(normals)
    return {kind: roc(base, scores(images)) for kind, images in suite.items()}, det


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the two run folders")
    parser.add_argument("--reuse", action="store_true", help="score runs already trained in --out")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=None, help="replace the recipe's seeds (default: its own, 0)")
    args = parser.parse_args()
    if not CELEBA_TAR.is_file() or not MNIST.is_dir():
        print(f"needs {CELEBA_TAR} and {MNIST} (../shared/data)", file=sys.stderr)
        return 2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from latentlab.anomaly.auto import stored_choice

    t0 = time.perf_counter()
    times = train_models(args.out, args.reuse, args.seed)
    normals = normal_faces()
    suite = build_suite(normals)
    columns: dict[str, dict[str, float]] = {}
    columns["course baseline (hw8-fcn, course)"], _ = suite_aucs(args.out / "course", "course", normals, suite)
    for score in SINGLE_SCORES:
        columns[f"recipe: {score}"], _ = suite_aucs(args.out / "recipe", score, normals, suite)
    aucs, det = suite_aucs(args.out / "recipe", "auto", normals, suite)
    choice = stored_choice(args.out / "recipe")
    columns[f"recipe + auto ({det.choice_.name})"] = aucs  # type: ignore[attr-defined]
    print_table(columns)
    if choice is not None:
        print(f"\n{choice.sentence}")
    for name, t in times.items():
        print(f"training {name}: {t['wall']:.0f} s wall, {t['cpu']:.0f} s CPU, {t['epochs']:.0f} epochs")
    print(f"total {time.perf_counter() - t0:.0f} s; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


def print_table(columns: dict[str, dict[str, float]]) -> None:
    names = list(columns)
    kinds = list(next(iter(columns.values())))
    print("| kind | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for kind in kinds:
        print(f"| {kind} | " + " | ".join(f"{columns[n][kind]:.3f}" for n in names) + " |")
    print("| **mean** | " + " | ".join(f"**{np.mean(list(columns[n].values())):.3f}**" for n in names) + " |")
    print("| min | " + " | ".join(f"{min(columns[n].values()):.3f}" for n in names) + " |")


if __name__ == "__main__":
    sys.exit(main())
