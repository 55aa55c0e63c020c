"""The architectures people train, exactly (parameter counts are checked by the tests)."""

from __future__ import annotations

import dataclasses
from typing import Any

from latentlab.errors import LatentlabError
from latentlab.models.conv import ConvConfig
from latentlab.models.fcn import FCNConfig
from latentlab.models.multi_encoder import MultiFCNConfig
from latentlab.models.registry import config_class, resolve_kind
from latentlab.models.vae import ConvVAEConfig

PRESETS: dict[str, Any] = {
    # course sample: 12288-128-64-12-3, mirrored decoder, Tanh out
    "hw8-fcn": FCNConfig(hidden=(128, 64, 12), latent_dim=3),
    # course sample conv AE: Conv 3-12-24-48 (k4 s2 p1), ConvT back, Tanh
    "hw8-conv": ConvConfig(channels=(12, 24, 48)),
    # course sample conv VAE: trunk 3-12-24, conv heads 24-48 for mu and logvar (ReLU as in the course)
    "hw8-vae": ConvVAEConfig(channels=(12, 24, 48), head_activation="relu"),
    "fcn-1024": FCNConfig(hidden=(), latent_dim=1024),
    "fcn-deep128": FCNConfig(hidden=(2048, 512), latent_dim=128),
    "fcn-multi3": MultiFCNConfig(),
    "mnist-fcn2": FCNConfig(in_shape=(1, 28, 28), hidden=(64,), latent_dim=2),
}

PARAMETER_COUNTS = {
    "hw8-fcn": 3_176_419,
    "hw8-conv": 47_355,
    "hw8-vae": 65_835,
    "fcn-1024": 25_179_136,
    "fcn-deep128": 52_577_408,
    "fcn-multi3": 131_869_091,
    "mnist-fcn2": 101_522,
}


def preset_config(name: str, **overrides: Any) -> Any:
    """The preset's config with ``overrides`` (fields the preset's kind does not have are errors)."""
    if name not in PRESETS:
        raise LatentlabError(f"preset '{name}': expected one of {', '.join(PRESETS)}")
    return with_overrides(PRESETS[name], overrides, f"preset '{name}'")


def with_overrides(config: Any, overrides: dict[str, Any], what: str) -> Any:
    overrides = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        flags = ", ".join(f"{name} (--{name.replace('_', '-')})" for name in unknown)
        raise LatentlabError(f"{what} (kind '{config.kind}') has no option {flags}")
    return dataclasses.replace(config, **overrides)


def kind_config(kind: str, backbone: str | None = None, **overrides: Any) -> Any:
    """A default config of ``kind`` -- a concrete kind (``sparse-conv``) or a family name
    (``sparse``, ``ae``, ``vq-vae``) on ``backbone`` (fcn, conv, resnet; the family's default when
    None) -- with ``overrides``: ``kind_config("sparse", backbone="conv", latent_dim=16)``."""
    concrete = resolve_kind(kind, backbone)
    return with_overrides(config_class(concrete)(), overrides, f"model kind '{concrete}'")
