"""What ``latentlab score`` and ``latentlab evaluate`` do, as plain functions over a run.

* :func:`score_run` and :func:`evaluate_run` are the two commands, one call each: build the
  detector from a run, check the score before any data is read, fit it on the run's normal
  images (:func:`fit_images`) and write the outputs (refusing existing ones unless ``overwrite``).
* :func:`write_scores` streams the scores of a (maybe memory-mapped, large) set into the
  course's Kaggle file, ``ID,score`` with IDs from 0, written atomically.
* :func:`evaluate` computes ROC AUC and PR AUC against 0/1 labels and writes the ROC curve, a
  histogram of normal vs anomalous scores with the threshold, and the k most and least
  anomalous images with their reconstructions and per-pixel error maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentlab.anomaly.detector import ReconstructionDetector, as_images
from latentlab.anomaly.metrics import (
    Evaluation,
    check_contamination,
    check_labels,
    data_columns,
    evaluate_scores,
    labels_from,
)
from latentlab.anomaly.scores import DEFAULT_PARTS, needs_stats, stream_scores
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError
from latentlab.io import atomic_path
from latentlab.outputs import refuse_existing
from latentlab.runs import Run

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
    paths = figure_paths(out_dir, prefix)
    plot_roc(scores, y, paths[0], title=f"{detector.score}: ROC AUC {result.roc_auc:.4f}")
    plot_histogram(scores, y, detector.threshold_, paths[1], score_name=detector.score)
    order = np.argsort(-scores, kind="stable")
    k = min(k, len(images))
    for rows, path, what in ((order[:k], paths[2], "most anomalous"), (order[::-1][:k], paths[3], "least anomalous")):
        x, x_hat, maps = _extremes(detector, images, rows)
        titles = [f"#{r} {'anom' if y[r] else 'norm'}\n{scores[r]:.4g}" for r in rows]
        plot_extremes(x, x_hat, maps, titles, path, suptitle=f"{k} {what} ({detector.score})")
    return EvaluateResult(result, scores, paths)


def figure_paths(out_dir: Path, prefix: str = "") -> list[Path]:
    """The figures :func:`evaluate` writes: ``out_dir/<prefix><name>`` for each of :data:`FIGURES`."""
    return [Path(out_dir) / f"{prefix}{name}" for name in FIGURES]


# ---------------------------------------------------------------- the two commands


def fit_images(run: Run, train_data: str | None = None, train_where: str | None = None,
               fit_limit: int | None = 5000) -> ImageSet:
    """The normal images to fit on: the run's training data (or ``train_data``), the rows that
    match the filter ``train_where`` (e.g. ``label==3``), at most ``fit_limit`` of them."""
    from latentlab.latent.where import select

    data = run.data(train_data)
    rows = np.arange(len(data)) if train_where is None else select(train_where, data_columns(data), "--train-where")
    return data.subset(fit_rows(rows, fit_limit))  # a PreparedSet, as ``data``


def _detector(run: Any, score: str, parts: Sequence[str], contamination: float, batch_size: int,
              n_components: int, progress: bool) -> ReconstructionDetector:
    """The detector over ``run``, checked: a score the model cannot give is one line before any data is read."""
    return ReconstructionDetector(run, score=score, contamination=contamination, parts=parts,
                                  batch_size=batch_size, n_components=n_components, progress=progress).check()


def _images(run: Run, data: Any) -> Any:
    return run.data(data) if data is None or isinstance(data, str) else data


def score_run(run: Any, data: Any, out: Path, *, score: str = "course", parts: Sequence[str] = DEFAULT_PARTS,
              train_data: str | None = None, train_where: str | None = None, fit_limit: int | None = 5000,
              n_components: int = 8, batch_size: int = 256, progress: bool = False,
              overwrite: bool = False) -> int:
    """``latentlab score``: write one anomaly score per image of ``data`` (a spec or a PreparedSet)
    to the CSV ``out`` (``ID,score``, higher = more anomalous); returns how many.

    ``run`` is a run folder, a Run or a model. Latent and combined scores are first fitted on
    :func:`fit_images`. An existing ``out`` is refused unless ``overwrite``.
    """
    refuse_existing([out], overwrite)
    det = _detector(run, score, parts, 0.05, batch_size, n_components, progress)
    images = _images(det.run, data)
    if needs_stats(score):
        det.fit(fit_images(det.run, train_data, train_where, fit_limit))
    return write_scores(det, images, out)


def evaluate_run(run: Any, data: Any, labels: str | np.ndarray, out_dir: Path, *, score: str = "mse",
                 parts: Sequence[str] = DEFAULT_PARTS, train_data: str | None = None,
                 train_where: str | None = None, fit_limit: int | None = 5000, contamination: float = 0.05,
                 k: int = 8, prefix: str = "", n_components: int = 8, batch_size: int = 256,
                 progress: bool = False, overwrite: bool = False) -> EvaluateResult:
    """``latentlab evaluate``: fit the detector on :func:`fit_images` (the threshold is the
    ``1 - contamination`` quantile of their scores), score ``data`` and compare with ``labels``
    (0/1 per image, 1 = anomaly: an array, a .npy/.csv/.txt file or a filter such as ``label!=3``);
    writes :func:`figure_paths` (refused when they exist, unless ``overwrite``)."""
    refuse_existing(figure_paths(out_dir, prefix), overwrite)
    check_contamination(contamination)
    det = _detector(run, score, parts, contamination, batch_size, n_components, progress)
    test = _images(det.run, data)
    y = labels_from(labels, test) if isinstance(labels, str) else labels
    y = check_labels(y, len(test), f"--labels {labels}" if isinstance(labels, str) else "labels")
    det.fit(fit_images(det.run, train_data, train_where, fit_limit))
    return evaluate(det, test, y, out_dir, k=k, prefix=prefix)
