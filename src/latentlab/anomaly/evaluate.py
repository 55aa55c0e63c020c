"""What ``latentlab score`` and ``latentlab evaluate`` do, as plain functions over a run.

* :func:`score_run` and :func:`evaluate_run` are the two commands, one call each: build the
  detector from a run, check the score before any data is read, resolve ``auto`` (the run's own
  choice, :mod:`latentlab.anomaly.auto`), fit it on the run's normal images
  (:func:`normal_images`: the training rows to fit on, the validation rows to set the threshold
  with) and write the outputs (refusing existing ones unless ``overwrite``).
* :func:`write_scores` streams the scores of a (maybe memory-mapped, large) set into the
  course's Kaggle file, ``ID,score`` with IDs from 0, written atomically -- and, given a
  threshold, the 0/1 predictions beside it (``ID,label``).
* :func:`evaluate` computes ROC AUC and PR AUC against 0/1 labels, precision / recall / F1 at
  the threshold set without labels and at the F1-best one, and writes the ROC curve, a histogram
  of normal vs anomalous scores with the threshold, the precision-recall trade-off against the
  threshold, and the k most and least anomalous images with their reconstructions and per-pixel
  error maps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from latentlab.anomaly.auto import AUTO, HELD_OUT_LIMIT, ScoreChoice, held_out_rows, resolve_auto
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
from latentlab.errors import LatentlabError
from latentlab.io import atomic_path
from latentlab.outputs import refuse_existing
from latentlab.runs import Run

FIGURES = ("roc.png", "histogram.png", "tradeoff.png", "most_anomalous.png", "least_anomalous.png")


def fit_rows(rows: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of ``rows`` (a seeded random choice, sorted for sequential reads)."""
    if limit is not None and limit < 2:
        raise LatentlabError(f"--fit-limit {limit}: expected at least 2 images")
    if limit is None or len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


@contextlib.contextmanager
def _maybe_open(path: Path | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fp:
        yield fp


def write_scores(detector: ReconstructionDetector, images: Any, out: Path, labels_out: Path | None = None) -> int:
    """Stream ``ID,score`` rows (IDs from 0, full float precision) into ``out`` atomically, and
    with ``labels_out`` the 0/1 predictions (``ID,label``; 1 = score above ``threshold_``)."""
    n = 0
    fitted = hasattr(detector, "stats_")
    stats = detector.stats_ if fitted else None
    kind, parts = (detector.score_, detector.parts_) if fitted else (detector.score, detector.parts)
    if labels_out is not None and not fitted:
        raise LatentlabError("--labels-out: needs a fitted detector (its threshold)")
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fp, \
            _maybe_open(labels_out) as flags:
        fp.write("ID,score\n")
        if flags is not None:
            flags.write("ID,label\n")
        for chunk in stream_scores(detector.model, as_images(images), detector.batch_spec, kind, parts=parts,
                                   batch_size=detector.batch_size, stats=stats, samples=detector.samples,
                                   progress=detector.progress):
            if not np.isfinite(chunk).all():
                raise LatentlabError(f"scores: image {n + int(np.argmin(np.isfinite(chunk)))} gave a "
                                     f"non-finite score; {out} was not written")
            fp.write("".join(f"{n + i},{float(v)!r}\n" for i, v in enumerate(chunk)))
            if flags is not None:
                flags.write("".join(f"{n + i},{int(v > detector.threshold_)}\n" for i, v in enumerate(chunk)))
            n += len(chunk)
    return n


@dataclass
class EvaluateResult:
    evaluation: Evaluation
    scores: np.ndarray
    files: list[Path]
    score: str = ""  # what was scored by, e.g. "auto: max(ssim,features)"
    choice: ScoreChoice | None = None  # what auto chose, with its one-sentence explanation
    threshold_from: str = ""  # where the threshold came from

    def _repr_html_(self) -> str:
        """A notebook shows the numbers as a table, the choice of ``auto`` and the figures written."""
        from latentlab.viz.html import esc, img, table

        e = self.evaluation
        rows: list[list[Any]] = [["score", self.score or "-"], ["images (anomalies)", f"{e.n} ({e.n_anomalies})"],
                                 ["ROC AUC", e.roc_auc], ["PR AUC", e.pr_auc],
                                 ["threshold" + (f" ({self.threshold_from})" if self.threshold_from else ""),
                                  e.threshold],
                                 ["precision / recall / F1 at it", f"{e.precision:.4g} / {e.recall:.4g} / {e.f1:.4g}"]]
        if e.best is not None:
            rows.append(["best F1 the labels allow (at threshold)", f"{e.best.f1:.4g} ({e.best.threshold:.4g})"])
        why = f"<p>{esc(self.choice.sentence)}</p>" if self.choice is not None else ""
        figures = "".join(img(path, path.name) for path in self.files if path.suffix == ".png" and path.is_file())
        return table(None, rows) + why + figures


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
    """Score ``images`` (a PreparedSet or uint8 NHWC) with a fitted detector, compare with
    ``labels`` (1 = anomaly), write the figures."""
    from latentlab.anomaly.figures import plot_extremes, plot_histogram, plot_roc, plot_tradeoff

    y = check_labels(labels, len(images))
    if k < 1:
        raise LatentlabError(f"--k {k}: expected a positive integer")
    scores = detector.decision_function(images)
    result = evaluate_scores(scores, y, detector.threshold_)
    name = detector.score_name_
    paths = figure_paths(out_dir, prefix)
    plot_roc(scores, y, paths[0], title=f"{name}: ROC AUC {result.roc_auc:.4f}")
    plot_histogram(scores, y, detector.threshold_, paths[1], score_name=name)
    assert result.best is not None
    plot_tradeoff(scores, y, detector.threshold_, result.best.threshold, paths[2], score_name=name)
    order = np.argsort(-scores, kind="stable")
    k = min(k, len(images))
    for rows, path, what in ((order[:k], paths[3], "most anomalous"), (order[::-1][:k], paths[4], "least anomalous")):
        x, x_hat, maps = _extremes(detector, images, rows)
        titles = [f"#{r} {'anom' if y[r] else 'norm'}\n{scores[r]:.4g}" for r in rows]
        plot_extremes(x, x_hat, maps, titles, path, suptitle=f"{k} {what} ({name})")
    return EvaluateResult(result, scores, paths, name, detector.choice_)


def figure_paths(out_dir: Path, prefix: str = "") -> list[Path]:
    """The figures :func:`evaluate` writes: ``out_dir/<prefix><name>`` for each of :data:`FIGURES`."""
    return [Path(out_dir) / f"{prefix}{name}" for name in FIGURES]


# ---------------------------------------------------------------- the normal images of a run


@dataclass
class NormalImages:
    """The normal images of a run: all of them (what ``auto`` chooses from), the rows a detector
    is fitted on, and the held-out rows its threshold is set with (``held_out_from`` says which)."""

    all: Any
    fit: Any
    held_out: Any
    held_out_from: str


def normal_images(run: Run, train_data: str | None = None, train_where: str | None = None,
                  fit_limit: int | None = 5000) -> NormalImages:
    """The run's training data (or ``train_data``), the rows that match the filter ``train_where``
    (e.g. ``label==3``); of those, the run's validation split is held out (at most
    :data:`~latentlab.anomaly.auto.HELD_OUT_LIMIT`) and at most ``fit_limit`` of the others are
    fitted on (see :func:`latentlab.anomaly.auto.held_out_rows`)."""
    from latentlab.latent.where import select

    data = run.data(train_data)
    rows = np.arange(len(data)) if train_where is None else select(train_where, data_columns(data), "--train-where")
    fit, held, source = held_out_rows(run, len(rows))
    return NormalImages(all=data.subset(rows), fit=data.subset(rows[fit_rows(fit, fit_limit)]),
                        held_out=data.subset(rows[fit_rows(held, HELD_OUT_LIMIT)]), held_out_from=source)


def fit_images(run: Run, train_data: str | None = None, train_where: str | None = None,
               fit_limit: int | None = 5000) -> Any:
    """The normal images to fit on: :func:`normal_images` without the held-out rows."""
    return normal_images(run, train_data, train_where, fit_limit).fit


# ---------------------------------------------------------------- the two commands


def _detector(run: Any, score: str, parts: Sequence[str], combine: str, contamination: float, batch_size: int,
              n_components: int, progress: bool) -> ReconstructionDetector:
    """The detector over ``run``, checked: a score the model cannot give is one line before any data is read."""
    return ReconstructionDetector(run, score=score, contamination=contamination, parts=parts, combine=combine,
                                  batch_size=batch_size, n_components=n_components, progress=progress).check()


def _fit(det: ReconstructionDetector, train_data: str | None, train_where: str | None,
         fit_limit: int | None) -> str:
    """Resolve ``auto`` and fit ``det`` on the run's normal images; returns where the threshold came from."""
    try:
        normal = normal_images(det.run, train_data, train_where, fit_limit)
    except LatentlabError as exc:
        if train_data is not None:
            raise
        what = "an auto score is chosen and fitted" if det.score == AUTO else f"score '{det.score}' is fitted"
        raise LatentlabError(f"{exc}; {what} on the run's normal training images: pass them with --train-data "
                             "SPEC") from None
    if det.score == AUTO and det.choice is None:
        given = train_data is not None or train_where is not None
        det.choice = resolve_auto(det.run, normal.all if given else None, fit_limit=fit_limit,
                                  batch_size=det.batch_size, progress=det.progress)
    det.fit(normal.fit, held_out=normal.held_out)
    return f"the {1 - det.contamination:g} quantile of {len(normal.held_out)} held-out normal images' scores " \
           f"({normal.held_out_from})"


def _images(run: Run, data: Any) -> Any:
    return run.data(data) if data is None or isinstance(data, str) else data


@dataclass
class ScoreResult:
    """What ``score_run`` wrote: ``n`` scores by ``score``; with ``labels_out`` the 0/1 predictions
    at ``threshold`` (``flagged`` of them 1)."""

    n: int
    score: str
    choice: ScoreChoice | None = None
    threshold: float | None = None
    threshold_from: str = ""
    labels_out: Path | None = None
    flagged: int = 0


def score_run(run: Any, data: Any, out: Path, *, score: str = AUTO, parts: Sequence[str] = DEFAULT_PARTS,
              combine: str = "sum", train_data: str | None = None, train_where: str | None = None,
              fit_limit: int | None = 5000, n_components: int = 8, contamination: float = 0.05,
              labels_out: Path | None = None, batch_size: int = 256, progress: bool = False,
              overwrite: bool = False) -> ScoreResult:
    """``latentlab score``: write one anomaly score per image of ``data`` (a spec or a PreparedSet)
    to the CSV ``out`` (``ID,score``, higher = more anomalous), and with ``labels_out`` the 0/1
    predictions at the threshold set without labels (``ID,label``).

    ``run`` is a run folder, a Run or a model. ``auto``, latent, feature and combined scores, and
    any threshold, are first fitted on :func:`normal_images`. Existing outputs are refused unless
    ``overwrite``.
    """
    refuse_existing([out, *([labels_out] if labels_out is not None else [])], overwrite)
    if labels_out is not None and Path(labels_out).resolve() == Path(out).resolve():
        raise LatentlabError(f"--labels-out {labels_out}: the same file as --out; expected another file")
    check_contamination(contamination)
    det = _detector(run, score, parts, combine, contamination, batch_size, n_components, progress)
    images = _images(det.run, data)
    threshold_from = ""
    if score == AUTO or needs_stats(score) or labels_out is not None:
        threshold_from = _fit(det, train_data, train_where, fit_limit)
    n = write_scores(det, images, out, labels_out)
    if not hasattr(det, "stats_"):
        return ScoreResult(n, score)
    flagged = 0
    if labels_out is not None:
        flagged = sum(line.endswith(",1") for line in Path(labels_out).read_text(encoding="utf-8").splitlines())
    return ScoreResult(n, det.score_name_, det.choice_, det.threshold_, threshold_from, labels_out, flagged)


def evaluate_run(run: Any, data: Any, labels: str | np.ndarray, out_dir: Path, *, score: str = AUTO,
                 parts: Sequence[str] = DEFAULT_PARTS, combine: str = "sum", train_data: str | None = None,
                 train_where: str | None = None, fit_limit: int | None = 5000, contamination: float = 0.05,
                 k: int = 8, prefix: str = "", n_components: int = 8, batch_size: int = 256,
                 progress: bool = False, overwrite: bool = False) -> EvaluateResult:
    """``latentlab evaluate``: resolve the score, fit the detector on :func:`normal_images` (the
    threshold is the ``1 - contamination`` quantile of the held-out normal images' scores),
    score ``data`` and compare with ``labels`` (0/1 per image, 1 = anomaly: an array, a
    .npy/.csv/.txt file or a filter such as ``label!=3``); writes :func:`figure_paths` (refused
    when they exist, unless ``overwrite``)."""
    refuse_existing(figure_paths(out_dir, prefix), overwrite)
    check_contamination(contamination)
    det = _detector(run, score, parts, combine, contamination, batch_size, n_components, progress)
    test = _images(det.run, data)
    y = labels_from(labels, test) if isinstance(labels, str) else labels
    y = check_labels(y, len(test), f"--labels {labels}" if isinstance(labels, str) else "labels")
    threshold_from = _fit(det, train_data, train_where, fit_limit)
    result = evaluate(det, test, y, out_dir, k=k, prefix=prefix)
    result.threshold_from = threshold_from
    if det.run.path is not None:  # the latest evaluation, for `latentlab runs`
        record_evaluation(det.run.path, result, data if isinstance(data, str) else None,
                          labels if isinstance(labels, str) else None)
    return result


EVALUATION_FILE = "evaluation.json"


def record_evaluation(folder: Path, result: EvaluateResult, data: str | None, labels: str | None) -> None:
    """Write the run's latest evaluation (what was scored, by which score, its AUCs) into the run
    folder, replacing an earlier one atomically; ``latentlab runs`` shows its ROC AUC."""
    from latentlab.io import write_json

    e = result.evaluation
    write_json(Path(folder) / EVALUATION_FILE, {"data": data, "labels": labels, "score": result.score,
                                                "roc_auc": e.roc_auc, "pr_auc": e.pr_auc, "n": e.n,
                                                "n_anomalies": e.n_anomalies})
