"""latentlab: train autoencoders on images and look inside them."""

from __future__ import annotations

import os

from latentlab.errors import LatentlabError
from latentlab.models import Autoencoder, build, preset_config
from latentlab.models.registry import load_model
from latentlab.runs import Run, open_run

__version__ = "0.1.0"


def load(run_dir: str | os.PathLike[str]) -> Autoencoder:
    """The trained model of a run folder (``config.json`` + ``model.safetensors``), eval mode: an
    ``nn.Module`` with ``encoder`` / ``decoder`` as in the course code. For its input rule, data
    and metrics too, open the run: :func:`open_run`."""
    return load_model(run_dir)


__all__ = ["LatentlabError", "Run", "__version__", "build", "load", "open_run", "preset_config"]
