"""latentlab: train autoencoders on images and look inside them."""

from __future__ import annotations

import os

from latentlab.errors import LatentlabError
from latentlab.models import Autoencoder, build, load_model, preset_config

__version__ = "0.1.0"


def load(run_dir: str | os.PathLike[str]) -> Autoencoder:
    """Load a trained model from a run folder (``config.json`` + ``model.safetensors``), eval mode."""
    return load_model(run_dir)


__all__ = ["LatentlabError", "__version__", "build", "load", "load_model", "preset_config"]
