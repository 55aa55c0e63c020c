"""Figures for an anomaly evaluation: ROC curve, score histograms with the threshold, and the
most / least anomalous images beside their reconstructions and per-pixel error maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentlab.io import save_figure
from latentlab.viz.grids import show_image
from latentlab.viz.plots import figure


def plot_roc(scores: np.ndarray, labels: np.ndarray, path: str | Path, title: str = "") -> Path:
    """ROC curve (anomalies as positives) with its AUC and the chance diagonal."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    auc = roc_auc_score(labels, scores)
    fig = figure(figsize=(4.2, 4.0), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fpr, tpr, lw=1.6, label=f"ROC AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], "--", color="gray", lw=0.8, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "ROC curve", fontsize=10)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return save_figure(fig, path, dpi=110)


def plot_histogram(scores: np.ndarray, labels: np.ndarray, threshold: float, path: str | Path,
                   score_name: str = "score") -> Path:
    """Score histograms of normal (0) and anomalous (1) images on shared bins, and the threshold."""
    fig = figure(figsize=(5.6, 3.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = np.percentile(scores, [0.0, 99.5])
    hi = max(hi, threshold)
    bins = np.linspace(min(lo, threshold), hi if hi > lo else lo + 1.0, 60)
    for value, name, color in ((0, "normal", "tab:blue"), (1, "anomalous", "tab:red")):
        part = np.clip(scores[labels == value], bins[0], bins[-1])
        ax.hist(part, bins=bins.tolist(), density=True, alpha=0.55, color=color, label=f"{name} ({len(part)})")
    ax.axvline(threshold, color="black", lw=1.2, ls="--", label=f"threshold {threshold:.4g}")
    ax.set_xlabel(f"anomaly score ({score_name}); higher = more anomalous")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)


def plot_extremes(images: np.ndarray, recons: np.ndarray, maps: np.ndarray, titles: list[str],
                  path: str | Path, suptitle: str = "") -> Path:
    """One column per image: original, reconstruction, error map (uint8 NHWC, NHWC, (N, H, W))."""
    n = len(images)
    fig = figure(figsize=(1.5 * n + 0.9, 4.8), layout="constrained")
    axes = fig.subplots(3, n, squeeze=False)
    vmax = float(np.percentile(maps, 99.5)) if maps.size else 1.0
    for i in range(n):
        show_image(axes[0][i], images[i], titles[i])
        show_image(axes[1][i], recons[i])
        axes[2][i].imshow(maps[i], cmap="inferno", vmin=0.0, vmax=max(vmax, 1e-8), interpolation="nearest")
        axes[2][i].set_xticks([])
        axes[2][i].set_yticks([])
    for r, name in enumerate(("image", "reconstruction", "squared error")):
        axes[r][0].set_ylabel(name, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path, dpi=110)


def plot_tradeoff(scores: np.ndarray, labels: np.ndarray, threshold: float, best: float, path: str | Path,
                  score_name: str = "score") -> Path:
    """Precision, recall and F1 against the threshold, with the threshold set without labels
    (the contamination quantile of the normal validation scores) and the F1-best one."""
    from latentlab.anomaly.metrics import operating_point, tradeoff

    cuts, precision, recall, f1 = tradeoff(scores, labels)
    fig = figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(cuts, precision, lw=1.4, label="precision")
    ax.plot(cuts, recall, lw=1.4, label="recall")
    ax.plot(cuts, f1, lw=1.8, color="black", label="F1")
    for value, style, name in ((threshold, "--", "set without labels"), (best, ":", "best F1 (needs labels)")):
        at = operating_point(scores, labels, value)
        ax.axvline(value, color="gray", lw=1.2, ls=style,
                   label=f"{name}: P {at.precision:.2f}, R {at.recall:.2f}, F1 {at.f1:.2f}")
    lo, hi = np.percentile(scores, [0.5, 99.5])
    ax.set_xlim(min(lo, threshold, best), max(hi, threshold, best))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"threshold on the anomaly score ({score_name}); flagged: score > threshold")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)
