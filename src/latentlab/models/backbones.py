"""The backbones a family can sit on, and how a family file makes its kinds from them.

A family (sparse, contractive, WAE, ...) changes the *objective* or the *latent* of an
autoencoder, not its layers: its file declares a config-field class and a model mixin, and
:func:`on_backbones` makes one concrete kind per backbone, named ``FAMILY-BACKBONE`` as the
existing ``vae-fcn`` / ``vae-conv`` (``sparse-fcn``, ``sparse-conv``, ``sparse-resnet``). The
registry maps each kind to its classes; ``--model sparse --backbone conv`` resolves to
``sparse-conv`` (see :func:`latentlab.models.registry.resolve_kind`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from latentlab.models.base import Autoencoder
from latentlab.models.conv import ConvAutoencoder, ConvConfig
from latentlab.models.fcn import FCNAutoencoder, FCNConfig
from latentlab.models.resnet import ResNetAutoencoder, ResNetConfig, ResNetVAE, ResNetVAEConfig
from latentlab.models.vae import FCNVAE, ConvVAE, ConvVAEConfig, FCNVAEConfig

BACKBONES = ("fcn", "conv", "resnet")
Kinds = dict[str, tuple[type[Autoencoder], type[Any]]]  # kind -> (model class, config class)

# the plain and the variational model of each backbone
AE_BACKBONES: Kinds = {"fcn": (FCNAutoencoder, FCNConfig), "conv": (ConvAutoencoder, ConvConfig),
                       "resnet": (ResNetAutoencoder, ResNetConfig)}
VAE_BACKBONES: Kinds = {"fcn": (FCNVAE, FCNVAEConfig), "conv": (ConvVAE, ConvVAEConfig),
                        "resnet": (ResNetVAE, ResNetVAEConfig)}


def on_backbones(family: str, fields: type[Any], mixin: type[Autoencoder], bases: Kinds,
                 backbones: tuple[str, ...] = BACKBONES) -> Kinds:
    """One model and config class per backbone: config ``(fields, base config)`` and model
    ``(mixin, base model)``, both with ``kind = f"{family}-{backbone}"``."""
    out: Kinds = {}
    for backbone in backbones:
        model_base, config_base = bases[backbone]
        kind = f"{family}-{backbone}"
        stem = fields.__name__.removesuffix("Fields") + {"fcn": "FCN", "conv": "Conv", "resnet": "ResNet"}[backbone]
        namespace = {"__annotations__": {"kind": "str"}, "kind": kind, "__module__": fields.__module__,
                     "__qualname__": f"{stem}Config", "__doc__": f"``{kind}``: {fields.__doc__}"}
        config_cls: type[Any] = dataclasses.dataclass(frozen=True, kw_only=True)(
            type(f"{stem}Config", (fields, config_base), namespace))
        model_cls = type(stem, (mixin, model_base), {"kind": kind, "__module__": fields.__module__,
                                                     "__qualname__": stem, "__doc__": mixin.__doc__})
        out[kind] = (model_cls, config_cls)
    return out
