"""``latentlab disentanglement``, ``latentlab sweep`` and ``summary``'s active units, with bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.errors import LatentlabError
from latentlab.metrics import SCORES, disentanglement
from latentlab.metrics.sweep import parse_sizes, suggest_size

runner = CliRunner()
SMALL = ("--num-train", "120", "--num-eval", "60", "--batch-size", "8", "--quiet")


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, text


def test_disentanglement_prints_and_saves_json(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.json"
    result = invoke("disentanglement", tiny_run, "--data", "faces", "--out", out, *SMALL)
    assert result.exit_code == 0, result.output
    assert "MIG" in result.output and "DCI disentanglement" in result.output
    saved = json.loads(out.read_text())
    assert set(saved["scores"]) == set(SCORES)
    assert all(0.0 <= v <= 1.0 for v in saved["scores"].values())
    assert saved["factors"] == ["hue", "face_width", "eye_size", "mouth", "head_turn", "background"]
    assert_user_error(invoke("disentanglement", tiny_run, "--data", "faces", "--out", out, *SMALL),
                      "exists", "--overwrite")


def test_disentanglement_on_data_without_factors_names_the_sources(tiny_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "plain.npy"
    np.save(path, np.random.default_rng(0).integers(0, 255, (20, 64, 64, 3), dtype=np.uint8))
    result = invoke("disentanglement", tiny_run, "--data", f"npy:{path}", "--out", tmp_path / "s.json", *SMALL)
    assert_user_error(result, "no known factors", "shapes, faces")
    assert not (tmp_path / "s.json").exists()


def test_disentanglement_on_shapes_refuses_a_model_of_other_images(tiny_run: Path, tmp_path: Path) -> None:
    result = invoke("disentanglement", tiny_run, "--data", "shapes", "--out", tmp_path / "s.json", *SMALL)
    assert_user_error(result, "--data shapes", "the model expects (3, 64, 64)")


def test_labelled_set_with_factor_columns_gets_the_observational_scores(tiny_run: Path) -> None:
    from latentlab.data.sources import load_source
    from latentlab.metrics.truth import to_levels

    faces = load_source("faces:200:5")
    result = disentanglement(tiny_run, "faces:200:5", num_train=120, num_eval=60, batch_size=8)
    assert "beta_vae" in result["scores"]  # faces can draw images: all five
    from latentlab.metrics.evaluate import evaluate_observed

    codes = np.random.default_rng(0).normal(size=(200, 3))
    observed = evaluate_observed(codes, faces.factors, num_eval=60)
    assert set(observed["scores"]) == {"mig", "sap", "dci_disentanglement", "dci_completeness",
                                       "dci_informativeness"}
    assert "beta_vae" in observed["skipped"]
    assert to_levels(faces.factors["hue"]).max() == 19  # continuous: 20 equal-width bins


def test_summary_shows_active_units(tiny_run: Path) -> None:
    result = invoke("summary", tiny_run)
    assert result.exit_code == 0, result.output
    assert "active units:" in result.output and "of 4" in result.output


@pytest.mark.parametrize("sizes", ["", " , ", "2,four", "2.5", "0,2", "4,4"])
def test_sweep_size_lists_that_are_empty_or_not_integers_are_refused(sizes: str, tmp_path: Path) -> None:
    with pytest.raises(LatentlabError, match="--latent-dim"):
        parse_sizes(sizes)
    result = invoke("sweep", "--latent-dim", sizes, "--model", "fcn", "--data", "faces:64", "--budget", "1s",
                    "--out", tmp_path / "sweep")
    assert_user_error(result, "--latent-dim")
    assert not (tmp_path / "sweep").exists()


def test_suggested_size_is_where_the_curve_flattens() -> None:
    assert parse_sizes("16, 2,4") == [2, 4, 16]
    assert suggest_size([2, 4, 8, 16, 32], [1.0, 0.5, 0.2, 0.15, 0.14]) == 8
    assert suggest_size([2, 4, 8], [0.3, 0.3, 0.3]) == 2
    assert suggest_size([2, 4, 8], [1.0, 0.9, 0.05]) == 8


def test_sweep_trains_each_size_then_reuses_complete_runs(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ("sweep", "--latent-dim", "2,3", "--model", "fcn", "--data", "faces:128", "--budget", "2s",
            "--batch-size", "32", "--out", out, "--quiet")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "suggested latent size" in first.output
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [int(r["latent_dim"]) for r in rows] == [2, 3]
    assert all(float(r["recon_error"]) > 0 and float(r["pca_error"]) > 0 for r in rows)
    assert all(0 <= int(r["active_units"]) <= int(r["latent_dim"]) for r in rows)
    assert (out / "sweep.png").stat().st_size > 1000
    assert json.loads((out / "sweep.json").read_text())["suggested"] in (2, 3)
    assert_user_error(invoke(*args), "sweep.csv", "exists")
    (out / "latent-3" / "COMPLETE").unlink()  # as if killed before the end: resumed, not restarted
    again = invoke(*args, "--overwrite")
    assert again.exit_code == 0, again.output
    assert "latent 2: reused" in again.output and "latent 3: resumed" in again.output


def test_an_npz_can_name_factor_columns(tiny_run: Path, tmp_path: Path) -> None:
    from latentlab.data.sources import load_source

    faces = load_source("faces:160:7")
    names = ["hue", "mouth"]
    path = tmp_path / "labelled.npz"
    np.savez(path, x=faces.images, factors=np.stack([faces.factors[k] for k in names], 1),
             factor_names=np.array(names))
    loaded = load_source(f"npz:{path}")
    assert list(loaded.factors) == names and np.allclose(loaded.factors["mouth"], faces.factors["mouth"])
    result = disentanglement(tiny_run, f"npz:{path}", num_train=100, num_eval=60)
    assert set(result["scores"]) == {"mig", "sap", "dci_disentanglement", "dci_completeness",
                                     "dci_informativeness"}
    assert "chosen factor values" in result["skipped"]["factor_vae"]
    np.savez(tmp_path / "bad.npz", x=faces.images, factors=np.zeros((160, 2)), factor_names=np.array(["a"]))
    with pytest.raises(LatentlabError, match="factor_names"):
        load_source(f"npz:{tmp_path / 'bad.npz'}")


def test_sweep_figure_title_keeps_only_the_last_part_of_a_path() -> None:
    from latentlab.viz.sweep import _short

    assert _short("conv on celeba:/a/b/faces.tar#train") == "conv on celeba:faces.tar#train"
    assert _short("fcn on npy:/data/x.npy") == "fcn on npy:x.npy"
    assert _short("ae on mnist") == "ae on mnist" and _short("ae on faces:256") == "ae on faces:256"
