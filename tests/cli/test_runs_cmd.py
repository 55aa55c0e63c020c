"""``latentlab runs [DIR]``: one row per run folder, complete / resumable / damaged, table and CSV."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.errors import LatentlabError
from latentlab.runs_table import runs_table, sort_rows

runner = CliRunner()


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a complete run, an interrupted one with a checkpoint, and damaged ones."""
    root = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["train", "--data", "faces:64", "--hidden", "16", "--latent-dim", "3", "--epochs",
                                 "2", "--batch-size", "16", "--quiet", "--out", str(root / "done")])
    assert result.exit_code == 0, result.output
    shutil.copytree(root / "done", root / "group" / "stopped")  # nested one level: still found
    (root / "group" / "stopped" / "COMPLETE").unlink()
    shutil.copytree(root / "done", root / "broken-config")
    (root / "broken-config" / "config.json").write_text("{not json")
    shutil.copytree(root / "done", root / "no-weights")
    (root / "no-weights" / "model.safetensors").unlink()
    shutil.copytree(root / "done", root / "unfinished")
    (root / "unfinished" / "COMPLETE").unlink()
    shutil.rmtree(root / "unfinished" / "checkpoint")
    (root / "notes").mkdir()  # not a run
    (root / "notes" / "readme.txt").write_text("hello")
    return root


def test_rows_and_states(runs_dir) -> None:
    rows = {r.run: r for r in runs_table(runs_dir)}
    assert set(rows) == {"done", "group/stopped", "broken-config", "no-weights", "unfinished"}
    done = rows["done"]
    assert (done.state, done.model, done.data, done.epochs, done.problem) == ("complete", "fcn", "faces:64", "2/2", "")
    with open(runs_dir / "done" / "metrics.csv", newline="") as fp:
        assert done.best_val_loss == pytest.approx(min(float(r["val_loss"]) for r in csv.DictReader(fp)))
    assert rows["group/stopped"].state == "resumable" and rows["group/stopped"].epochs_done == 2
    for name, why in (("broken-config", "config.json"), ("no-weights", "model.safetensors"),
                      ("unfinished", "checkpoint")):
        assert rows[name].state == "damaged" and why in rows[name].problem


def test_parameters_match_the_model(runs_dir) -> None:
    from latentlab.runs import Run

    row = next(r for r in runs_table(runs_dir) if r.run == "done")
    assert row.parameters == Run.open(runs_dir / "done").model.num_parameters()


def test_the_auto_auc_comes_from_the_stored_auto_choice(runs_dir, tmp_path) -> None:
    run = tmp_path / "r"
    shutil.copytree(runs_dir / "done", run)
    choice = {"name": "mse", "candidates": [{"score": "ssim", "mean_auc": 0.5}, {"score": "mse", "mean_auc": 0.875}]}
    (run / "anomaly_score.json").write_text(json.dumps(choice))
    (row,) = runs_table(tmp_path)
    assert row.auto_auc == 0.875 and row.anomaly_auc is None and row.state == "complete"


def test_the_anomaly_auc_is_the_latest_evaluation(runs_dir, tmp_path) -> None:
    """``latentlab evaluate`` records its ROC AUC in the run; the table shows it."""
    import numpy as np

    from latentlab.data import load_source

    run = tmp_path / "runs" / "r"
    shutil.copytree(runs_dir / "done", run)
    faces = load_source("faces:40").images
    np.save(tmp_path / "test.npy", np.concatenate([faces[:20], 255 - faces[20:]]))
    np.save(tmp_path / "labels.npy", np.r_[np.zeros(20), np.ones(20)].astype(np.int64))
    result = runner.invoke(app, ["evaluate", str(run), "--data", f"npy:{tmp_path / 'test.npy'}", "--score", "mse",
                                 "--labels", str(tmp_path / "labels.npy"), "--out-dir", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    recorded = json.loads((run / "evaluation.json").read_text())
    (row,) = runs_table(tmp_path / "runs")
    assert row.anomaly_auc == pytest.approx(recorded["roc_auc"]) and 0.0 <= row.anomaly_auc <= 1.0
    assert recorded["score"] == "mse" and recorded["n"] == 40 and recorded["n_anomalies"] == 20


def test_table_csv_and_sort(runs_dir, monkeypatch) -> None:
    from latentlab.cli import common

    monkeypatch.setattr(common.console, "width", 200)  # one line per row
    table = runner.invoke(app, ["runs", str(runs_dir)])
    assert table.exit_code == 0, table.output
    for needle in ("done", "complete", "resumable", "damaged", "faces:64", "2/2"):
        assert needle in table.output
    assert "Traceback" not in table.output
    result = runner.invoke(app, ["runs", str(runs_dir), "--csv", "--sort", "-state"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["state"] for r in rows] == sorted((r["state"] for r in rows), reverse=True)
    assert len(rows) == 5 and rows[0]["state"] == "resumable"


def test_sort_puts_missing_values_last(runs_dir) -> None:
    rows = sort_rows(runs_table(runs_dir), "parameters")
    assert rows[-1].parameters is None and rows[0].parameters is not None
    with pytest.raises(LatentlabError, match="--sort colour: expected one of run, model"):
        sort_rows(rows, "colour")


def test_empty_folder_says_so_and_bad_folder_is_one_line(tmp_path) -> None:
    result = runner.invoke(app, ["runs", str(tmp_path)])
    assert result.exit_code == 0 and "no runs here" in result.output
    missing = runner.invoke(app, ["runs", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a folder" in missing.output and "Traceback" not in missing.output


def test_a_run_trained_on_a_relative_path_works_from_another_folder(tmp_path, monkeypatch) -> None:
    """The run records its data with an absolute path: `edit` with the run's own data (no --data)
    works after a cd, as does `score --score auto`, which reads the training images again."""
    import json

    import numpy as np
    from typer.testing import CliRunner

    from latentlab.cli.app import app
    from latentlab.data.faces import make_faces

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    np.save(work / "faces.npy", make_faces(40, seed=0).images)
    monkeypatch.chdir(work)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", "npy:faces.npy", "--model", "fcn", "--epochs", "1",
                                  "--out", str(tmp_path / "run"), "--quiet"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["spec"] == f"npy:{work / 'faces.npy'}"
    monkeypatch.chdir(elsewhere)
    edited = runner.invoke(app, ["edit", str(tmp_path / "run"), "--edit", "z[0]*=2", "--out", "e.png"])
    assert edited.exit_code == 0, edited.output
    assert (elsewhere / "e.png").is_file()
    scored = runner.invoke(app, ["score", str(tmp_path / "run"), "--data", f"npy:{work / 'faces.npy'}",
                                 "--out", "s.csv"])
    assert scored.exit_code == 0, scored.output
    assert len((elsewhere / "s.csv").read_text().splitlines()) == 41
