"""Recipes: a model, an input rule and a training budget chosen for a task (``--recipe NAME``).

``latentlab train --data SPEC --recipe anomaly --out RUN`` trains the model of
``latentlab/configs/anomaly.json`` for anomaly detection on images like CelebA faces; the run is
then scored with ``--score auto`` (:mod:`latentlab.anomaly.auto`). What it trains and why is in
the JSON file itself (its ``why`` section) and in ``docs/anomaly.md``.

The recipe adapts to the input: the number of stride-2 convolutions is the largest (at most
``max_halvings``) that the height and width can be halved by, so 64x64 images get all four
layers (a 4x4 map) and 28x28 ones two (7x7); the output activation follows the value range
(Tanh for [-1, 1], Sigmoid for [0, 1]), as for every other model.

    model_config, train = recipe("anomaly", in_shape=(3, 64, 64), value_range=(-1.0, 1.0))
    TrainConfig(**{**defaults, **train})
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from latentlab.errors import LatentlabError
from latentlab.io import read_json

RECIPES = ("anomaly",)


@dataclass(frozen=True)
class Recipe:
    """One recipe as its JSON file states it: the model (a config dict without ``in_shape``),
    ``rule`` (input-rule fields it sets, e.g. ``noise``), ``train`` (TrainConfig fields), the
    score to use, and why each was chosen."""

    name: str
    model: dict[str, Any]
    rule: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    score: str = "auto"
    transforms: dict[str, Any] = field(default_factory=dict)  # the transform classifier's training, if any
    max_halvings: int = 4
    about: str = ""
    why: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def model_config(self, in_shape: tuple[int, int, int], value_range: tuple[float, float]) -> Any:
        """The model config for images of ``in_shape`` (C, H, W) scaled to ``value_range``."""
        from latentlab.models.registry import config_from_dict

        model = dict(self.model)
        if model.get("kind") == "conv" and "channels" in model:
            n = _halvings(in_shape, self.max_halvings, int(model.get("stride", 2)))
            if n == 0:
                raise LatentlabError(f"--recipe {self.name}: images of {in_shape[1]}x{in_shape[2]} cannot be halved; "
                                     "expected a height and width divisible by 2")
            model["channels"] = list(model["channels"])[:n]
        model["in_shape"] = list(in_shape)
        model["out_activation"] = "sigmoid" if tuple(value_range) == (0.0, 1.0) else "tanh"
        return config_from_dict(model, self.source)

    def train_overrides(self) -> dict[str, Any]:
        """The TrainConfig fields the recipe sets (checked against TrainConfig's fields)."""
        from latentlab.train.trainer import TrainConfig

        names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(self.train) - names)
        if unknown:
            raise LatentlabError(f"{self.source}: unknown train setting(s) {', '.join(unknown)}")
        return dict(self.train)

    def transform_training(self) -> Any:
        """How the run's transform classifier is trained (None: the recipe trains none)."""
        from latentlab.anomaly.transforms import TransformTraining

        if not self.transforms:
            return None
        return TransformTraining.from_dict(self.transforms, f"{self.source}: transforms")


def _halvings(in_shape: tuple[int, int, int], most: int, stride: int) -> int:
    _, h, w = in_shape
    n = 0
    while n < most and h % stride == 0 and w % stride == 0 and min(h, w) // stride >= 2:
        h, w, n = h // stride, w // stride, n + 1
    return n


def load_recipe(name: str = "anomaly", path: str | Path | None = None) -> Recipe:
    """The recipe ``name`` from ``latentlab/configs/<name>.json`` (or from ``path``)."""
    if path is None:
        if name not in RECIPES:
            raise LatentlabError(f"--recipe {name}: expected one of {', '.join(RECIPES)}")
        ref = resources.files("latentlab") / "configs" / f"{name}.json"
        data, source = read_json(Path(str(ref)), "recipe"), f"latentlab/configs/{name}.json"
    else:
        data, source = read_json(path, "recipe"), str(path)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise LatentlabError(f"{source}: expected an object with a 'model' section")
    for key in ("rule", "train", "why", "transforms"):
        if not isinstance(data.get(key, {}), dict):
            raise LatentlabError(f"{source}: expected '{key}' to be an object")
    return Recipe(name=str(data.get("name", name)), model=data["model"], rule=data.get("rule", {}),
                  train=data.get("train", {}), score=str(data.get("score", "auto")),
                  transforms=data.get("transforms", {}),
                  max_halvings=int(data.get("max_halvings", 4)), about=str(data.get("about", "")),
                  why=data.get("why", {}), source=source)


def recipe(name: str, in_shape: tuple[int, int, int], value_range: tuple[float, float] = (-1.0, 1.0),
           ) -> tuple[Any, dict[str, Any]]:
    """(model config, TrainConfig overrides) of the recipe ``name`` for images of ``in_shape``
    (C, H, W, the model input after the input rule) scaled to ``value_range``."""
    found = load_recipe(name)
    return found.model_config(tuple(in_shape), tuple(value_range)), found.train_overrides()  # type: ignore[arg-type]


def finish_run(out: str | Path, images: Any = None, *, progress: bool = False) -> float | None:
    """What a recipe trains after the autoencoder: the transform classifier its run config
    records (``recipe.transforms``), unless the run already has one (so ``--resume`` after a
    stop in between trains it then). Returns the seconds it took, or None when nothing was due."""
    import time

    from latentlab.anomaly.transforms import CONFIG_FILE, TransformTraining, train_for_run
    from latentlab.models.registry import CONFIG

    out = Path(out)
    recorded = read_json(out / CONFIG, "run config").get("recipe")
    settings = recorded.get("transforms") if isinstance(recorded, dict) else None
    if not settings or (out / CONFIG_FILE).is_file():
        return None
    t0 = time.perf_counter()
    train_for_run(out, images, TransformTraining.from_dict(settings, f"{out / CONFIG}: recipe.transforms"),
                  progress=progress)
    return time.perf_counter() - t0

