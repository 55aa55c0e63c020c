"""Ground truth for the metrics: data whose generative factors are known, and codes of a model.

The interventional scores (BetaVAE, FactorVAE) need a *generator*: draw factor levels, fix one,
draw the images. :class:`GroundTruth` is that (disentanglement_lib's ``GroundTruthData``):
``shapes`` draws from its full 737,280-image grid, ``faces`` from 10 evenly spaced levels of
each of its six factors. The observational scores (MIG, SAP, DCI) need only pairs of codes and
factor levels, so any image set whose ``factors`` name columns can be scored by them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from latentlab.errors import LatentlabError

__all__ = ["GENERATED", "GroundTruth", "check_factor_levels", "encoder_of", "ground_truth", "to_levels"]

GENERATED = ("shapes", "faces")  # sources that can draw images for given factor levels
FACES_LEVELS = 10
MAX_LEVELS = 64  # a factor column with more distinct values than this is binned
BINS = 20  # disentanglement_lib's histogram bins

Represent = Callable[[Any], np.ndarray]  # observations -> codes (N, D)


@dataclass
class GroundTruth:
    """Factors on a grid of levels and a way to draw observations for any rows of levels.

    ``observe(levels (N, K) int) -> observations`` (uint8 images for a real source; a test may
    return anything its ``represent`` reads).
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    observe: Callable[[np.ndarray], Any]
    spec: str = ""
    values: dict[str, np.ndarray] = field(default_factory=dict)  # level -> value, per factor (for reports)

    def __post_init__(self) -> None:
        check_factor_levels(dict(zip(self.names, self.sizes, strict=True)), self.spec or "ground truth")

    @property
    def num_factors(self) -> int:
        return len(self.sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` rows of independent uniform levels, (n, K) int64."""
        return np.stack([rng.integers(0, s, size=n) for s in self.sizes], axis=1).astype(np.int64)


def check_factor_levels(sizes: dict[str, int], where: str) -> None:
    """Every factor must take at least two values (a constant factor has no information to find)."""
    if not sizes:
        raise LatentlabError(f"{where}: no factors; expected at least one factor with two or more values")
    single = [name for name, s in sizes.items() if s < 2]
    if single:
        raise LatentlabError(f"{where}: factor(s) {', '.join(single)} take a single value; "
                             "expected at least two values per factor (leave constant factors out)")


def _shapes_truth(spec: str) -> GroundTruth:
    from latentlab.data import shapes

    return GroundTruth(names=shapes.FACTOR_NAMES, sizes=shapes.FACTOR_SIZES, observe=shapes.render_shapes,
                       spec=spec)


def _faces_truth(spec: str, size: int) -> GroundTruth:
    from latentlab.data.faces import FACTOR_RANGES, render_faces

    grid = {k: np.linspace(lo, hi, FACES_LEVELS) for k, (lo, hi) in FACTOR_RANGES.items()}

    def observe(levels: np.ndarray) -> np.ndarray:
        return render_faces({k: grid[k][levels[:, j]] for j, k in enumerate(grid)}, size=size)

    return GroundTruth(names=tuple(grid), sizes=(FACES_LEVELS,) * len(grid), observe=observe, spec=spec,
                       values=grid)


def ground_truth(spec: str, size: int = 64) -> GroundTruth | None:
    """The generator for a data spec (``shapes...``, ``faces...``; images ``size`` pixels wide
    for faces), or None for a source that cannot draw images for given factors."""
    from latentlab.data.sources import parse_spec

    kind = parse_spec(spec).kind
    if kind == "shapes":
        return _shapes_truth(spec)
    if kind == "faces":
        return _faces_truth(spec, size)
    return None


def to_levels(values: np.ndarray) -> np.ndarray:
    """A factor column -> integer levels: its distinct values when there are few (up to 64),
    else 20 equal-width bins (continuous factors)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    distinct, inverse = np.unique(values, return_inverse=True)
    if len(distinct) <= MAX_LEVELS:
        return inverse.astype(np.int64)
    edges = np.histogram_bin_edges(values, BINS)[1:-1]
    return np.digitize(values, edges).astype(np.int64)


def encoder_of(run: Any, batch: int | None = None) -> Represent:
    """uint8 images (N, H, W, C) -> the run's codes (N, D) (the posterior mean for a VAE), float64.

    Images become model input by the run's input rule (:meth:`latentlab.runs.Run.inputs`), in
    batches of ``batch`` (default 128 on the CPU, 2,048 on an accelerator). On the CPU, the
    batches go to as many threads as torch's thread count, each
    encoding whole batches with one torch thread: a small encoder gains more from that than from
    splitting every operation over threads, most of all on a loaded machine, and small batches
    stay in the cache (a conv encoder of shapes: 7,500 images per CPU-second in batches of 128,
    5,800 of 512, 3,800 of 1,024). Each image's code is the same either way.
    """
    import torch

    def encode(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = run.inputs(images)
            return np.asarray(run.model.embed(x.to(run.model.dtype)).float().cpu().numpy())

    cpu = torch.device(run.model.device).type == "cpu"
    size = batch or (128 if cpu else 2048)

    def represent(images: np.ndarray) -> np.ndarray:
        chunks = [images[start:start + size] for start in range(0, len(images), size)]
        workers = min(torch.get_num_threads(), len(chunks))
        if workers < 2 or not cpu:
            return np.concatenate([encode(c) for c in chunks]).astype(np.float64)
        return np.concatenate(_threaded(encode, chunks, workers)).astype(np.float64)

    return represent


def _threaded(encode: Callable[[np.ndarray], np.ndarray], chunks: list[np.ndarray], workers: int) -> list[np.ndarray]:
    """``encode`` of each chunk, in order, on ``workers`` threads of one torch thread each."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return list(pool.map(encode, chunks))
    finally:
        torch.set_num_threads(threads)  # torch lets a thread's setting become the default of new threads
