"""DCI: disentanglement, completeness and informativeness (Eastwood & Williams, "A Framework for
the Quantitative Evaluation of Disentangled Representations", ICLR 2018).

Per factor, a tree ensemble predicts the factor from the whole code; its impurity-based feature
importances form R (D elements x K factors). disentanglement_lib (``evaluation/metrics/dci.py``)
uses scikit-learn's ``GradientBoostingClassifier``, which grows 100 trees per class: on shapes'
3 + 6 + 40 + 32 + 32 classes and 10,000 codes that took 273 s on this 2-core machine. The
default here is a ``RandomForestClassifier`` of 50 trees that may split on every element
(bagged trees; leaves of at least 20; Eastwood & Williams used random forests too), 15 to 20
times faster. A forest that picks a random subset of elements per split gives pure-noise
elements a share of the importance (true factors plus 5 noise elements: D 0.82 instead of
1.0); one that sees every element does not. ``estimator="gbt"`` gives the library's choice.

* disentanglement: per element, 1 - entropy (base K) of its row of R normalised; averaged with
  weights by the element's share of all importance;
* completeness: per factor, 1 - entropy (base D) of its column; weighted by the factor's share;
* informativeness: the mean held-out accuracy of the classifiers.

Completeness takes logarithms base D, so it needs a latent of at least two elements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from latentlab.errors import LatentlabError
from latentlab.metrics.information import check_pair

__all__ = ["ESTIMATORS", "dci", "dci_from_importance"]

ESTIMATORS = ("forest", "gbt")


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """1 - H(p) / log(base) of each row of non-negative weights p (rows normalised here)."""
    total = p.sum(axis=1, keepdims=True)
    q = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(q > 0, q * np.log(q), 0.0).sum(axis=1)
    return np.asarray(1.0 - h / np.log(base))


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix (D elements, K factors)."""
    total = importance.sum()
    if total <= 0:
        return 0.0, 0.0
    d, k = importance.shape
    per_element = _one_minus_entropy(importance, k) if k > 1 else np.ones(d)
    per_factor = _one_minus_entropy(importance.T, d)
    disentanglement = float((per_element * importance.sum(axis=1) / total).sum())
    completeness = float((per_factor * importance.sum(axis=0) / total).sum())
    return disentanglement, completeness


def dci(codes: np.ndarray, factors: np.ndarray, test_codes: np.ndarray, test_factors: np.ndarray,
        names: tuple[str, ...] | None = None, seed: int = 0, estimator: str = "forest") -> dict[str, Any]:
    """``{"disentanglement", "completeness", "informativeness", "informativeness_train",
    "importance"}``; ``importance`` is R as a nested list (D x K). ``estimator``: ``"forest"``
    or ``"gbt"`` (see the module docstring)."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    if estimator not in ESTIMATORS:
        raise LatentlabError(f"DCI estimator '{estimator}': expected one of {', '.join(ESTIMATORS)}")
    check_pair(codes, factors, "DCI", names)
    check_pair(test_codes, test_factors, "DCI", names)
    k = factors.shape[1]
    importance = np.zeros((codes.shape[1], k))
    train_acc, test_acc = [], []
    for j in range(k):
        model = (RandomForestClassifier(n_estimators=50, max_features=None, min_samples_leaf=20, n_jobs=-1,
                                        random_state=seed)
                 if estimator == "forest" else GradientBoostingClassifier(random_state=seed))
        model.fit(codes, factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_acc.append(model.score(codes, factors[:, j]))
        test_acc.append(model.score(test_codes, test_factors[:, j]))
    disentanglement, completeness = dci_from_importance(importance)
    return {"disentanglement": disentanglement, "completeness": completeness,
            "informativeness": float(np.mean(test_acc)), "informativeness_train": float(np.mean(train_acc)),
            "importance": importance.tolist()}
