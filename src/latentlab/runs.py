"""The run folder: what is written where, and how a trained run is opened again.

::

    runs/NAME/
      config.json          model + data + training settings (the model is rebuilt from it)
      model.safetensors    final weights (the best on validation when there is a validation split)
      metrics.csv          per epoch: train_* and val_* loss terms, lr, seconds
      loss.png             the loss curves
      checkpoint/          the state a --resume needs (see train/checkpoints.py)
      COMPLETE             written last: the run finished
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from latentlab.data.batches import BatchSpec
from latentlab.data.rule import PreparedSet, load_prepared, model_inputs
from latentlab.errors import LatentlabError
from latentlab.io import read_json
from latentlab.models.base import Autoencoder, tuples
from latentlab.models.registry import CONFIG, WEIGHTS, load_model

METRICS = "metrics.csv"
LOSS_PLOT = "loss.png"
CHECKPOINTS = "checkpoint"
COMPLETE = "COMPLETE"


@dataclass
class Run:
    """A trained run opened for use: the one handle from a run folder to its model (eval mode),
    its input rule, the data spec it was trained on and its metrics.

    Every latent tool, score and the detector take a run path, a loaded model or a Run
    (:func:`as_run`). ``run.data(spec)`` loads images for this run and ``run.inputs(images)``
    makes model input from them, both by the recorded input rule (:mod:`latentlab.data.rule`).
    """

    path: Path | None
    model: Autoencoder
    rule: BatchSpec
    config: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Run:
        """Open a run folder (or a bare model folder of config.json + model.safetensors)."""
        path = Path(path)
        from latentlab.anomaly.transforms import attach, load_transforms

        model = load_model(path)
        config = read_config(path)
        attach(model, load_transforms(path))  # the run's transform classifier, for the anomaly scores
        return cls(path=path, model=model, rule=rule_from_config(config, str(path / CONFIG)), config=config)

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else self.model.kind

    @property
    def data_spec(self) -> str | None:
        """The data spec the run was trained on, its path absolute (runs record it so; a relative
        one recorded by an older run is taken from the current folder, as before)."""
        from latentlab.data.sources import absolute_spec

        spec = self.config.get("data", {}).get("spec")
        return absolute_spec(spec) if isinstance(spec, str) else None

    @property
    def value_range(self) -> tuple[float, float]:
        return self.rule.value_range

    @property
    def complete(self) -> bool:
        return self.path is not None and (self.path / COMPLETE).is_file()

    @property
    def metrics(self) -> list[dict[str, float]]:
        """The per-epoch rows of metrics.csv (empty for a model without a run folder)."""
        from latentlab.train.callbacks import read_metrics

        if self.path is None or not (self.path / METRICS).is_file():
            return []
        return read_metrics(self.path / METRICS)

    def data(self, spec: str | None = None) -> PreparedSet:
        """Images for this run: ``spec`` (default: the data it was trained on), loaded by its rule."""
        spec = spec or self.data_spec
        if not spec:
            raise LatentlabError(f"{self.path or 'model'}: records no data spec; pass --data")
        data = load_prepared(spec, self.rule, ready_ok=True)
        if data.input_shape != self.model.in_shape:
            raise LatentlabError(f"--data {spec}: images give model input {data.input_shape}; "
                                 f"the model expects {self.model.in_shape}")
        return data

    def inputs(self, images: Any, rows: Any = None) -> Tensor:
        """Model input (N, C, H, W) on the model's device from a PreparedSet, an ImageSet or uint8
        pixels (N, H, W, C), by this run's rule (:func:`latentlab.data.rule.model_inputs`)."""
        return model_inputs(self.rule, images, rows, device=self.model.device)


def default_rule(model: Autoencoder) -> BatchSpec:
    """The rule a bare model implies: its output activation's value range, nothing else."""
    sigmoid = getattr(model.config, "out_activation", "tanh") == "sigmoid"
    return BatchSpec(value_range=(0.0, 1.0) if sigmoid else (-1.0, 1.0))


def as_run(obj: Any) -> Run:
    """A Run from a Run, a run folder path or a loaded model (with the rule its output implies)."""
    if isinstance(obj, Run):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return Run.open(obj)
    if isinstance(obj, Autoencoder):
        return Run(path=None, model=obj, rule=default_rule(obj), config={})
    raise LatentlabError(f"expected a run folder, a Run or a latentlab model, got {type(obj).__name__}")


def as_model(obj: Any) -> Autoencoder:
    """The model of a Run, a run folder path or a model."""
    return obj if isinstance(obj, Autoencoder) else as_run(obj).model


def rule_to_dict(rule: BatchSpec) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(rule).items()}


def rule_from_dict(data: Any, source: str) -> BatchSpec:
    if not isinstance(data, dict):
        raise LatentlabError(f"{source}: expected a 'rule' object in the data section")
    names = {f.name for f in dataclasses.fields(BatchSpec)}
    try:
        return BatchSpec(**{k: tuples(v) for k, v in data.items() if k in names})
    except TypeError as exc:
        raise LatentlabError(f"{source}: {exc}") from None


def rule_from_config(config: dict[str, Any], source: str) -> BatchSpec:
    """The input rule a run config records (``data.rule``; ``data.batch`` in runs before 0.2)."""
    data = config.get("data", {})
    recorded = data.get("rule", data.get("batch")) if isinstance(data, dict) else None
    return BatchSpec() if recorded is None else rule_from_dict(recorded, source)


def read_config(path: Path) -> dict[str, Any]:
    config = read_json(Path(path) / CONFIG, "run config")
    if not isinstance(config, dict):
        raise LatentlabError(f"{Path(path) / CONFIG}: expected a JSON object")
    return config


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open a run folder: :meth:`Run.open`."""
    return Run.open(path)


def prepare_out_dir(path: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty folder unless ``overwrite``; then clear what a run writes.
    (The run lock's file, which the lock's holder made, does not count.)"""
    from latentlab.train.lock import LOCK_NAME

    if path.exists() and not path.is_dir():
        raise LatentlabError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir()):
        if not overwrite:
            raise LatentlabError(
                f"{path}: folder exists and is not empty; pass --overwrite to replace it or --resume to continue it")
        for name in (COMPLETE, CONFIG, WEIGHTS, METRICS, LOSS_PLOT):
            (path / name).unlink(missing_ok=True)
        shutil.rmtree(path / CHECKPOINTS, ignore_errors=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentlabError(f"{path}: cannot create the run folder ({exc.strerror})") from None


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row indices: a seeded permutation, the first ``val_fraction`` for validation."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n_val == 0 and n > 1:
        n_val = 1
    if n - n_val < 1:
        raise LatentlabError(f"--val-fraction {val_fraction}: leaves no training images out of {n}")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


