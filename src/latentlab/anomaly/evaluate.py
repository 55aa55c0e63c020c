"""What ``latentlab score`` and ``latentlab evaluate`` do, as plain functions over a run.

* :func:`write_scores` streams the scores of a (maybe memory-mapped, large) set into the
  course's Kaggle file, ``ID,score`` with IDs from 0, written atomically.
* :func:`evaluate` computes ROC AUC and PR AUC against 0/1 labels and writes the ROC curve, a
  histogram of normal vs anomalous scores with the threshold, and the k most and least
  anomalous images with their reconstructions and per-pixel error maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentlab.anomaly.detector import ReconstructionDetector, as_images
from latentlab.anomaly.metrics import Evaluation, check_labels, evaluate_scores
from latentlab.anomaly.scores import stream_scores
from latentlab.errors import LatentlabError
from latentlab.io import atomic_path

FIGURES = ("roc.png", "histogram.png", "most_anomalous.png", "least_anomalous.png")


def fit_rows(rows: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of ``rows`` (a seeded random choice, sorted for sequential reads)."""
    if limit is not None and limit < 2:
        raise LatentlabError(f"--fit-limit {limit}: expected at least 2 images")
    if limit is None or len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


def write_scores(detector: ReconstructionDetector, images: Any, out: Path) -> int:
    """Stream ``ID,score`` rows (IDs from 0, full float precision) into ``out`` atomically."""
    n = 0
    fitted = hasattr(detector, "stats_")
    stats = detector.stats_ if fitted else None
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fp:
        fp.write("ID,score\n")
        for chunk in stream_scores(detector.model, as_images(images), detector.batch_spec, detector.score,
                                   parts=detector.parts, batch_size=detector.batch_size, stats=stats,
                                   samples=detector.samples, progress=detector.progress):
            if not np.isfinite(chunk).all():
                raise LatentlabError(f"scores: image {n + int(np.argmin(np.isfinite(chunk)))} gave a "
                                     f"non-finite score; {out} was not written")
            fp.write("".join(f"{n + i},{float(v)!r}\n" for i, v in enumerate(chunk)))
            n += len(chunk)
    return n


@dataclass
class EvaluateResult:
    evaluation: Evaluation
    scores: np.ndarray
    files: list[Path]


@torch.no_grad()
def _extremes(detector: ReconstructionDetector, images: Any, rows: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from latentlab.anomaly.scores import error_map
    from latentlab.data.batches import to_uint8
    from latentlab.data.rule import model_inputs

    model = detector.model.eval()
    x = model_inputs(detector.batch_spec, images, rows, device=model.device)
    x_hat = model.decode(model.embed(x))
    vr = detector.batch_spec.value_range
    return to_uint8(x, vr), to_uint8(x_hat, vr), error_map(x, x_hat).cpu().numpy()


def evaluate(detector: ReconstructionDetector, images: Any, labels: np.ndarray, out_dir: Path,
             k: int = 8, prefix: str = "") -> EvaluateResult:
    """Score ``images`` (a PreparedSet or uint8 NHWC), compare with ``labels`` (1 = anomaly), write
    the figures."""
    from latentlab.anomaly.figures import plot_extremes, plot_histogram, plot_roc

    y = check_labels(labels, len(images))
    if k < 1:
        raise LatentlabError(f"--k {k}: expected a positive integer")
    scores = detector.decision_function(images)
    result = evaluate_scores(scores, y, detector.threshold_)
    paths = [out_dir / f"{prefix}{name}" for name in FIGURES]
    plot_roc(scores, y, paths[0], title=f"{detector.score}: ROC AUC {result.roc_auc:.4f}")
    plot_histogram(scores, y, detector.threshold_, paths[1], score_name=detector.score)
    order = np.argsort(-scores, kind="stable")
    k = min(k, len(images))
    for rows, path, what in ((order[:k], paths[2], "most anomalous"), (order[::-1][:k], paths[3], "least anomalous")):
        x, x_hat, maps = _extremes(detector, images, rows)
        titles = [f"#{r} {'anom' if y[r] else 'norm'}\n{scores[r]:.4g}" for r in rows]
        plot_extremes(x, x_hat, maps, titles, path, suptitle=f"{k} {what} ({detector.score})")
    return EvaluateResult(result, scores, paths)


def check_outputs(paths: list[Path], overwrite: bool) -> None:
    """Refuse existing outputs (unless ``overwrite``) before any work is done."""
    for path in paths:
        if path.exists() and (path.is_dir() or not overwrite):
            what = "is a folder" if path.is_dir() else "exists; pass --overwrite to replace it"
            raise LatentlabError(f"{path}: {what}")

