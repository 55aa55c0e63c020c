"""Anomaly detection by reconstruction: scores, a PyOD-style detector, metrics, the one-class protocol,
the score a run chooses for itself (``auto``) and the ``anomaly`` recipe."""

from latentlab.anomaly.auto import ScoreChoice, choose_score, resolve_auto
from latentlab.anomaly.detector import ReconstructionDetector
from latentlab.anomaly.metrics import pr_auc, roc_auc
from latentlab.anomaly.recipe import load_recipe, recipe
from latentlab.anomaly.scores import SCORE_KINDS, error_map, score_dataset, score_images

__all__ = ["SCORE_KINDS", "ReconstructionDetector", "ScoreChoice", "choose_score", "error_map", "load_recipe",
           "pr_auc", "recipe", "resolve_auto", "roc_auc", "score_dataset", "score_images"]
