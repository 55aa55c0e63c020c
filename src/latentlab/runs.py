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
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.data.batches import BatchSpec
from latentlab.errors import LatentlabError
from latentlab.io import read_json
from latentlab.models.base import Autoencoder, tuples
from latentlab.models.registry import CONFIG, WEIGHTS, load_model

METRICS = "metrics.csv"
LOSS_PLOT = "loss.png"
CHECKPOINTS = "checkpoint"
COMPLETE = "COMPLETE"


def batch_spec_to_dict(spec: BatchSpec) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}


def batch_spec_from_dict(data: Any, source: str) -> BatchSpec:
    if not isinstance(data, dict):
        raise LatentlabError(f"{source}: expected a 'batch' object in the data section")
    names = {f.name for f in dataclasses.fields(BatchSpec)}
    try:
        return BatchSpec(**{k: tuples(v) for k, v in data.items() if k in names})
    except TypeError as exc:
        raise LatentlabError(f"{source}: {exc}") from None


@dataclass
class Run:
    """A trained run opened for use: the model (eval mode) and how its inputs were prepared."""

    path: Path
    model: Autoencoder
    batch: BatchSpec
    config: dict[str, Any]

    @property
    def data_spec(self) -> str | None:
        spec = self.config.get("data", {}).get("spec")
        return spec if isinstance(spec, str) else None

    @property
    def value_range(self) -> tuple[float, float]:
        return self.batch.value_range

    @property
    def complete(self) -> bool:
        return (self.path / COMPLETE).is_file()


def read_config(path: Path) -> dict[str, Any]:
    config = read_json(Path(path) / CONFIG, "run config")
    if not isinstance(config, dict):
        raise LatentlabError(f"{Path(path) / CONFIG}: expected a JSON object")
    return config


def open_run(path: str | Path) -> Run:
    """Open a run folder (or a bare model folder of config.json + model.safetensors)."""
    path = Path(path)
    model = load_model(path)
    config = read_config(path)
    batch = config.get("data", {}).get("batch")
    spec = batch_spec_from_dict(batch, str(path / CONFIG)) if batch is not None else BatchSpec()
    return Run(path=path, model=model, batch=spec, config=config)


def prepare_out_dir(path: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty folder unless ``overwrite``; then clear what a run writes."""
    if path.exists() and not path.is_dir():
        raise LatentlabError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
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


def run_data(run: Run, spec: str | None) -> Any:
    """Load ``spec`` (default: the data the run was trained on) as an ImageSet for this run."""
    from latentlab.data.sources import load_source

    spec = spec or run.data_spec
    if not spec:
        raise LatentlabError(f"{run.path}: records no data spec; pass --data")
    c, h, w = run.model.in_shape
    data = load_source(spec, resize=(h, w) if spec.startswith(("folder:", "tar:")) else None)
    shape = run.batch.output_shape(data.image_shape) if run.batch.resize is None else \
        (data.image_shape[0], *run.batch.resize)
    if shape != (c, h, w):
        raise LatentlabError(f"--data {spec}: images give model input {shape}; the model expects {(c, h, w)}")
    return data


def model_inputs(run: Run, images: np.ndarray) -> Any:
    """uint8 (N, H, W, C) -> the model's float input (N, C, H, W), prepared as in training (no noise)."""
    from latentlab.data.batches import to_model_input

    return to_model_input(images, dataclasses.replace(run.batch, noise=0.0))
