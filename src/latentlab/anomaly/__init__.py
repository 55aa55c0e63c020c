"""Anomaly detection by reconstruction: scores, a PyOD-style detector, metrics, the one-class protocol."""

from latentlab.anomaly.detector import ReconstructionDetector
from latentlab.anomaly.metrics import pr_auc, roc_auc
from latentlab.anomaly.scores import SCORE_KINDS, error_map, score_dataset, score_images

__all__ = ["SCORE_KINDS", "ReconstructionDetector", "error_map", "pr_auc", "roc_auc", "score_dataset",
           "score_images"]
