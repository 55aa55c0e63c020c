"""How big should the latent be? Train one model per latent size and compare them.

:func:`sweep` trains (or reuses, or resumes) ``OUT/latent-<D>/`` for every size D on the same
data, each for the same wall-clock budget, then measures on the same held-out images (the
runs' validation split): the mean squared reconstruction error per value in model space, the
error of PCA with D components fitted on the training split (the best any *linear* autoencoder
of that size can do: Baldi & Hornik, 1989) and the active units (:mod:`latentlab.latent.active`).

The suggested size is where the curve flattens: **the smallest size whose held-out error has
come down by at least 90% of the way from the smallest size's error to the best error of the
sweep** (``FLAT = 0.9``). A size beyond it buys less than a tenth of the improvement the sweep
saw; the rule depends on the sizes swept, so sweep past the knee (the default 2 .. 64 does).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.errors import LatentlabError

__all__ = ["FLAT", "SizeResult", "SweepResult", "parse_sizes", "suggest_size", "sweep"]

FLAT = 0.9  # share of the sweep's improvement the suggested size must reach
CSV_NAME, FIGURE_NAME, JSON_NAME = "sweep.csv", "sweep.png", "sweep.json"
HELD_OUT_LIMIT = 2000  # held-out images measured per size
FIT_LIMIT = 10_000  # training images PCA is fitted on


@dataclass(frozen=True)
class SizeResult:
    latent_dim: int
    recon_error: float  # held-out MSE per value, model space
    pca_error: float  # the same for PCA with latent_dim components
    active_units: int
    train_seconds: float  # the run's own training time (summed over resumes)
    epochs: int
    run: str


@dataclass(frozen=True)
class SweepResult:
    sizes: list[SizeResult]
    suggested: int
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"sizes": [asdict(s) for s in self.sizes], "suggested": self.suggested, "rule": self.rule}


def parse_sizes(text: str) -> list[int]:
    """``'2,4,8'`` -> [2, 4, 8]: positive integers, at least one, no repeats; sorted."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise LatentlabError(f"--latent-dim '{text}': expected latent sizes like 2,4,8,16 (none given)")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise LatentlabError(f"--latent-dim '{text}': expected whole numbers like 2,4,8,16") from None
    if any(s < 1 for s in sizes) or len(set(sizes)) != len(sizes):
        raise LatentlabError(f"--latent-dim '{text}': expected distinct positive sizes like 2,4,8,16")
    return sorted(sizes)


def suggest_size(sizes: Sequence[int], errors: Sequence[float], flat: float = FLAT) -> int:
    """The smallest size whose error reached ``flat`` of the sweep's improvement (module docstring)."""
    err = np.asarray(errors, dtype=np.float64)
    first, best = err[0], err.min()
    if not first > best:
        return int(sizes[0])
    reached = (first - err) >= flat * (first - best)
    return int(sizes[int(np.argmax(reached))])


def _train_or_resume(model_config: Any, spec: str, rule: Any, train: Any, out: Path, progress: bool) -> str:
    """Reuse a complete run, resume an interrupted one, or train a new one; returns which."""
    from latentlab.runs import CHECKPOINTS, COMPLETE
    from latentlab.train.api import resume_run, train_run

    if (out / COMPLETE).is_file():
        return "reused"
    if (out / CHECKPOINTS).is_dir() and any((out / CHECKPOINTS).iterdir()):
        resume_run(out, progress=progress)
        return "resumed"
    train_run(model_config, spec, rule, train, out, overwrite=out.is_dir(), progress=progress)
    return "trained"


def _held_out_errors(run: Any, data: Any, seed: int, val_fraction: float, latent_dim: int) -> tuple[float, float]:
    """(model, PCA) held-out MSE per value on the run's validation split."""
    import torch
    from sklearn.decomposition import PCA

    from latentlab.runs import split_indices

    rng = np.random.default_rng(seed)
    fit, held = split_indices(len(data), val_fraction, seed)
    if len(held) == 0:
        raise LatentlabError("sweep: no held-out images; expected a validation fraction above 0")
    held = np.sort(rng.permutation(held)[:HELD_OUT_LIMIT])
    fit = np.sort(rng.permutation(fit)[:FIT_LIMIT])
    with torch.inference_mode():
        x = data.inputs(held, device=run.model.device).to(run.model.dtype)
        x_hat = run.model(x).x_hat
        model_err = float((x_hat.float() - x.float()).pow(2).mean())
    x_fit = data.inputs(fit).float().flatten(1).numpy()
    x_held = x.float().cpu().flatten(1).numpy()
    k = min(latent_dim, *x_fit.shape)
    pca = PCA(n_components=k, svd_solver="randomized", random_state=0).fit(x_fit)
    recon = pca.inverse_transform(pca.transform(x_held))
    return model_err, float(((recon - x_held) ** 2).mean())


def sweep(sizes: Sequence[int], kind: str, spec: str, budget: float, out: str | Path, *, rule: Any = None,
          seed: int = 0, batch_size: int = 64, progress: bool = True, overwrite: bool = False,
          log: Any = None) -> SweepResult:
    """Train a ``kind`` model per latent size on ``spec`` for ``budget`` seconds each into
    ``out/latent-<D>`` (complete runs reused, interrupted ones resumed), then write
    ``sweep.csv``, ``sweep.json`` and ``sweep.png`` to ``out``. ``log(str)`` reports each run."""
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import load_prepared
    from latentlab.latent.active import active_units
    from latentlab.models.presets import kind_config
    from latentlab.outputs import refuse_existing
    from latentlab.runs import Run
    from latentlab.train.trainer import TrainConfig
    from latentlab.viz.sweep import sweep_figure

    sizes = sorted(int(s) for s in sizes)
    if not sizes:
        raise LatentlabError("sweep: no latent sizes; expected at least one")
    out = Path(out)
    refuse_existing([out / CSV_NAME, out / JSON_NAME, out / FIGURE_NAME], overwrite)
    rule = rule or BatchSpec()
    data = load_prepared(spec, rule)
    out_act = "sigmoid" if tuple(rule.value_range) == (0.0, 1.0) else "tanh"
    train = TrainConfig(epochs=None, budget=budget, batch_size=batch_size, seed=seed)
    results = []
    for size in sizes:
        config = kind_config(kind, latent_dim=size, in_shape=data.input_shape, out_activation=out_act)
        run_dir = out / f"latent-{size}"
        what = _train_or_resume(config, spec, rule, train, run_dir, progress)
        run = Run.open(run_dir)
        recorded = run.config.get("train", {})
        err, pca_err = _held_out_errors(run, data, int(recorded.get("seed", seed)),
                                        float(recorded.get("val_fraction", train.val_fraction)), size)
        units = active_units(run, data, rows=HELD_OUT_LIMIT, seed=seed)
        metrics = run.metrics
        results.append(SizeResult(latent_dim=size, recon_error=err, pca_error=pca_err, active_units=units.count,
                                  train_seconds=float(sum(m.get("seconds", 0.0) for m in metrics)),
                                  epochs=len(metrics), run=str(run_dir)))
        if log is not None:
            log(f"latent {size}: {what}; held-out error {err:.4g} (PCA {pca_err:.4g}), "
                f"{units.count} active units")
    suggested = suggest_size(sizes, [r.recon_error for r in results])
    result = SweepResult(sizes=results, suggested=suggested,
                         rule=f"smallest size reaching {FLAT:.0%} of the sweep's drop in held-out error")
    _write(result, out, spec, kind)
    sweep_figure(result, out / FIGURE_NAME, title=f"{kind} on {spec}")
    return result


def _write(result: SweepResult, out: Path, spec: str, kind: str) -> None:
    from latentlab.io import atomic_write, write_json

    fields = list(SizeResult.__dataclass_fields__)

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fp:
            writer = csv.DictWriter(fp, fieldnames=fields)
            writer.writeheader()
            for s in result.sizes:
                writer.writerow(asdict(s))

    atomic_write(out / CSV_NAME, write_csv)
    write_json(out / JSON_NAME, {"data": spec, "model": kind, "written": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                     time.gmtime()),
                                 **result.to_dict()})
