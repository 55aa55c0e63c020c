"""Scores from codes and factors observed together: MIG and SAP.

* MIG, Chen, Li, Grosse & Duvenaud, "Isolating Sources of Disentanglement in Variational
  Autoencoders", NeurIPS 2018: per factor, the gap between the two largest mutual informations
  with single code elements (each binned into 20 equal-width bins), over the factor's entropy;
  averaged over factors.
* SAP, Kumar, Sattigeri & Balakrishnan, "Variational Inference of Disentangled Latent Concepts
  from Unlabeled Observations", ICLR 2018: per factor, the gap between the two best scores of
  one code element predicting it; averaged over factors. The score of an element is the R^2
  of a linear fit (the paper's choice for continuous factors; the default here, since every
  factor of ``shapes`` and ``faces`` but the shape is ordered) or, with ``continuous=False``,
  the held-out accuracy of a linear SVM (C = 0.01), disentanglement_lib's setting for dSprites
  in Locatello et al. -- a linear classifier on one number cannot tell 32 positions apart, so
  that variant stays far below 1 even for the true factors (0.24 on shapes).

As in disentanglement_lib (``evaluation/metrics/mig.py``, ``sap_score.py``).
``codes`` are (N, D) floats, ``factors`` (N, K) integer levels. Both scores compare the best
element with the second best, so they need a latent of at least two elements.
"""

from __future__ import annotations

import numpy as np

from latentlab.errors import LatentlabError
from latentlab.metrics.truth import BINS, check_factor_levels

__all__ = ["check_pair", "discretize", "mig", "sap"]


def check_pair(codes: np.ndarray, factors: np.ndarray, metric: str, names: tuple[str, ...] | None = None,
               min_elements: int = 2) -> None:
    """Shapes agree, every factor takes two values, and the code has ``min_elements``."""
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise LatentlabError(f"{metric}: expected codes (N, D) and factors (N, K) of the same N, "
                             f"got {codes.shape} and {factors.shape}")
    names = names or tuple(f"factor {j}" for j in range(factors.shape[1]))
    check_factor_levels({n: len(np.unique(factors[:, j])) for j, n in enumerate(names)}, metric)
    if codes.shape[1] < min_elements:
        raise LatentlabError(f"{metric}: needs a latent of at least {min_elements} elements (it compares the best "
                             f"element with the next); this one has {codes.shape[1]}")


def discretize(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each element (column) into ``bins`` equal-width bins over its own range: (N, D) int."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins)[1:-1]
        out[:, d] = np.digitize(codes[:, d], edges)
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) mutual information (nats) between binned elements and factors."""
    from sklearn.metrics import mutual_info_score

    binned = discretize(codes)
    return np.array([[mutual_info_score(factors[:, k], binned[:, d]) for k in range(factors.shape[1])]
                     for d in range(binned.shape[1])])


def mig(codes: np.ndarray, factors: np.ndarray, names: tuple[str, ...] | None = None) -> dict[str, float]:
    """Mutual information gap: ``{"mig"}`` in [0, 1], plus ``mig/<factor>`` per factor."""
    from sklearn.metrics import mutual_info_score

    check_pair(codes, factors, "MIG", names)
    mi = mutual_information(codes, factors)  # (D, K)
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
    top = np.sort(mi, axis=0)[::-1]
    gaps = (top[0] - top[1]) / entropy
    names = names or tuple(str(k) for k in range(factors.shape[1]))
    return {"mig": float(gaps.mean()), **{f"mig/{n}": float(g) for n, g in zip(names, gaps, strict=True)}}


def sap(codes: np.ndarray, factors: np.ndarray, test_codes: np.ndarray, test_factors: np.ndarray,
        names: tuple[str, ...] | None = None, continuous: bool = True) -> dict[str, float]:
    """Separated attribute predictability: ``{"sap"}`` (0 .. 1), plus ``sap/<factor>``."""
    check_pair(codes, factors, "SAP", names)
    check_pair(test_codes, test_factors, "SAP", names)
    score = _r2_matrix(codes, factors) if continuous else _svm_matrix(codes, factors, test_codes, test_factors)
    top = np.sort(score, axis=0)[::-1]
    gaps = top[0] - top[1]
    names = names or tuple(str(j) for j in range(factors.shape[1]))
    return {"sap": float(gaps.mean()), **{f"sap/{n}": float(g) for n, g in zip(names, gaps, strict=True)}}


def _r2_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) R^2 of a linear fit of each factor on each element: the squared correlation
    (0 for a constant element)."""
    c = codes - codes.mean(axis=0)
    f = factors - factors.mean(axis=0)
    cov = c.T @ f / len(codes)  # (D, K)
    var_c, var_f = (c * c).mean(axis=0), (f * f).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = cov ** 2 / (var_c[:, None] * var_f[None, :])
    return np.asarray(np.where(var_c[:, None] > 0, r2, 0.0))


def _svm_matrix(codes: np.ndarray, factors: np.ndarray, test_codes: np.ndarray,
                test_factors: np.ndarray) -> np.ndarray:
    """(D, K) held-out accuracy of a linear SVM (C = 0.01) on each element for each factor."""
    from sklearn.svm import LinearSVC

    score = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            svm = LinearSVC(C=0.01).fit(codes[:, i:i + 1], factors[:, j])
            score[i, j] = svm.score(test_codes[:, i:i + 1], test_factors[:, j])
    return score
