"""The five disentanglement scores on codes whose answer is known: the factors themselves, a
permuted and rescaled copy, a rotation that mixes two factors, random and constant codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from latentlab.errors import LatentlabError
from latentlab.metrics import SCORES, GroundTruth, dci, evaluate, mig, sap
from latentlab.metrics.dci import dci_from_importance

SIZES = (8, 8, 5, 6)  # the first two the same size, so that a rotation of them is symmetric
SMALL = {"batch_size": 16, "num_train": 400, "num_eval": 300, "num_variance_estimate": 1000}
ACCURACIES = ("beta_vae", "factor_vae")  # classifier accuracies: chance is 1 / number of factors
CHANCE = 1 / len(SIZES)


def truth() -> GroundTruth:
    """Observations are the factor levels themselves (as floats): a code is a function of them."""
    return GroundTruth(names=("a", "b", "c", "d"), sizes=SIZES, observe=lambda levels: levels.astype(np.float64))


def scores(represent: Callable[[Any], np.ndarray]) -> dict[str, float]:
    result = evaluate(truth(), represent, seed=0, **SMALL)
    assert set(result["scores"]) == set(SCORES)
    return dict(result["scores"])


def standard(levels: np.ndarray) -> np.ndarray:
    return np.asarray((levels - (np.asarray(SIZES) - 1) / 2) / np.asarray(SIZES))


@pytest.fixture(scope="module")
def true_scores() -> dict[str, float]:
    return scores(standard)


def test_true_factors_score_near_one(true_scores: dict[str, float]) -> None:
    for name, value in true_scores.items():
        assert value > 0.9, (name, value)


def test_permuted_rescaled_factors_score_as_the_factors(true_scores: dict[str, float]) -> None:
    perm, scale = np.array([2, 0, 3, 1]), np.array([3.0, -0.5, 10.0, 0.2])

    def represent(levels: np.ndarray) -> np.ndarray:
        return np.asarray((standard(levels) * scale + 7.0)[:, perm])

    for name, value in scores(represent).items():
        assert value == pytest.approx(true_scores[name], abs=0.03), name


def test_rotation_mixing_two_factors_scores_lower(true_scores: dict[str, float]) -> None:
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)

    def represent(levels: np.ndarray) -> np.ndarray:
        z = standard(levels)
        a, b = z[:, 0].copy(), z[:, 1].copy()
        z[:, 0], z[:, 1] = c * a - s * b, s * a + c * b
        return z

    rotated = scores(represent)
    for name in ("beta_vae", "factor_vae", "mig", "sap", "dci_disentanglement", "dci_completeness"):
        assert rotated[name] < true_scores[name] - 0.1, (name, rotated[name], true_scores[name])


def test_random_code_scores_near_zero_or_chance() -> None:
    rng = np.random.default_rng(1)
    result = scores(lambda levels: rng.normal(size=(len(levels), 4)))
    for name, value in result.items():
        limit = CHANCE + 0.15 if name in ACCURACIES or name == "dci_informativeness" else 0.15
        assert value < limit, (name, value)


def test_constant_code_scores_zero_or_chance() -> None:
    result = scores(lambda levels: np.zeros((len(levels), 3)))
    assert result["factor_vae"] == 0.0  # no element varies: nothing votes
    assert result["beta_vae"] < CHANCE + 0.15
    for name in ("mig", "sap", "dci_disentanglement", "dci_completeness"):
        assert result[name] == pytest.approx(0.0, abs=1e-9), name


def test_one_element_latent_skips_the_scores_that_need_two() -> None:
    result = evaluate(truth(), lambda levels: standard(levels)[:, :1], **SMALL)
    assert set(result["scores"]) == {"beta_vae", "factor_vae"}
    assert set(result["skipped"]) == {"mig", "sap", "dci"}
    assert "at least 2 elements" in result["skipped"]["mig"]
    codes, factors = np.zeros((10, 1)), np.tile(np.arange(2), 5)[:, None]
    with pytest.raises(LatentlabError, match="MIG: needs a latent of at least 2 elements"):
        mig(codes, factors)


def test_factor_with_a_single_value_is_refused() -> None:
    with pytest.raises(LatentlabError, match="factor\\(s\\) c take a single value"):
        GroundTruth(names=("a", "c"), sizes=(4, 1), observe=lambda levels: levels)
    codes = np.random.default_rng(0).normal(size=(20, 2))
    factors = np.stack([np.arange(20) % 2, np.zeros(20, dtype=np.int64)], axis=1)
    with pytest.raises(LatentlabError, match="take a single value"):
        sap(codes, factors, codes, factors, names=("a", "b"))
    with pytest.raises(LatentlabError, match="take a single value"):
        dci(codes, factors, codes, factors)


def test_dci_of_known_importance_matrices() -> None:
    assert dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0))
    d, c = dci_from_importance(np.ones((3, 3)))
    assert (d, c) == pytest.approx((0.0, 0.0), abs=1e-12)
    # one element explains two factors: not disentangled, but each factor is complete
    d, c = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0.0, abs=1e-12) and c == pytest.approx(1.0)


def test_scores_are_deterministic_for_a_seed() -> None:
    first = evaluate(truth(), standard, seed=3, **SMALL)["scores"]
    again = evaluate(truth(), standard, seed=3, **SMALL)["scores"]
    assert first == again
