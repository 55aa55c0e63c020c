"""Training: a model-agnostic Fabric loop, crash-safe checkpoints, and the run-level API."""

from latentlab.train.trainer import Callback, TrainConfig, Trainer, TrainState

__all__ = ["Callback", "TrainConfig", "TrainState", "Trainer"]
