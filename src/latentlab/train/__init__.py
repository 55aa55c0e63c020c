"""Training: a model-agnostic Fabric loop, crash-safe checkpoints, and the run-level API."""

from latentlab.train.trainer import Callback, Trainer, TrainConfig, TrainState

__all__ = ["Callback", "Trainer", "TrainConfig", "TrainState"]
