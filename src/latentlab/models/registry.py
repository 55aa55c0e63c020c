"""One registry from ``kind`` to model class and config class; save and load a model folder.

A saved model is a folder with ``config.json`` (the model config under ``"model"``) and
``model.safetensors``. Loading reads JSON and tensors only: no pickle, no code from the file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentlab.errors import LatentlabError
from latentlab.io import atomic_write, read_json, write_json
from latentlab.models.base import Autoencoder, config_to_dict, tuples
from latentlab.models.conv import ConvAutoencoder, ConvConfig
from latentlab.models.fcn import FCNAutoencoder, FCNConfig
from latentlab.models.multi_encoder import MultiFCNAutoencoder, MultiFCNConfig
from latentlab.models.vae import FCNVAE, ConvVAE, ConvVAEConfig, FCNVAEConfig

MODELS: dict[str, tuple[type[Autoencoder], type[Any]]] = {
    "fcn": (FCNAutoencoder, FCNConfig),
    "multi-fcn": (MultiFCNAutoencoder, MultiFCNConfig),
    "conv": (ConvAutoencoder, ConvConfig),
    "vae-fcn": (FCNVAE, FCNVAEConfig),
    "vae-conv": (ConvVAE, ConvVAEConfig),
}
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def config_class(kind: str) -> type[Any]:
    if kind not in MODELS:
        raise LatentlabError(f"model kind '{kind}': expected one of {', '.join(MODELS)}")
    return MODELS[kind][1]


def config_from_dict(data: Any, source: str = "model config") -> Any:
    """Rebuild a frozen config from its JSON form; unknown kinds or fields are one-line errors."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise LatentlabError(f"{source}: expected an object with a 'kind'")
    cls = config_class(data["kind"])
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise LatentlabError(f"{source}: unknown field(s) {', '.join(unknown)} for kind '{data['kind']}'")
    try:
        return cls(**{k: tuples(v) for k, v in data.items()})
    except TypeError as exc:
        raise LatentlabError(f"{source}: {exc}") from None


def build(config: Any) -> Autoencoder:
    kind = getattr(config, "kind", None)
    if kind not in MODELS:
        raise LatentlabError(f"model kind '{kind}': expected one of {', '.join(MODELS)}")
    return MODELS[kind][0](config)


def save_weights(model: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def load_weights(model: torch.nn.Module, path: str | os.PathLike[str]) -> None:
    path = Path(path)
    if not path.is_file():
        raise LatentlabError(f"{path}: weights not found (expected a {WEIGHTS} file)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LatentlabError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise LatentlabError(f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, value in tensors.items():
        if value.shape != expected[name].shape:
            raise LatentlabError(
                f"{path}: weight '{name}' has shape {tuple(value.shape)}, expected {tuple(expected[name].shape)}")
    model.load_state_dict(tensors)


def save_model(model: Autoencoder, folder: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` (with any ``extra`` sections) and ``model.safetensors``."""
    folder = Path(folder)
    save_weights(model, folder / WEIGHTS)
    config_path = folder / CONFIG
    existing = read_json(config_path, "run config") if config_path.exists() else {}
    write_json(config_path, {**existing, **(extra or {}), "model": config_to_dict(model.config)})
    return folder


def load_model(folder: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Autoencoder:
    """Rebuild a model from a folder of ``config.json`` + ``model.safetensors`` (eval mode)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LatentlabError(f"{folder}: run folder not found")
    config = read_json(folder / CONFIG, "run config")
    if not isinstance(config, dict) or "model" not in config:
        raise LatentlabError(f"{folder / CONFIG}: expected a 'model' section")
    model = build(config_from_dict(config["model"], source=str(folder / CONFIG)))
    load_weights(model, folder / WEIGHTS)
    return model.to(map_location).eval()
