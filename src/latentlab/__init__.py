"""latentlab: train autoencoders on images and look inside them.

The names below are imported when first used (PEP 562), not with the package: ``import
latentlab.cli.app`` must not import torch, so that ``latentlab --help`` answers at once.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from latentlab.errors import LatentlabError

if TYPE_CHECKING:
    from latentlab.models import Autoencoder, build, preset_config
    from latentlab.runs import Run, open_run

__version__ = "0.1.0"

# name -> the module that defines it
_LAZY = {"Autoencoder": "latentlab.models", "build": "latentlab.models", "preset_config": "latentlab.models",
         "Run": "latentlab.runs", "open_run": "latentlab.runs"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next look-up finds it without this function
        return value
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def load(run_dir: str | os.PathLike[str]) -> Autoencoder:
    """The trained model of a run folder (``config.json`` + ``model.safetensors``), eval mode: an
    ``nn.Module`` with ``encoder`` / ``decoder`` as in the course code. For its input rule, data
    and metrics too, open the run: :func:`open_run`."""
    from latentlab.models.registry import load_model

    return load_model(run_dir)


__all__ = ["LatentlabError", "Run", "__version__", "build", "load", "open_run", "preset_config"]
