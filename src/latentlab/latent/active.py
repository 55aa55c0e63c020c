"""Active units and posterior collapse.

Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016: element ``d`` is
*active* when ``Cov_x(E[z_d | x]) > 0.01`` -- its mean code varies over the data. For a plain
autoencoder ``E[z|x]`` is the code itself; for a VAE it is the posterior mean. A VAE element
whose posterior equals the prior for every image (KL ~ 0) has *collapsed*: the decoder ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["THRESHOLD", "ActiveUnits", "active_count", "active_units", "collapse_line", "collapse_warning",
           "run_active_line"]

THRESHOLD = 0.01  # Burda et al.'s threshold on the variance of E[z|x]
ROWS = 2000  # images used by default (the estimate is a variance: a few thousand are plenty)


@dataclass(frozen=True)
class ActiveUnits:
    """``variance`` (D,) of E[z|x] over the images; ``kl`` (D,) mean KL to the prior per element
    (None for a plain autoencoder); ``active`` (D,) bool."""

    variance: np.ndarray
    kl: np.ndarray | None
    threshold: float = THRESHOLD

    @property
    def active(self) -> np.ndarray:
        return np.asarray(self.variance > self.threshold)

    @property
    def count(self) -> int:
        return int(self.active.sum())

    @property
    def latent_dim(self) -> int:
        return len(self.variance)

    @property
    def collapsed(self) -> list[int]:
        """Inactive elements (for a VAE: those whose posterior sits at the prior)."""
        return [int(d) for d in np.flatnonzero(~self.active)]

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.count, "latent_dim": self.latent_dim, "threshold": self.threshold,
                "collapsed": self.collapsed, "variance": [float(v) for v in self.variance],
                "kl": None if self.kl is None else [float(v) for v in self.kl]}

    def summary(self) -> str:
        """One line, e.g. ``active units: 6 of 16 (Cov_x(E(z|x)) > 0.01); inactive: 2, 5, ...``."""
        line = f"active units: {self.count} of {self.latent_dim} (Cov_x(E(z|x)) > {self.threshold:g})"
        if self.collapsed:
            shown = ", ".join(str(d) for d in self.collapsed[:12]) + (", ..." if len(self.collapsed) > 12 else "")
            line += f"; inactive: {shown}"
        if self.kl is not None:
            line += f"; KL per element {float(self.kl.sum()):.3g} nats in all, largest {float(self.kl.max()):.3g}"
        return line


def active_units(run: Any, data: Any = None, *, rows: int | None = ROWS, seed: int = 0,
                 threshold: float = THRESHOLD, batch: int = 512) -> ActiveUnits:
    """Active units of a run (a path, a :class:`~latentlab.runs.Run` or a model) over ``data``
    (a spec, a PreparedSet or an ImageSet; default the run's training data), from ``rows``
    images drawn by ``seed`` (all when None)."""
    import torch

    from latentlab.runs import as_run

    run = as_run(run)
    prepared = run.data(data) if data is None or isinstance(data, str) else data
    n = len(prepared)
    index = np.arange(n) if rows is None or rows >= n else np.sort(np.random.default_rng(seed).permutation(n)[:rows])
    mus, kls = [], []
    model = run.model
    with torch.inference_mode():
        for start in range(0, len(index), batch):
            x = run.inputs(prepared, index[start:start + batch]).to(model.dtype)
            out = model.encode(x)
            if model.is_variational:
                mus.append(out.mu.float().cpu().numpy())
                kls.append(out.kl_per_dim().float().cpu().numpy())
            else:
                mus.append(out.float().cpu().numpy())
    mu = np.concatenate(mus).astype(np.float64)  # (N, D)
    variance = mu.var(axis=0, ddof=1) if len(mu) > 1 else np.zeros(mu.shape[1])
    kl = np.concatenate(kls).mean(axis=0) if kls else None
    return ActiveUnits(variance=variance, kl=kl, threshold=threshold)


def collapse_warning(units: ActiveUnits) -> str | None:
    """One line when a VAE has collapsed elements (None for a plain autoencoder or none collapsed)."""
    if units.kl is None or not units.collapsed:
        return None
    n = len(units.collapsed)
    return (f"posterior collapse: {n} of {units.latent_dim} latent elements are inactive "
            f"(Cov_x(E(z|x)) <= {units.threshold:g}: {', '.join(map(str, units.collapsed[:12]))}"
            f"{', ...' if n > 12 else ''}); a smaller latent or a lower beta may serve as well")


def run_active_line(path: Any) -> str:
    """The active-units line for a run folder over its own training data (what ``summary RUN``
    prints), or a line saying why it could not be measured (a bare model, data not found)."""
    from latentlab.errors import LatentlabError
    from latentlab.runs import Run

    try:
        run = Run.open(path)
        if not run.data_spec:
            return "active units: not measured (the run records no training data)"
        return active_units(run).summary()
    except LatentlabError as exc:
        return f"active units: not measured ({exc})"


def collapse_line(path: Any, data: Any = None) -> str | None:
    """After training: the collapse warning for a VAE run folder (None for a plain autoencoder
    or a VAE without collapsed elements). ``data``: the training set, if already loaded."""
    from latentlab.runs import Run

    run = Run.open(path)
    if not run.model.is_variational:
        return None
    return collapse_warning(active_units(run, data))


def active_count(z: Any, threshold: float = THRESHOLD) -> int | None:
    """Active units among codes E[z|x] already computed, (N, D) (None for fewer than 2 rows)."""
    mu = np.asarray(z.double().cpu().numpy() if hasattr(z, "double") else z, dtype=np.float64)
    return int((mu.var(axis=0, ddof=1) > threshold).sum()) if len(mu) > 1 else None
