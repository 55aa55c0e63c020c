"""The one config base: every kind validates its shared fields and every layer-width tuple the same way."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from latentlab.errors import LatentlabError
from latentlab.models import MODELS, FCNConfig, FCNVAEConfig, config_from_dict, kind_config
from latentlab.models.base import config_to_dict
from latentlab.models.config import ModelConfig, _checked_fields

# Every layer-width field of every kind, written out here so that a new one must be added on purpose
# (and is then checked by the tests below); a kind missing from this table fails the first test.
WIDTH_FIELDS = {
    "fcn": {"hidden", "decoder_hidden"},
    "multi-fcn": {"encoders", "decoder_hidden"},
    "conv": {"channels"},
    "vae-fcn": {"hidden", "decoder_hidden"},
    "vae-conv": {"channels"},
    "resnet": {"channels"},
    "vae-resnet": {"channels"},
}
# the families on each backbone have that backbone's width fields and no others
BACKBONE_WIDTHS = {"fcn": {"hidden", "decoder_hidden"}, "conv": {"channels"}, "resnet": {"channels"}}
FAMILY_NAMES = ("beta-vae", "denoising", "sparse", "contractive", "beta-tcvae", "wae", "vq-vae")
WIDTH_FIELDS |= {f"{family}-{backbone}": widths
                 for family in FAMILY_NAMES for backbone, widths in BACKBONE_WIDTHS.items()}
NESTED = {"encoders"}
CASES = [(kind, name) for kind in sorted(WIDTH_FIELDS) for name in sorted(WIDTH_FIELDS[kind])]


def test_every_kind_shares_the_base_and_its_width_fields_are_known() -> None:
    assert set(WIDTH_FIELDS) == set(MODELS)
    for kind, (_, cls) in MODELS.items():
        assert issubclass(cls, ModelConfig)
        assert {name for name, _, _ in _checked_fields(cls).widths} == WIDTH_FIELDS[kind], kind


def widths_with(kind: str, name: str, bad: object) -> object:
    """A valid value of field ``name`` with one width replaced by ``bad``."""
    value = getattr(kind_config(kind), name)
    if name in NESTED:
        return (value[0], (*value[1][:-1], bad))
    if name == "decoder_hidden" and value is None:
        value = (8, 4)
    return (*value[:-1], bad)


@pytest.mark.parametrize(("kind", "name"), CASES)
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_every_width_tuple_rejects_a_bad_width(kind: str, name: str, bad: object) -> None:
    value = widths_with(kind, name, bad)
    with pytest.raises(LatentlabError) as info:
        kind_config(kind, **{name: value})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}[1] " if name in NESTED else f"{name} ")
    assert repr(bad) in message and "expected" in message and "positive integer" in message


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_every_width_tuple_rejects_a_non_tuple(kind: str, name: str) -> None:
    with pytest.raises(LatentlabError, match=f"^{name} 64: expected"):
        kind_config(kind, **{name: 64})


def test_fcn_vae_decoder_hidden_zero_raises() -> None:
    """The drift the base was made for: FCNVAEConfig used to build a zero-width decoder layer."""
    with pytest.raises(LatentlabError, match=r"^decoder_hidden \(0,\): expected a tuple of positive integer"):
        FCNVAEConfig(decoder_hidden=(0,))
    assert FCNVAEConfig(decoder_hidden=(8,)).decoder_sizes == (8,)
    assert FCNVAEConfig(hidden=(32, 16)).decoder_sizes == (16, 32)


def test_empty_and_none_widths_where_they_mean_something() -> None:
    assert FCNConfig(hidden=()).hidden == ()  # Linear straight to the latent (preset fcn-1024)
    assert FCNConfig(hidden=(64, 32), decoder_hidden=None).decoder_sizes == (32, 64)  # mirrored
    with pytest.raises(LatentlabError, match=r"^channels \(\): expected at least one"):
        kind_config("conv", channels=())
    with pytest.raises(LatentlabError, match="at least one encoder"):
        kind_config("multi-fcn", encoders=())
    with pytest.raises(LatentlabError, match="^hidden None: expected"):
        FCNConfig(**{"hidden": None})


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_shared_fields_are_validated_once_for_every_kind(kind: str) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"in_shape": (3, 64)}, "input shape"),
        ({"in_shape": (3, 0, 64)}, "input shape"),
        ({"activation": "swishy"}, "activation 'swishy'"),
        ({"out_activation": "relu6"}, "output activation 'relu6'"),
        ({"batchnorm": "yes"}, "batchnorm 'yes': expected true or false"),
        ({"kind": "other"}, "kind 'other': expected"),
    ]
    for overrides, message in bad:
        with pytest.raises(LatentlabError, match=message):
            dataclasses.replace(kind_config(kind), **overrides)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_configs_are_keyword_only(kind: str) -> None:
    with pytest.raises(TypeError):
        MODELS[kind][1]((3, 64, 64))


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_json_round_trip_for_every_kind(kind: str) -> None:
    config = kind_config(kind)
    assert config_from_dict(config_to_dict(config)) == config


NEW_FIELDS = {"recon_loss": "mse"}  # fields added to every kind after these runs were saved, at the old behaviour

# config.json "model" sections as main wrote them before the base existed (fields in the old order)
OLD_SAVED: list[dict[str, Any]] = [
    {"in_shape": [3, 64, 64], "hidden": [128, 64, 12], "latent_dim": 3, "decoder_hidden": None,
     "batchnorm": False, "activation": "relu", "out_activation": "tanh", "kind": "fcn"},
    {"in_shape": [3, 64, 64], "encoders": [[3000, 3000, 1000], [1000, 100, 100, 100], [2500, 1500, 500, 100]],
     "latent_per_encoder": 1, "decoder_hidden": [100, 500, 1500, 2500], "batchnorm": True,
     "decoder_batchnorm": False, "activation": "relu", "out_activation": "tanh", "kind": "multi-fcn"},
    {"in_shape": [1, 28, 28], "channels": [12, 24], "kernel": 4, "stride": 2, "padding": 1, "latent_dim": 8,
     "batchnorm": True, "activation": "relu", "out_activation": "sigmoid", "kind": "conv"},
    {"in_shape": [3, 64, 64], "hidden": [512, 128], "latent_dim": 16, "decoder_hidden": None,
     "batchnorm": False, "activation": "relu", "out_activation": "tanh", "beta": 4.0, "kind": "vae-fcn"},
    {"in_shape": [3, 64, 64], "channels": [12, 24, 48], "kernel": 4, "stride": 2, "padding": 1,
     "latent_dim": None, "batchnorm": False, "activation": "relu", "head_activation": "relu",
     "out_activation": "tanh", "beta": 1.0, "kind": "vae-conv"},
]


@pytest.mark.parametrize("saved", OLD_SAVED, ids=[d["kind"] for d in OLD_SAVED])
def test_configs_saved_before_the_base_still_load(saved: dict[str, Any]) -> None:
    config = config_from_dict(saved)
    assert type(config) is MODELS[saved["kind"]][1]
    written = json.loads(json.dumps(config_to_dict(config)))
    assert {k: written[k] for k in saved} == saved  # the same field names and values; only the key order moved
    assert {k: v for k, v in written.items() if k not in saved} == NEW_FIELDS  # fields added since: old defaults
