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
from latentlab.models import beta_tcvae, beta_vae, contractive, denoising, sparse, vq_vae, wae
from latentlab.models.backbones import AE_BACKBONES, BACKBONES, VAE_BACKBONES, Kinds
from latentlab.models.base import Autoencoder, config_to_dict, tuples
from latentlab.models.cards import CARDS
from latentlab.models.multi_encoder import MultiFCNAutoencoder, MultiFCNConfig

# Concrete kinds: what config.json records. A family's kind is FAMILY-BACKBONE (vae-fcn, sparse-conv);
# the plain autoencoder's are the backbone names (fcn, conv, resnet), as before families existed.
MODELS: Kinds = {
    **AE_BACKBONES,
    "multi-fcn": (MultiFCNAutoencoder, MultiFCNConfig),
    **{f"vae-{backbone}": classes for backbone, classes in VAE_BACKBONES.items()},
    **beta_vae.KINDS, **denoising.KINDS, **sparse.KINDS, **contractive.KINDS, **beta_tcvae.KINDS,
    **wae.KINDS, **vq_vae.KINDS,
}

# Families, as `latentlab models` lists them and `--model NAME --backbone B` chooses them: backbone -> kind.
FAMILIES: dict[str, dict[str, str]] = {
    "ae": {backbone: backbone for backbone in BACKBONES},
    **{family: {backbone: f"{family}-{backbone}" for backbone in BACKBONES}
       for family in ("vae", "beta-vae", "denoising", "sparse", "contractive", "beta-tcvae", "wae", "vq-vae")},
}
DEFAULT_BACKBONE = {card.name: card.default_backbone for card in CARDS}
BACKBONE_OF = {kind: backbone for kinds in FAMILIES.values() for backbone, kind in kinds.items()} | {"multi-fcn": "fcn"}
FAMILY_OF = {kind: family for family, kinds in FAMILIES.items() for kind in kinds.values()} | {"multi-fcn": "ae"}
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _unknown(kind: object) -> LatentlabError:
    return LatentlabError(f"model kind '{kind}': expected a family ({', '.join(FAMILIES)}), a kind FAMILY-BACKBONE "
                          f"such as sparse-conv (backbones {', '.join(BACKBONES)}), or fcn, conv, resnet, multi-fcn")


def resolve_kind(kind: str, backbone: str | None = None) -> str:
    """The concrete kind of ``kind`` (a family name or a concrete kind) on ``backbone``:
    ``resolve_kind("sparse", "conv") == "sparse-conv"``; a family's default backbone when None."""
    if backbone is not None and backbone not in BACKBONES:
        raise LatentlabError(f"backbone '{backbone}': expected one of {', '.join(BACKBONES)}")
    if kind in FAMILIES:
        backbone = backbone or DEFAULT_BACKBONE[kind]
        if backbone not in FAMILIES[kind]:
            raise LatentlabError(f"model '{kind}' cannot use backbone '{backbone}': expected one of "
                                 f"{', '.join(FAMILIES[kind])}")
        return FAMILIES[kind][backbone]
    if kind not in MODELS:
        raise _unknown(kind)
    if backbone is not None and backbone != BACKBONE_OF[kind]:
        if kind == "multi-fcn":
            raise LatentlabError(f"model 'multi-fcn' cannot use backbone '{backbone}': expected fcn")
        raise LatentlabError(f"model kind '{kind}' is the {FAMILY_OF[kind]} family on the {BACKBONE_OF[kind]} "
                             f"backbone; for {backbone} use --model {FAMILY_OF[kind]} --backbone {backbone}")
    return kind


def config_class(kind: str) -> type[Any]:
    if kind not in MODELS:
        raise _unknown(kind)
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
        raise _unknown(kind)
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
