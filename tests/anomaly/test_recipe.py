"""``--recipe anomaly``: the model, input rule and budget of latentlab/configs/anomaly.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentlab.anomaly.recipe import load_recipe, recipe
from latentlab.errors import LatentlabError


def test_the_recipe_for_64x64_faces() -> None:
    from latentlab.models import build
    from latentlab.train.trainer import TrainConfig

    model_config, train = recipe("anomaly", (3, 64, 64), (-1.0, 1.0))
    assert model_config.kind == "conv" and model_config.channels == (24, 48, 96, 192)
    assert model_config.in_shape == (3, 64, 64) and model_config.out_activation == "tanh"
    assert model_config.latent_dim == 128 and model_config.batchnorm
    config = TrainConfig(**train)
    assert config.val_fraction > 0  # auto and the threshold need images the model never trained on
    assert config.epochs is not None and config.epochs * 4320 <= 200_000  # the 5-minute budget at 64x64
    model = build(model_config)
    assert 1_000_000 < model.num_parameters() < 2_000_000


def test_the_recipe_adapts_to_the_input() -> None:
    small, _ = recipe("anomaly", (1, 28, 28), (0.0, 1.0))
    assert small.channels == (24, 48) and small.out_activation == "sigmoid"  # 28 -> 14 -> 7
    assert recipe("anomaly", (3, 32, 48), (-1.0, 1.0))[0].channels == (24, 48, 96, 192)
    with pytest.raises(LatentlabError, match="cannot be halved"):
        recipe("anomaly", (3, 27, 27), (-1.0, 1.0))


def test_every_choice_is_explained() -> None:
    found = load_recipe("anomaly")
    assert found.score == "auto" and found.about
    assert set(found.why) >= {"model", "budget", "validation"}


def test_bad_recipes_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(LatentlabError, match="--recipe faces: expected one of anomaly"):
        load_recipe("faces")
    (tmp_path / "r.json").write_text(json.dumps({"model": {"kind": "conv"}, "train": {"epochz": 3}}))
    with pytest.raises(LatentlabError, match="unknown train setting.*epochz"):
        load_recipe(path=tmp_path / "r.json").train_overrides()
    (tmp_path / "r.json").write_text(json.dumps({"train": {}}))
    with pytest.raises(LatentlabError, match="'model' section"):
        load_recipe(path=tmp_path / "r.json")


def test_a_recipe_run_trains_and_chooses_its_score(tmp_path: Path) -> None:
    """The whole path on a few generated faces: a recipe file shaped like anomaly.json, with a
    tiny model and a one-epoch budget (the real recipe runs in test_faces_anomaly.py, slow)."""
    import latentlab
    from latentlab.anomaly.auto import resolve_auto
    from latentlab.data import BatchSpec
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    shipped = json.loads((Path(latentlab.__file__).parent / "configs" / "anomaly.json").read_text())
    shipped["model"].update(channels=[4, 8, 8, 8], latent_dim=6)
    shipped["train"]["epochs"] = 1
    (tmp_path / "tiny.json").write_text(json.dumps(shipped))
    tiny = load_recipe(path=tmp_path / "tiny.json")
    model_config = tiny.model_config((3, 64, 64), (-1.0, 1.0))
    train_run(model_config, "faces:120", BatchSpec(**tiny.rule), TrainConfig(**tiny.train_overrides()),
              tmp_path / "run", progress=False)
    choice = resolve_auto(tmp_path / "run")
    assert choice.n_held_out == 12 and choice.path is not None
    assert "features" in {k for c in choice.candidates for k in c.parts}


def test_train_recipe_on_the_command_line(tmp_path: Path) -> None:
    """``train --recipe anomaly``: the recipe's model and budget, a typed option winning over
    the recipe, the score chosen and stored at the end; model options are refused in one line."""
    from typer.testing import CliRunner

    from latentlab.anomaly.auto import stored_choice
    from latentlab.cli.app import app
    from latentlab.runs import read_config

    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", "faces:60", "--recipe", "anomaly", "--epochs", "1",
                                 "--batch-size", "16", "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    config = read_config(tmp_path / "run")
    assert config["model"]["channels"] == [24, 48, 96, 192] and config["model"]["latent_dim"] == 128
    assert config["train"]["epochs"] == 1 and config["train"]["batch_size"] == 16  # typed: they win
    assert config["train"]["lr"] == load_recipe("anomaly").train["lr"]  # not typed: the recipe's
    assert config["train"]["precision"] == "bf16-mixed"
    assert "auto chose" in result.output and stored_choice(tmp_path / "run") is not None
    assert "transform classifier trained" in result.output and (tmp_path / "run" / "transforms.json").is_file()
    assert config["recipe"]["transforms"] == load_recipe("anomaly").transforms  # what --resume needs
    candidates = stored_choice(tmp_path / "run").candidates  # type: ignore[union-attr]
    assert {"transforms", "transform-features"} <= {k for c in candidates for k in c.parts}

    # stopped after the autoencoder, before the classifier: --resume trains the classifier
    for name in ("transforms.json", "transforms.safetensors"):
        (tmp_path / "run" / name).unlink()
    resumed = runner.invoke(app, ["train", "--resume", "--out", str(tmp_path / "run"), "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert "transform classifier trained" in resumed.output and (tmp_path / "run" / "transforms.json").is_file()
    # the new classifier changes the weights' key: the resumed run chooses its score again, as a fresh one does
    assert "auto chose" in resumed.output and stored_choice(tmp_path / "run") is not None

    refused = runner.invoke(app, ["train", "--data", "faces:60", "--recipe", "anomaly", "--model", "fcn",
                                  "--out", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "--recipe anomaly chooses the model; drop --model" in refused.output
    assert not (tmp_path / "other").exists()
    unknown = runner.invoke(app, ["train", "--data", "faces:60", "--recipe", "faces", "--out", str(tmp_path / "x")])
    assert unknown.exit_code == 2 and "expected one of anomaly" in unknown.output
