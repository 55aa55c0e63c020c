"""Ranking metrics and thresholds for anomaly scores (labels: 1 = anomaly, 0 = normal).

ROC AUC is what the course's Kaggle leaderboard and the one-class literature (Ruff et al.,
ICML 2018) report; PR AUC is scikit-learn's average precision. A threshold comes from labelled
validation anomalies when there are some (the F1-best cut), and otherwise from the
contamination quantile (the fraction of images one expects to be anomalous, as PyOD does);
never from the minimum score, which would flag everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.errors import LatentlabError


def check_contamination(contamination: float) -> float:
    if not (isinstance(contamination, (int, float)) and 0 < contamination < 0.5):
        raise LatentlabError(f"--contamination {contamination}: expected a fraction in (0, 0.5)")
    return float(contamination)


def check_labels(labels: np.ndarray, n: int, what: str = "labels") -> np.ndarray:
    """Labels as an int (N,) array of 0/1 with both classes present; LatentlabError otherwise."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise LatentlabError(f"{what}: expected one 0/1 value per image, got shape {y.shape}")
    if len(y) != n:
        raise LatentlabError(f"{what}: {len(y)} labels for {n} images; expected one label per image")
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number):
        raise LatentlabError(f"{what}: expected 0 (normal) or 1 (anomaly) per image, found {y.dtype} values")
    if not np.isin(y, (0, 1)).all():
        bad = [v for v in np.unique(y).tolist() if v not in (0, 1)][:5]
        raise LatentlabError(f"{what}: expected 0 (normal) or 1 (anomaly) per image, found {bad}")
    y = y.astype(np.int64)
    if len(np.unique(y)) < 2:
        only = "anomalies (1)" if y[0] == 1 else "normal images (0)"
        raise LatentlabError(f"{what}: all {n} are {only}; ROC and PR AUC are undefined with a single class; "
                             f"expected both normal (0) and anomalous (1) images")
    return y


def check_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or not np.isfinite(s).all():
        raise LatentlabError("anomaly scores: expected one finite number per image (the model gave NaN or inf)")
    return s


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (higher = more anomalous) against 0/1 ``labels``."""
    from sklearn.metrics import roc_auc_score

    y = check_labels(labels, len(scores))
    return float(roc_auc_score(y, check_scores(scores)))


def pr_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve, anomalies as positives)."""
    from sklearn.metrics import average_precision_score

    y = check_labels(labels, len(scores))
    return float(average_precision_score(y, check_scores(scores)))


def contamination_threshold(scores: np.ndarray, contamination: float) -> float:
    """The (1 - contamination) quantile of ``scores``: that fraction lies strictly above it."""
    s = check_scores(scores)
    if len(s) == 0:
        raise LatentlabError("threshold: no scores to take a quantile of")
    return float(np.quantile(s, 1.0 - check_contamination(contamination)))


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score cut with the best F1 on labelled data (``score > threshold`` = anomaly)."""
    from sklearn.metrics import precision_recall_curve

    y = check_labels(labels, len(scores))
    s = check_scores(scores)
    precision, recall, cuts = precision_recall_curve(y, s)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    cut = cuts[int(np.argmax(f1))]  # predict = score >= cut; below it, the next lower score
    lower = s[s < cut]
    return float((cut + lower.max()) / 2) if len(lower) else float(np.nextafter(cut, -np.inf))


def choose_threshold(scores: np.ndarray, labels: np.ndarray | None, contamination: float) -> float:
    """F1-best cut when ``labels`` hold anomalies and normals; otherwise the contamination quantile."""
    if labels is not None:
        y = np.asarray(labels)
        if len(y) != len(scores):
            raise LatentlabError(f"labels: {len(y)} labels for {len(scores)} images; expected one per image")
        if np.isin(y, (0, 1)).all() and len(np.unique(y)) == 2:
            return best_f1_threshold(scores, y)
    return contamination_threshold(scores, contamination)


@dataclass
class OperatingPoint:
    """Precision, recall and F1 of the anomalies when ``score > threshold`` flags an image."""

    threshold: float
    precision: float
    recall: float
    f1: float


def operating_point(scores: np.ndarray, labels: np.ndarray, threshold: float) -> OperatingPoint:
    y = check_labels(labels, len(scores))
    pred = check_scores(scores) > threshold
    tp = int((pred & (y == 1)).sum())
    precision = tp / max(int(pred.sum()), 1)
    recall = tp / max(int(y.sum()), 1)
    return OperatingPoint(float(threshold), precision, recall, 2 * precision * recall / max(precision + recall, 1e-12))


@dataclass
class Evaluation:
    """ROC AUC, PR AUC and the confusion counts at ``threshold`` (score > threshold = anomaly),
    the threshold set without labels; ``best`` is the F1-best threshold the labels would pick
    (what a labelled validation set could give at most, for comparison)."""

    roc_auc: float
    pr_auc: float
    threshold: float
    precision: float
    recall: float
    f1: float
    n: int
    n_anomalies: int
    best: OperatingPoint | None = None


def evaluate_scores(scores: np.ndarray, labels: np.ndarray, threshold: float) -> Evaluation:
    y = check_labels(labels, len(scores))
    s = check_scores(scores)
    at = operating_point(s, y, threshold)
    best = operating_point(s, y, best_f1_threshold(s, y))
    return Evaluation(roc_auc(s, y), pr_auc(s, y), float(threshold), at.precision, at.recall, at.f1, len(y),
                      int(y.sum()), best)


def tradeoff(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, precision, recall, F1) of ``score >= threshold`` over every distinct score,
    ascending thresholds (scikit-learn's precision-recall curve)."""
    from sklearn.metrics import precision_recall_curve

    y = check_labels(labels, len(scores))
    precision, recall, cuts = precision_recall_curve(y, check_scores(scores))
    p, r = precision[:-1], recall[:-1]
    return cuts, p, r, 2 * p * r / np.maximum(p + r, 1e-12)


# ---------------------------------------------------------------- labels from a file or a filter


def read_label_file(path: Path) -> np.ndarray:
    """0/1 per image from ``.npy``, ``.csv`` (last column; a header row is skipped) or ``.txt``."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise LatentlabError(f"--labels {path}: file not found")
    if suffix == ".npy":
        try:
            y = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise LatentlabError(f"--labels {path}: not a readable .npy array ({exc})") from None
        return np.ravel(y) if y.ndim == 2 and 1 in y.shape else y
    if suffix not in (".csv", ".txt"):
        raise LatentlabError(f"--labels {path}: expected a .npy, .csv or .txt file of 0/1 per image")
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise LatentlabError(f"--labels {path}: not a text file") from None
    if suffix == ".txt" and len(lines) == 1:
        lines = lines[0].split()
    cells = [ln.replace(";", ",").split(",")[-1].strip() for ln in lines]
    if cells and not _is_number(cells[0]):
        cells = cells[1:]  # a header such as "ID,label"
    bad = next((c for c in cells if not _is_number(c)), None)
    if bad is not None:
        raise LatentlabError(f"--labels {path}: '{bad[:20]}' is not a number; expected 0 or 1 per image")
    return np.array([float(c) for c in cells])


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def labels_from(spec: str, data: object) -> np.ndarray:
    """``--labels``: a file (.npy/.csv/.txt of 0/1) or a filter over the data's labels and factors
    whose matching rows are the anomalies, e.g. ``label!=3``."""
    from latentlab.latent.where import parse_where

    path = Path(spec).expanduser()
    if path.suffix.lower() in (".npy", ".csv", ".txt") or path.is_file():
        return read_label_file(path)
    return parse_where(spec).mask(data_columns(data)).astype(np.int64)


def data_columns(data: object) -> dict[str, np.ndarray]:
    """What a filter can read: ``label`` and the known factors of an ImageSet."""
    columns: dict[str, np.ndarray] = dict(getattr(data, "factors", {}) or {})
    if getattr(data, "labels", None) is not None:
        columns["label"] = data.labels  # type: ignore[attr-defined]
    return columns
