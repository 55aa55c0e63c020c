"""Scores that fix one factor and look at the codes: BetaVAE and FactorVAE.

* BetaVAE score, Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a Constrained
  Variational Framework", ICLR 2017: pairs of batches share one factor; a linear classifier
  predicts which from the mean absolute code difference. Score: its accuracy on held-out points.
* FactorVAE score, Kim & Mnih, "Disentangling by Factorising", ICML 2018: a batch shares one
  factor; the code element of least variance (scaled by its variance over all data) votes for
  that factor; a majority-vote classifier maps elements to factors. Score: its accuracy on
  held-out votes.

Sampling as in disentanglement_lib (``evaluation/metrics/beta_vae.py``, ``factor_vae.py``) with
the defaults of Locatello et al., ICML 2019: batches of 64, 10,000 training and 5,000 evaluation
points, 10,000 images for the FactorVAE variances, elements with a standard deviation under
0.05 pruned. Both are accuracies: a code that knows nothing scores chance, 1 / number of
factors, not 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latentlab.errors import LatentlabError
from latentlab.metrics.truth import GroundTruth, Represent

__all__ = ["beta_vae_score", "factor_vae_score"]

POINTS_PER_CALL = 32  # points whose batches are encoded in one call (32 x 2 x 64 images)
Advance = Callable[[int], None]


def _nothing(n: int) -> None:
    return None


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise LatentlabError(f"{name} {value!r}: expected a positive number of samples")


def _beta_vae_points(truth: GroundTruth, represent: Represent, batch_size: int, n: int,
                     rng: np.random.Generator, advance: Advance) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, D), factor index (n,)): mean |z1 - z2| over a batch sharing one factor."""
    features, labels = [], []
    for start in range(0, n, POINTS_PER_CALL):
        m = min(POINTS_PER_CALL, n - start)
        k = rng.integers(0, truth.num_factors, size=m)  # the factor each point fixes
        a = truth.sample_factors(m * batch_size, rng)
        b = truth.sample_factors(m * batch_size, rng)
        fixed = np.repeat(k, batch_size)
        rows = np.arange(m * batch_size)
        b[rows, fixed] = a[rows, fixed]
        z = represent(truth.observe(np.concatenate([a, b])))  # (2 m B, D)
        diff = np.abs(z[:m * batch_size] - z[m * batch_size:]).reshape(m, batch_size, -1)
        features.append(diff.mean(axis=1))
        labels.append(k)
        advance(2 * m * batch_size)
    return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(truth: GroundTruth, represent: Represent, *, seed: int = 0, batch_size: int = 64,
                   num_train: int = 10_000, num_eval: int = 5_000,
                   advance: Advance = _nothing) -> dict[str, float]:
    """BetaVAE score: ``{"train_accuracy", "eval_accuracy"}`` of a logistic regression."""
    from sklearn.linear_model import LogisticRegression

    _check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    rng = np.random.default_rng([seed, 1])
    x_train, y_train = _beta_vae_points(truth, represent, batch_size, num_train, rng, advance)
    x_eval, y_eval = _beta_vae_points(truth, represent, batch_size, num_eval, rng, advance)
    if len(np.unique(y_train)) < 2:
        raise LatentlabError(f"num_train {num_train}: too few points to see two factors; expected more")
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return {"train_accuracy": float(model.score(x_train, y_train)),
            "eval_accuracy": float(model.score(x_eval, y_eval))}


def _factor_vae_votes(truth: GroundTruth, represent: Represent, batch_size: int, n: int,
                      rng: np.random.Generator, scale: np.ndarray, active: np.ndarray,
                      advance: Advance) -> np.ndarray:
    """Votes (K factors, D elements): how often fixing factor k left element d the least varied."""
    votes = np.zeros((truth.num_factors, len(scale)), dtype=np.int64)
    active_index = np.flatnonzero(active)
    for start in range(0, n, POINTS_PER_CALL):
        m = min(POINTS_PER_CALL, n - start)
        k = rng.integers(0, truth.num_factors, size=m)
        levels = truth.sample_factors(m * batch_size, rng).reshape(m, batch_size, -1)
        levels[np.arange(m), :, k] = levels[np.arange(m), 0, k][:, None]  # one value of factor k per batch
        z = represent(truth.observe(levels.reshape(m * batch_size, -1))).reshape(m, batch_size, -1)
        local = z[:, :, active].var(axis=1, ddof=1) / scale[active] ** 2  # (m, active D)
        np.add.at(votes, (k, active_index[local.argmin(axis=1)]), 1)
        advance(m * batch_size)
    return votes


def factor_vae_score(truth: GroundTruth, represent: Represent, *, seed: int = 0, batch_size: int = 64,
                     num_train: int = 10_000, num_eval: int = 5_000, num_variance_estimate: int = 10_000,
                     prune_threshold: float = 0.05, advance: Advance = _nothing) -> dict[str, float]:
    """FactorVAE score: ``{"train_accuracy", "eval_accuracy", "num_active"}`` of the majority vote.

    Elements whose standard deviation over the data is below ``prune_threshold`` take no part
    (collapsed to the prior); with none left the score is 0.
    """
    _check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval,
                  num_variance_estimate=num_variance_estimate)
    if batch_size < 2:
        raise LatentlabError(f"batch_size {batch_size}: the FactorVAE score needs batches of at least 2")
    rng = np.random.default_rng([seed, 2])
    z = represent(truth.observe(truth.sample_factors(num_variance_estimate, rng)))
    advance(num_variance_estimate)
    scale = z.std(axis=0, ddof=1)
    active = scale >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active": 0.0}
    train = _factor_vae_votes(truth, represent, batch_size, num_train, rng, scale, active, advance)
    evals = _factor_vae_votes(truth, represent, batch_size, num_eval, rng, scale, active, advance)
    classifier = train.argmax(axis=0)  # element -> the factor it votes for most
    elements = np.arange(train.shape[1])
    return {"train_accuracy": float(train[classifier, elements].sum() / train.sum()),
            "eval_accuracy": float(evals[classifier, elements].sum() / evals.sum()),
            "num_active": float(active.sum())}
