"""The standard one-class protocol (Ruff et al., "Deep One-Class Classification", ICML 2018).

For each normal class k: train an autoencoder on the *training* images of class k only, score
the *whole* test split, call every image of another class an anomaly, and report ROC AUC. The
protocol, the model, its training budget and the score are fixed in a JSON config
(``latentlab/configs/oneclass.json``) so that anyone can reproduce the table.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.data.batches import BatchSpec
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError
from latentlab.io import read_json

CONFIG_NAME = "oneclass.json"
# Ruff et al. (ICML 2018), Table 1, MNIST one-class ROC AUC (%), means over 10 seeds (the DCAE row was
# transcribed without the paper at hand: check it against the PDF before quoting it elsewhere).
PUBLISHED = {
    "Deep SVDD (one-class)": [98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5],
    "DCAE": [97.6, 98.3, 85.4, 86.7, 86.5, 78.2, 94.6, 92.3, 86.5, 90.4],
}


@dataclass(frozen=True)
class OneClassConfig:
    """What the protocol fixes: the model config (a dict as in a run's config.json, ``in_shape``
    taken from the data), batch preparation, training settings and the anomaly score."""

    model: dict[str, Any]
    batch: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    score: str = "mahalanobis"
    parts: tuple[str, ...] = ("mse", "mahalanobis")  # what a ``combined`` score mixes
    report: tuple[str, ...] = ()  # further kinds whose ROC AUC alone is reported beside the score
    components: int = 8  # of a ``gmm`` latent density
    source: str = ""

    def train_config(self, **overrides: Any) -> Any:
        from latentlab.train.trainer import TrainConfig

        names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(self.train) - names)
        if unknown:
            raise LatentlabError(f"{self.source}: unknown train setting(s) {', '.join(unknown)}")
        return TrainConfig(**{**self.train, **{k: v for k, v in overrides.items() if v is not None}})

    def batch_spec(self) -> BatchSpec:
        from latentlab.runs import rule_from_dict

        return rule_from_dict(self.batch, self.source)

    def model_config(self, in_shape: tuple[int, int, int]) -> Any:
        from latentlab.models.registry import config_from_dict

        return config_from_dict({**self.model, "in_shape": list(in_shape)}, self.source)


def load_config(path: str | Path | None = None) -> OneClassConfig:
    """The repo's fixed protocol config, or ``path``."""
    if path is None:
        ref = resources.files("latentlab") / "configs" / CONFIG_NAME
        data, source = read_json(Path(str(ref)), "one-class config"), f"latentlab/configs/{CONFIG_NAME}"
    else:
        data, source = read_json(path, "one-class config"), str(path)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise LatentlabError(f"{source}: expected an object with a 'model' section")
    score = data.get("score", {})
    if not isinstance(score, dict) or not isinstance(score.get("kind", ""), str):
        raise LatentlabError(f"{source}: expected 'score' to be an object with a 'kind'")
    return OneClassConfig(model=data["model"], batch=data.get("batch", {}), train=data.get("train", {}),
                          score=score.get("kind", "mahalanobis"),
                          parts=tuple(score.get("parts", ("mse", "mahalanobis"))),
                          report=tuple(score.get("report", ())), components=int(score.get("components", 8)),
                          source=source)


def split_specs(spec: str) -> tuple[str, str]:
    """``idx:DIR`` (or ``mnist``, ``fashion-mnist``) -> (training split spec, test split spec)."""
    from latentlab.data.sources import parse_spec

    parsed = parse_spec(spec)
    if parsed.kind == "idx":
        return f"idx:{parsed.target}", f"idx:{parsed.target}#test"
    if parsed.kind in ("mnist", "fashion-mnist"):
        return parsed.kind, f"{parsed.kind}#test"
    raise LatentlabError(f"--data {spec}: the one-class protocol needs a labelled train and test split; "
                         f"expected idx:DIR (MNIST-style files), mnist or fashion-mnist")


def parse_normal(text: str, classes: Sequence[int], spec: str) -> list[int]:
    """``--normal``: ``all`` or class ids like ``3`` / ``0,5``; each must exist in the data."""
    if text.strip().lower() == "all":
        return list(classes)
    try:
        wanted = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise LatentlabError(f"--normal {text}: expected a class id like 3, ids like 0,5, or all") from None
    if not wanted:
        raise LatentlabError(f"--normal '{text}': expected a class id like 3, ids like 0,5, or all")
    for k in wanted:
        if k not in classes:
            raise LatentlabError(f"--normal {k}: no such class in {spec}; expected one of "
                                 f"{', '.join(map(str, classes))} or all")
    return list(dict.fromkeys(wanted))


def check_config(config: OneClassConfig, in_shape: tuple[int, int, int], epochs: int | None = None) -> None:
    """Every error the config can cause, before any training: model, training settings, scores."""
    from latentlab.anomaly.auto import AUTO
    from latentlab.anomaly.scores import FITTED_KINDS, check_kind, needed_parts
    from latentlab.models.registry import build

    model = build(config.model_config(in_shape))
    config.train_config(epochs=epochs)
    if config.score != AUTO:
        check_kind(model, config.score, config.parts)
    for kind in config.report:
        check_kind(model, kind)
        if kind == "combined" or (kind in FITTED_KINDS and kind not in needed_parts(config.score, config.parts)):
            raise LatentlabError(f"{config.source}: report '{kind}': expected a kind that needs no fitting "
                                 f"(mse, course, ssim, elbo) or a part of the score")


@dataclass
class ClassResult:
    """One normal class: ROC AUC of the configured score (and of each part or reported kind alone),
    timings (wall seconds; CPU seconds of this process for both)."""

    normal: int
    roc_auc: float
    pr_auc: float
    part_auc: dict[str, float]
    n_train: int
    train_seconds: float
    score_seconds: float
    cpu_seconds: float


def run_class(train: ImageSet, test: ImageSet, normal: int, config: OneClassConfig, run_dir: Path,
              *, progress: bool = False, epochs: int | None = None) -> ClassResult:
    """Train on the training images of ``normal`` only; score the whole test split."""
    from latentlab.anomaly.detector import ReconstructionDetector
    from latentlab.anomaly.metrics import pr_auc, roc_auc
    from latentlab.train.api import train_run

    assert train.labels is not None and test.labels is not None
    data = train.subset(np.flatnonzero(train.labels == normal))
    labels = (test.labels != normal).astype(np.int64)
    batch = config.batch_spec()
    t0, c0 = time.perf_counter(), time.process_time()
    model = train_run(config.model_config(data.image_shape), data, batch, config.train_config(epochs=epochs),
                      run_dir, overwrite=True, progress=progress)
    t1 = time.perf_counter()
    detector = ReconstructionDetector(model, score=config.score, parts=config.parts, batch=batch,
                                      batch_size=1000, n_components=config.components).fit(data)
    found = detector.decision_parts(test, extra=config.report)
    t2 = time.perf_counter()
    part_auc = {k: roc_auc(v, labels) for k, v in found.items() if k != detector.score_}
    scores = found[detector.score_]
    return ClassResult(normal, roc_auc(scores, labels), pr_auc(scores, labels), part_auc, len(data),
                       t1 - t0, t2 - t1, time.process_time() - c0)


def run_oneclass(data_spec: str, normal: str, config: OneClassConfig, out: Path | None = None, *,
                 progress: bool = False, epochs: int | None = None, workers: int = 1,
                 on_result: Callable[[ClassResult], None] | None = None) -> list[ClassResult]:
    """Run the protocol for ``normal`` ("all" or class ids); one run folder per class under ``out``
    (a temporary folder, removed afterwards, when ``out`` is None).

    ``workers`` > 1 trains that many classes at once in separate processes, one thread each
    (small models use several cores better this way than through intra-op threads).
    """
    from latentlab.data.sources import load_source

    if workers < 1:
        raise LatentlabError(f"--workers {workers}: expected a positive integer")
    train_spec, test_spec = split_specs(data_spec)
    train, test = load_source(train_spec), load_source(test_spec)
    if train.labels is None or test.labels is None:
        raise LatentlabError(f"--data {data_spec}: has no labels; the one-class protocol needs class labels")
    classes = sorted(int(c) for c in np.unique(train.labels))
    wanted = parse_normal(normal, classes, data_spec)
    check_config(config, train.image_shape, epochs)  # config errors before any training
    with tempfile.TemporaryDirectory(prefix="latentlab-oneclass-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        if workers == 1 or len(wanted) == 1:
            results = []
            for k in wanted:
                results.append(run_class(train, test, k, config, root / f"class_{k}", progress=progress,
                                         epochs=epochs))
                if on_result is not None:
                    on_result(results[-1])
            return results
        return _run_parallel(train_spec, test_spec, wanted, config, root, epochs, workers, on_result)


# ---------------------------------------------------------------- one process per class

_WORKER_DATA: tuple[ImageSet, ImageSet] | None = None


def _worker_init(train_spec: str, test_spec: str) -> None:
    import torch

    from latentlab.data.sources import load_source

    global _WORKER_DATA
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    threadpool_limits(1)  # BLAS (the mixture's EM) too: the workers share the cores
    _WORKER_DATA = (load_source(train_spec), load_source(test_spec))


def _worker_class(normal: int, config: OneClassConfig, run_dir: Path, epochs: int | None) -> ClassResult:
    assert _WORKER_DATA is not None
    return run_class(*_WORKER_DATA, normal, config, run_dir, epochs=epochs)


def _run_parallel(train_spec: str, test_spec: str, wanted: list[int], config: OneClassConfig, root: Path,
                  epochs: int | None, workers: int,
                  on_result: Callable[[ClassResult], None] | None) -> list[ClassResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: dict[int, ClassResult] = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(wanted)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init, initargs=(train_spec, test_spec)) as pool:
        futures = [pool.submit(_worker_class, k, config, root / f"class_{k}", epochs) for k in wanted]
        for future in as_completed(futures):
            result = future.result()
            results[result.normal] = result
            if on_result is not None:
                on_result(result)
    return [results[k] for k in wanted]
