"""A reconstruction-based anomaly detector with the scikit-learn / PyOD contract.

``ReconstructionDetector(model_or_run, score="auto", contamination=0.05)`` wraps a trained
autoencoder (or a run folder opened with :func:`latentlab.runs.open_run`). As in PyOD
(Zhao et al., JMLR 2019): ``__init__`` only stores parameters; ``fit(X)`` scores the normal
training images and sets the fitted attributes (ending in ``_``): ``decision_scores_`` and
``threshold_``, plus ``labels_`` (1 = anomaly), ``stats_`` (what latent, feature and combined
scores learned) and, for ``score="auto"``, ``choice_`` (what the run chose:
:mod:`latentlab.anomaly.auto`) with ``score_`` / ``parts_`` / ``combine_``, the score it
resolved to. ``decision_function`` is PyOD's sign (higher = more anomalous); ``score_samples``
is scikit-learn's (higher = more normal): its negative.

The threshold is set without labels: the ``1 - contamination`` quantile of the scores of
``held_out`` normal images (ones the model was not trained on) when ``fit`` is given some, else
of the training images' own scores (which are optimistic: the model was fitted to them).

Example::

    det = ReconstructionDetector("runs/faces").fit(train_images, held_out=validation_images)
    scores = det.decision_function(test_images)     # (N,), higher = more anomalous
    flags = det.predict(test_images)                # (N,), 1 = anomaly
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from latentlab.anomaly.auto import AUTO, ScoreChoice
from latentlab.anomaly.metrics import check_contamination, choose_threshold, contamination_threshold
from latentlab.anomaly.scores import (
    COMBINE_MODES,
    DEFAULT_PARTS,
    FITTED_KINDS,
    ScoreStats,
    check_kind,
    combine,
    error_map,
    fit_stats,
    input_batches,
    needed_parts,
    score_dataset,
    stream_parts,
)
from latentlab.data.batches import BatchSpec
from latentlab.data.rule import PreparedSet
from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder
from latentlab.runs import Run, as_run


def as_images(X: Any) -> Any:
    """The images to score: a PreparedSet as it is (it knows its own input rule), else uint8
    (N, H, W, C) rows from an array, a uint8 tensor or an ImageSet (``.images``)."""
    if isinstance(X, PreparedSet):
        return X
    images = getattr(X, "images", X)
    if isinstance(images, torch.Tensor):
        images = images.cpu().numpy()
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        shape = getattr(images, "shape", None)
        dtype = getattr(images, "dtype", type(images).__name__)
        raise LatentlabError(f"detector input: expected uint8 images (N, H, W, C) or an ImageSet, "
                             f"got {dtype} of shape {shape}")
    if len(images) == 0:
        raise LatentlabError("detector input: contains no images")
    return images


def _rows(images: Any, rows: np.ndarray) -> Any:
    return images.subset(rows) if isinstance(images, PreparedSet) else images[rows]


class ReconstructionDetector:
    """Anomaly detector over an autoencoder's reconstruction error and latent density.

    Parameters: ``model_or_run`` a run folder path, a :class:`~latentlab.runs.Run` or a model;
    ``score`` ``auto`` (the run's own choice) or one of
    :data:`~latentlab.anomaly.scores.SCORE_KINDS`; ``contamination`` the expected fraction of
    anomalies, used for the threshold when no labelled anomalies are given; ``parts`` the kinds
    a ``combined`` score mixes and ``combine`` how ("sum" or "max"); ``batch`` how uint8 images
    become model input (default: the run's input rule; a PreparedSet from ``run.data(...)``
    carries its own); ``n_components`` of a ``gmm``; ``samples`` for a sampled ELBO; ``choice``
    an ``auto`` choice already made (default: the run's stored one, or one made and stored on
    first use -- from the images given to ``fit`` for a model without a run folder).
    """

    def __init__(self, model_or_run: Any, score: str = AUTO, contamination: float = 0.05, *,
                 parts: Sequence[str] = DEFAULT_PARTS, combine: str = "sum", batch: BatchSpec | None = None,
                 batch_size: int = 256, n_components: int = 8, samples: int = 0,
                 choice: ScoreChoice | None = None, progress: bool = False) -> None:
        self.model_or_run = model_or_run
        self.score = score
        self.contamination = contamination
        self.parts = tuple(parts)
        self.combine = combine
        self.choice = choice
        self.batch = batch
        self.batch_size = batch_size
        self.n_components = n_components
        self.samples = samples
        self.progress = progress

    # ------------------------------------------------------------ what it wraps

    @property
    def run(self) -> Run:
        """The wrapped run, opened once (a path is opened on first use, not in ``__init__``)."""
        opened: tuple[Any, Run] | None = getattr(self, "_opened", None)
        if opened is None or opened[0] is not self.model_or_run:
            opened = (self.model_or_run, as_run(self.model_or_run))
            self._opened = opened
        return opened[1]

    @property
    def model(self) -> Autoencoder:
        return self.run.model

    @property
    def batch_spec(self) -> BatchSpec:
        return self.batch if self.batch is not None else self.run.rule

    def check(self) -> ReconstructionDetector:
        """Refuse a score the model cannot give or a bad contamination, before any data is read."""
        self._check()
        return self

    def _check(self) -> None:
        if self.score != AUTO:
            check_kind(self.model, self.score, self.parts)
        if self.combine not in COMBINE_MODES:
            raise LatentlabError(f"--combine {self.combine}: expected one of {', '.join(COMBINE_MODES)}")
        check_contamination(self.contamination)

    def _require_fit(self) -> None:
        if not hasattr(self, "threshold_"):
            raise LatentlabError("detector: not fitted yet; call fit(X) with normal training images first")

    # ------------------------------------------------------------ the contract

    def fit(self, X: Any, y: np.ndarray | None = None, *, held_out: Any = None) -> ReconstructionDetector:
        """Learn from training images X (uint8 NHWC or an ImageSet); returns ``self``.

        ``y`` (optional, 1 = anomaly) marks known anomalies among X: statistics are fitted on the
        normal rows only, and the threshold is the F1-best cut on X. Without labelled anomalies the
        threshold is the (1 - contamination) quantile of the scores of ``held_out`` (normal images
        the model never trained on, which also standardise a combined score), or of the training
        scores when there are none.
        """
        self._check()
        images = as_images(X)
        self._resolve(images)
        held = None if held_out is None else as_images(held_out)
        normal = images
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(images):
                raise LatentlabError(f"fit: {len(y)} labels for {len(images)} images; expected one per image")
            if (y == 0).sum() < 2:
                raise LatentlabError("fit: needs at least 2 normal (0) images to learn from")
            normal = _rows(images, np.flatnonzero(y == 0))
        self.model.eval()
        self.stats_, normal_scores = fit_stats(
            self.model, normal, self.batch_spec, self.score_, parts=self.parts_, batch_size=self.batch_size,
            n_components=self.n_components_, samples=self.samples, combine_mode=self.combine_,
            standardise_on=held if self.score_ == "combined" else None, progress=self.progress)
        self.decision_scores_ = normal_scores if normal is images else self._scores(images)
        self.held_out_scores_ = None if held is None else self._scores(held)
        if self.held_out_scores_ is not None and y is None:
            self.threshold_ = contamination_threshold(self.held_out_scores_, self.contamination)
        else:
            self.threshold_ = choose_threshold(self.decision_scores_, y, self.contamination)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        self.n_features_in_ = int(np.prod(getattr(images, "images", images).shape[1:]))
        return self

    def _resolve(self, images: Any) -> None:
        """Set ``score_``, ``parts_``, ``combine_``, ``n_components_`` and ``choice_``: the
        parameters themselves, or what ``auto`` resolves to for this run."""
        from latentlab.anomaly.auto import choose_for_images, resolve_auto

        self.choice_ = None
        if self.score == AUTO:
            if self.choice is not None:
                self.choice_ = self.choice
            elif self.run.path is None:
                self.choice_ = choose_for_images(self.run, images, batch_size=self.batch_size, progress=self.progress)
            else:
                self.choice_ = resolve_auto(self.run, batch_size=self.batch_size, progress=self.progress)
            self.score_, self.parts_ = self.choice_.kind, self.choice_.parts
            self.combine_, self.n_components_ = self.choice_.combine, self.choice_.components
        else:
            self.score_, self.parts_, self.combine_, self.n_components_ = (self.score, self.parts, self.combine,
                                                                            self.n_components)
        check_kind(self.model, self.score_, self.parts_)

    @property
    def score_name_(self) -> str:
        """What the detector scores by: e.g. ``mse``, ``mse+mahalanobis``, ``auto: max(ssim,features)``."""
        from latentlab.anomaly.auto import spec_name

        self._require_fit()
        name = spec_name(self.parts_, self.combine_) if self.score_ == "combined" else self.score_
        return f"auto: {name}" if self.score == AUTO else name

    def _scores(self, images: Any) -> np.ndarray:
        return score_dataset(self.model, images, self.batch_spec, self.score_, parts=self.parts_,
                             batch_size=self.batch_size, stats=self.stats_, samples=self.samples,
                             progress=self.progress)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each image, (N,) float: **higher = more anomalous** (PyOD's sign)."""
        self._require_fit()
        return self._scores(as_images(X))

    def decision_parts(self, X: Any, extra: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """From one pass: the detector's score (key ``self.score_``, the resolved score), each
        part of a ``combined`` score, and the ``extra`` pixel-space kinds (e.g. ``mse``, ``ssim``)
        for comparison; (N,) arrays, higher = more anomalous."""
        self._require_fit()
        for kind in extra:
            if kind == "combined" or (kind in FITTED_KINDS and kind not in needed_parts(self.score_, self.parts_)):
                raise LatentlabError(f"extra score '{kind}': expected a kind that needs no fitting, or a part")
            check_kind(self.model, kind)
        wanted = tuple(dict.fromkeys((*needed_parts(self.score_, self.parts_), *extra)))
        found: dict[str, list[np.ndarray]] = {k: [] for k in (*wanted, self.score_)}
        for _, chunk in stream_parts(self.model, as_images(X), self.batch_spec, wanted, batch_size=self.batch_size,
                                     stats=self.stats_, samples=self.samples, progress=self.progress):
            if self.score_ == "combined":
                found["combined"].append(combine(chunk, self.stats_).cpu().numpy())
            for k, v in chunk.items():
                found[k].append(v.cpu().numpy())
        return {k: np.concatenate(v) for k, v in found.items()}

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn's sign: **higher = more normal**; ``-decision_function(X)``."""
        return -self.decision_function(X)

    def predict(self, X: Any) -> np.ndarray:
        """(N,) int: 1 = anomaly (score above ``threshold_``), 0 = normal."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def fit_predict(self, X: Any, y: np.ndarray | None = None) -> np.ndarray:
        return self.fit(X, y).labels_

    # ------------------------------------------------------------ beyond the contract

    def _repr_html_(self) -> str:
        """A notebook shows what the detector scores by and, once fitted, its threshold."""
        from latentlab.viz.html import esc, table

        target = self.model_or_run
        what = target.path or target.name if isinstance(target, Run) else \
            f"a {target.kind} model" if isinstance(target, Autoencoder) else target
        rows: list[list[Any]] = [["wraps", str(what)], ["score", self.score], ["contamination", self.contamination]]
        if not hasattr(self, "threshold_"):
            return f"<p><b>ReconstructionDetector</b> (not fitted)</p>{table(None, rows)}"
        scores = np.asarray(self.decision_scores_, dtype=np.float64)
        rows += [["scores by", self.score_name_], ["threshold", float(self.threshold_)],
                 ["fitted on", f"{len(scores)} images (scores {scores.min():.4g} to {scores.max():.4g})"],
                 ["flagged among them", int(np.asarray(self.labels_).sum())]]
        choice = getattr(self, "choice_", None)
        why = f"<p>{esc(choice.sentence)}</p>" if choice is not None else ""
        return f"<p><b>ReconstructionDetector</b> (fitted)</p>{table(None, rows)}{why}"

    @property
    def stats(self) -> ScoreStats:
        self._require_fit()
        return self.stats_

    @torch.no_grad()
    def error_maps(self, X: Any) -> np.ndarray:
        """Per-pixel squared reconstruction error (N, H, W), channel mean, in model space."""
        out = []
        model = self.model.eval()
        device = model.device
        for x in input_batches(as_images(X), self.batch_spec, self.batch_size, device):
            out.append(error_map(x, model.decode(model.embed(x))).cpu().numpy())
        return np.concatenate(out)
