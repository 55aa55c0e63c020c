"""One contract over every model kind and preset: shapes, save -> load -> same output, learning."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentlab.errors import LatentlabError
from latentlab.losses import model_loss
from latentlab.models import (
    MODELS,
    PARAMETER_COUNTS,
    PRESETS,
    AEOutput,
    DiagonalGaussian,
    build,
    config_from_dict,
    kind_config,
    load_model,
    preset_config,
    save_model,
)
from latentlab.models.base import config_to_dict

SMALL = (3, 16, 16)


SMALL_MULTI = {"encoders": ((32, 16), (24,), (16, 8)), "decoder_hidden": (16, 32)}
SMALL_RESNET = {"channels": (8, 16), "latent_dim": 8}  # the residual backbone of every family, narrower


def small_configs():
    """Every kind and every preset, shrunk to 16x16 inputs so the suite stays fast (the
    multi-encoder's 3000-wide layers shrink too; its exact preset is checked by parameter count)."""
    for kind in MODELS:
        extra = SMALL_MULTI if kind == "multi-fcn" else SMALL_RESNET if kind.endswith("resnet") else {}
        yield f"kind:{kind}", kind_config(kind, in_shape=SMALL, **extra)
    for name in PRESETS:
        shape = (1, 28, 28) if name == "mnist-fcn2" else SMALL
        extra = SMALL_MULTI if name == "fcn-multi3" else {}
        yield f"preset:{name}", preset_config(name, in_shape=shape, **extra)


CONFIGS = dict(small_configs())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts_match_design(name: str) -> None:
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = build(preset_config(name))
    assert model.num_parameters() == PARAMETER_COUNTS[name]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_model_contract(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = build(CONFIGS[name])
    x = torch.rand(4, *model.in_shape) * 2 - 1

    # the verbs: encode -> (N, D) or a posterior, decode -> image shaped, forward -> AEOutput
    model.eval()
    encoded = model.encode(x)
    z = encoded.mode() if isinstance(encoded, DiagonalGaussian) else encoded
    assert isinstance(encoded, DiagonalGaussian) == model.is_variational
    assert z.shape == (4, model.latent_dim)
    assert torch.equal(model.embed(x), z)
    out = model(x)
    assert isinstance(out, AEOutput)
    assert out.x_hat.shape == x.shape
    assert model.decode(z).shape == x.shape
    assert (out.posterior is not None) == model.is_variational

    # save -> load -> identical output
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert config_to_dict(loaded.config) == config_to_dict(model.config)
    assert torch.equal(loaded(x).x_hat, out.x_hat)

    # one optimizer step on a fixed batch lowers the loss
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = torch.rand(8, *model.in_shape) * 2 - 1

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # same posterior sample for a VAE before and after the step
        return model_loss(model, batch, batch).total

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < before.item()


def test_config_json_round_trip_and_errors() -> None:
    config = preset_config("fcn-multi3")
    data = config_to_dict(config)
    assert config_from_dict(data) == config
    with pytest.raises(LatentlabError, match="model kind 'nope'"):
        config_from_dict({**data, "kind": "nope"})
    with pytest.raises(LatentlabError, match="unknown field"):
        config_from_dict({**data, "colour": 3})


@pytest.mark.parametrize("bad", [
    lambda: preset_config("hw9-fcn"),
    lambda: kind_config("fcn", hidden=(0, 3)),
    lambda: kind_config("fcn", activation="swishy"),
    lambda: kind_config("conv", in_shape=(3, 30, 30)),
    lambda: kind_config("vae-fcn", beta=-1.0),
    lambda: preset_config("hw8-fcn", beta=2.0),
])
def test_bad_model_configs_are_one_line_errors(bad) -> None:
    with pytest.raises(LatentlabError) as info:
        bad()
    assert "\n" not in str(info.value)


def test_course_code_on_a_loaded_model(tmp_path) -> None:
    """The course's own lines work: encoder on the flat image, edit z[0][0], decoder."""
    model = build(preset_config("hw8-fcn"))
    save_model(model, tmp_path / "run")
    import latentlab

    model = latentlab.load(str(tmp_path / "run"))
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    img_flat = img.reshape(2, -1)
    with torch.no_grad():
        z = model.encoder(img_flat)
        assert z.shape == (2, 3)
        ref = model.decoder(z.clone())
        z[0][0] *= 3
        out = model.decoder(z)
    assert out.shape == (2, 12288)
    assert not torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])
    assert torch.allclose(model.decode(model.encode(img)).reshape(2, -1), ref, atol=1e-6)


def test_multi_encoder_each_branch_gives_one_latent_element() -> None:
    config = dataclasses.replace(preset_config("fcn-multi3"), in_shape=SMALL, **SMALL_MULTI)
    model = build(config).eval()
    x = torch.rand(3, *SMALL)
    z = model.encode(x)
    for i, branch in enumerate(model.encoder.branches):
        assert torch.allclose(branch(x.flatten(1))[:, 0], z[:, i])
