"""The architecture diagram: every preset draws a valid image whose blocks account for every parameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.errors import LatentlabError
from latentlab.models import PRESETS, build, kind_config, load_model, preset_config
from latentlab.viz.architecture import draw_diagram, trace_architecture


def meta_model(name: str):  # type: ignore[no-untyped-def]
    """The preset built on the meta device: shapes and parameter counts without 500 MB of weights."""
    with torch.device("meta"):
        return build(preset_config(name))


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_draws_a_valid_png(name: str, tmp_path: Path) -> None:
    model = meta_model(name)
    path = draw_diagram(model, tmp_path / f"{name}.png")
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        width, height = im.size
        assert width >= 500 and height >= 600  # room for readable blocks
        assert len(np.unique(np.asarray(im.convert("L")))) > 10  # not blank


@pytest.mark.parametrize("name", list(PRESETS))
def test_blocks_account_for_every_parameter(name: str) -> None:
    model = meta_model(name)
    arch = trace_architecture(model)
    assert arch.encoder_params + arch.decoder_params == model.num_parameters()
    flat = (int(np.prod(model.in_shape)),)
    assert arch.decoder and arch.decoder[-1].shape in (model.in_shape, flat)


def test_multi3_has_three_branches_each_giving_one_latent_element() -> None:
    arch = trace_architecture(meta_model("fcn-multi3"))
    assert len(arch.encoder) == 3
    assert [len(b) for b in arch.encoder] == [4, 5, 5]
    assert all(branch[-1].shape == (1,) for branch in arch.encoder)
    assert arch.encoder[0][0].label == "Linear 12288→3000 · BN · ReLU"


def test_vae_shows_mu_and_logvar_heads() -> None:
    arch = trace_architecture(build(preset_config("hw8-vae")))
    assert [name for name, _ in arch.heads] == ["mu", "logvar"]
    assert all(blocks[-1].shape == (48, 8, 8) for _, blocks in arch.heads)
    assert arch.decoder[0].layers[0] == "ConvT 48→24 k4 s2"


def test_svg_by_extension(tmp_path: Path) -> None:
    path = draw_diagram(build(kind_config("vae-conv", latent_dim=8)), tmp_path / "arch.svg")
    text = path.read_text(encoding="utf-8")
    assert "<svg" in text[:2000]


def test_trained_run_draws(tiny_run: Path, tmp_path: Path) -> None:
    model = load_model(tiny_run)
    draw_diagram(model, tmp_path / "run.png")
    assert model.training is False  # the trace left the mode as it was
    with Image.open(tmp_path / "run.png") as im:
        assert im.size[0] > 0


def test_unknown_extension_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(LatentlabError, match=r"\.png, \.svg or \.pdf"):
        draw_diagram(build(preset_config("hw8-conv")), tmp_path / "arch.txt")
    assert list(tmp_path.iterdir()) == []


def test_cli_summary_diagram(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["summary", "--preset", "hw8-fcn", "--diagram", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.png").stat().st_size > 1000
    bad = runner.invoke(app, ["summary", "--preset", "hw8-fcn", "--diagram", str(tmp_path / "a.jpeg2")])
    assert bad.exit_code == 2
    assert "Traceback" not in bad.output
