"""AUCs, thresholds and label files."""

from __future__ import annotations

import numpy as np
import pytest

from latentlab.anomaly.metrics import (
    best_f1_threshold,
    check_labels,
    choose_threshold,
    contamination_threshold,
    labels_from,
    pr_auc,
    read_label_file,
    roc_auc,
)
from latentlab.errors import LatentlabError


def test_aucs_of_perfect_reversed_and_tied_rankings():
    y = np.array([0, 0, 0, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), y) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.7, 0.2, 0.1]), y) == 0.0
    assert roc_auc(np.ones(5), y) == 0.5
    assert pr_auc(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), y) == 1.0


def test_label_checks():
    with pytest.raises(LatentlabError, match="3 labels for 5 images"):
        check_labels(np.array([0, 1, 0]), 5)
    with pytest.raises(LatentlabError, match="undefined with a single class"):
        check_labels(np.zeros(5), 5)
    with pytest.raises(LatentlabError, match="all 4 are anomalies"):
        roc_auc(np.arange(4.0), np.ones(4))
    with pytest.raises(LatentlabError, match="found \\[2\\]"):
        check_labels(np.array([0, 1, 2]), 3)
    assert check_labels(np.array([True, False]), 2).dtype == np.int64
    with pytest.raises(LatentlabError, match="finite"):
        roc_auc(np.array([0.0, np.nan]), np.array([0, 1]))


def test_contamination_threshold_and_fallback():
    scores = np.arange(100.0)
    t = contamination_threshold(scores, 0.1)
    assert (scores > t).sum() == 10
    assert choose_threshold(scores, None, 0.1) == t
    assert choose_threshold(scores, np.zeros(100), 0.1) == t  # no anomalies: not the minimum score
    with pytest.raises(LatentlabError, match="contamination"):
        contamination_threshold(scores, 0.7)


def test_f1_threshold_separates_separable_scores():
    rng = np.random.default_rng(0)
    scores = np.r_[rng.uniform(0, 1, 50), rng.uniform(2, 3, 5)]
    y = np.r_[np.zeros(50), np.ones(5)]
    t = best_f1_threshold(scores, y)
    assert 1.0 <= t < 2.0
    assert np.array_equal(scores > t, y == 1)
    assert choose_threshold(scores, y, 0.3) == t


def test_label_files(tmp_path):
    want = np.array([0, 1, 1, 0])
    np.save(tmp_path / "y.npy", want)
    (tmp_path / "y.csv").write_text("ID,label\n0,0\n1,1\n2,1\n3,0\n")
    (tmp_path / "plain.csv").write_text("0\n1\n1\n0\n")
    (tmp_path / "y.txt").write_text("0 1 1 0\n")
    (tmp_path / "lines.txt").write_text("0\n1\n1\n0\n")
    for name in ("y.npy", "y.csv", "plain.csv", "y.txt", "lines.txt"):
        np.testing.assert_array_equal(read_label_file(tmp_path / name), want)
    (tmp_path / "bad.csv").write_text("ID,label\n0,yes\n")
    with pytest.raises(LatentlabError, match="'yes' is not a number"):
        read_label_file(tmp_path / "bad.csv")
    with pytest.raises(LatentlabError, match="not found"):
        read_label_file(tmp_path / "missing.npy")
    (tmp_path / "y.bin").write_bytes(b"\x00\x01")
    with pytest.raises(LatentlabError, match=r"\.npy, \.csv or \.txt"):
        labels_from(str(tmp_path / "y.bin"), None)


def test_labels_from_a_filter_over_the_data():
    from latentlab.data import ImageSet

    data = ImageSet(images=np.zeros((4, 2, 2, 1), np.uint8), labels=np.array([3, 1, 3, 7]))
    np.testing.assert_array_equal(labels_from("label!=3", data), [0, 1, 0, 1])
    with pytest.raises(LatentlabError, match="unknown name"):
        labels_from("smile>0.5", data)


def test_evaluation_reports_the_threshold_without_labels_and_the_best_f1_one():
    from latentlab.anomaly.metrics import evaluate_scores, tradeoff

    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.35, 0.9, 0.8, 0.25])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    e = evaluate_scores(scores, y, threshold=0.5)
    assert (e.precision, e.recall) == (1.0, 0.5)
    assert e.best is not None and e.best.f1 >= e.f1
    assert (e.best.recall, e.best.f1) == (1.0, pytest.approx(0.8))  # the cut between 0.2 and 0.25
    cuts, precision, recall, f1 = tradeoff(scores, y)
    assert len(cuts) == len(precision) == len(recall) == len(f1)
    assert np.all(np.diff(cuts) > 0) and f1.max() == pytest.approx(e.best.f1)
