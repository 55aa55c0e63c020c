"""Training into a run folder: files written, resume, early stopping, refusals."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from latentlab.data import BatchSpec, load_source
from latentlab.errors import LatentlabError
from latentlab.models import FCNConfig, FCNVAEConfig
from latentlab.runs import open_run
from latentlab.train.api import resume_run, train_run
from latentlab.train.trainer import TrainConfig


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


TINY = FCNConfig(in_shape=(3, 64, 64), hidden=(32,), latent_dim=3)


@pytest.fixture(scope="module")
def faces():
    return load_source("faces:160")


def test_run_folder_has_everything(tmp_path, faces) -> None:
    from latentlab.viz.plots import LossPlot

    out = tmp_path / "run"
    train_run(TINY, faces, BatchSpec(), TrainConfig(epochs=2, batch_size=32), out, progress=False,
              callbacks=[LossPlot(out / "loss.png")])
    for name in ("config.json", "model.safetensors", "metrics.csv", "loss.png", "COMPLETE"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["kind"] == "fcn" and config["data"]["spec"] == "faces:160"
    assert config["train"]["epochs"] == 2 and config["data"]["rule"]["value_range"] == [-1.0, 1.0]
    rows = read_rows(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train_loss", "val_loss", "lr", "seconds"} <= set(rows[0])
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    run = open_run(out)
    assert run.complete and run.model.latent_dim == 3


def test_vae_logs_every_term(tmp_path, faces) -> None:
    out = tmp_path / "vae"
    config = FCNVAEConfig(hidden=(32,), latent_dim=3, beta=0.5)
    train_run(config, faces, BatchSpec(), TrainConfig(epochs=1, batch_size=32), out, progress=False)
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_loss", "train_recon", "train_kl", "val_kl"} <= set(header)


def test_resume_continues_where_it_stopped_and_matches(tmp_path, faces) -> None:
    cfg = TrainConfig(epochs=3, batch_size=32, seed=3)
    full = tmp_path / "full"
    train_run(TINY, faces, BatchSpec(), cfg, full, progress=False)

    part = tmp_path / "part"
    train_run(TINY, faces, BatchSpec(), TrainConfig(epochs=1, batch_size=32, seed=3), part, progress=False)
    resume_run(part, faces, progress=False, epochs=3)
    rows = read_rows(part / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    a, b = load_file(str(full / "model.safetensors")), load_file(str(part / "model.safetensors"))
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_early_stopping_stops_before_the_last_epoch(tmp_path, faces) -> None:
    out = tmp_path / "es"
    # a learning rate of zero never improves: patience 1 stops after the second epoch
    cfg = TrainConfig(epochs=6, batch_size=32, lr=1e-12, optimizer="sgd", patience=1)
    train_run(TINY, faces, BatchSpec(), cfg, out, progress=False)
    rows = read_rows(out / "metrics.csv")
    assert len(rows) < 6


def test_existing_folder_is_refused_and_left_intact(tmp_path, faces) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(LatentlabError, match="--overwrite"):
        train_run(TINY, faces, BatchSpec(), TrainConfig(epochs=1), out, progress=False)
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "config.json").exists()


def test_model_and_data_shapes_must_match(tmp_path) -> None:
    digits = load_source("digits")
    with pytest.raises(LatentlabError, match="does not match the data"):
        train_run(TINY, digits, BatchSpec(), TrainConfig(epochs=1), tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_divergence_stops_with_the_step(tmp_path, faces) -> None:
    out = tmp_path / "nan"
    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e30, optimizer="sgd")
    with pytest.raises(LatentlabError, match=r"at step \d+"):
        train_run(TINY, faces, BatchSpec(), cfg, out, progress=False)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, "--epochs 0"),
    ({"lr": -1.0}, "--lr"),
    ({"optimizer": "adagrad"}, "--optimizer adagrad"),
    ({"precision": "8"}, "--precision 8"),
    ({"val_fraction": 1.0}, "--val-fraction"),
])
def test_bad_train_options(kwargs, match) -> None:
    with pytest.raises(LatentlabError, match=match):
        TrainConfig(**kwargs)
