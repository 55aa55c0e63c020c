"""``latentlab score``, ``evaluate`` and ``oneclass`` end to end on generated files, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


@pytest.fixture(scope="module")
def npy_files(tmp_path_factory, mixed_set):  # type: ignore[no-untyped-def]
    images, labels = mixed_set
    folder = tmp_path_factory.mktemp("npy")
    np.save(folder / "testingset.npy", images)
    np.save(folder / "labels.npy", labels)
    return folder


def read_csv(path):  # type: ignore[no-untyped-def]
    lines = path.read_text().splitlines()
    assert lines[0] == "ID,score"
    ids, scores = zip(*(line.split(",") for line in lines[1:]), strict=True)
    return np.array(ids, dtype=int), np.array(scores, dtype=float)


def test_score_writes_the_course_file_streamed_in_batches(tiny_run, npy_files, tmp_path):
    from latentlab.anomaly.scores import score_images
    from latentlab.runs import open_run

    out = tmp_path / "prediction.csv"
    result = invoke("score", tiny_run, "--data", f"npy:{npy_files / 'testingset.npy'}", "--out", out,
                    "--batch-size", 10, "--score", "course", "--quiet")
    assert result.exit_code == 0, result.output
    ids, scores = read_csv(out)
    images = np.load(npy_files / "testingset.npy")
    np.testing.assert_array_equal(ids, np.arange(len(images)))
    run = open_run(tiny_run)
    expected = score_images(run.model, run.inputs(images), "course").numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert not list(tmp_path.glob(".*tmp"))  # atomic: no temporary file left behind


def test_score_refuses_an_existing_file_unless_overwrite(tiny_run, npy_files, tmp_path):
    out = tmp_path / "prediction.csv"
    out.write_text("keep me\n")
    data = f"npy:{npy_files / 'testingset.npy'}"
    one_line_error(invoke("score", tiny_run, "--data", data, "--out", out), "exists", "--overwrite")
    assert out.read_text() == "keep me\n"
    result = invoke("score", tiny_run, "--data", data, "--out", out, "--overwrite", "--score", "combined",
                    "--quiet")
    assert result.exit_code == 0, result.output
    assert len(read_csv(out)[0]) == 64


def test_score_elbo_needs_a_vae(tiny_run, tiny_vae_run, npy_files, tmp_path):
    data = f"npy:{npy_files / 'testingset.npy'}"
    one_line_error(invoke("score", tiny_run, "--data", data, "--out", tmp_path / "a.csv", "--score", "elbo"),
                   "needs a variational model")
    assert not (tmp_path / "a.csv").exists()
    result = invoke("score", tiny_vae_run, "--data", data, "--out", tmp_path / "b.csv", "--score", "elbo", "--quiet")
    assert result.exit_code == 0, result.output


def test_evaluate_prints_aucs_and_writes_figures(tiny_run, npy_files, tmp_path):
    result = invoke("evaluate", tiny_run, "--data", f"npy:{npy_files / 'testingset.npy'}",
                    "--labels", npy_files / "labels.npy", "--score", "combined", "--out-dir", tmp_path,
                    "--k", 3, "--quiet")
    assert result.exit_code == 0, result.output
    roc = float(result.output.split("ROC AUC")[1].split()[0])
    assert roc > 0.95  # uniform noise among faces
    assert "PR AUC" in result.output
    for name in ("roc.png", "histogram.png", "tradeoff.png", "most_anomalous.png", "least_anomalous.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_evaluate_labels_as_a_filter_over_the_data(tiny_run, tmp_path):
    result = invoke("evaluate", tiny_run, "--data", "faces:40:3", "--labels", "label==1", "--out-dir", tmp_path,
                    "--prefix", "smile_", "--train-where", "label==0", "--score", "mahalanobis", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "smile_roc.png").is_file()
    one_line_error(invoke("evaluate", tiny_run, "--data", "faces:40:3", "--labels", "label==1", "--out-dir",
                          tmp_path / "other", "--train-where", "label==9"), "--train-where", "selects no rows")


def test_evaluate_bad_inputs(tiny_run, npy_files, tmp_path):
    data = f"npy:{npy_files / 'testingset.npy'}"
    np.save(tmp_path / "short.npy", np.array([0, 1, 0]))
    np.save(tmp_path / "ones.npy", np.ones(64, int))
    (tmp_path / "labels.txt").write_text("0 1\n")
    base = ("evaluate", tiny_run, "--data", data, "--out-dir", tmp_path / "figs")
    one_line_error(invoke(*base, "--labels", tmp_path / "short.npy"), "3 labels for 64 images")
    one_line_error(invoke(*base, "--labels", tmp_path / "labels.txt"), "2 labels for 64 images")
    one_line_error(invoke(*base, "--labels", tmp_path / "ones.npy"), "single class", "undefined")
    one_line_error(invoke(*base, "--labels", npy_files / "labels.npy", "--score", "elbo"), "variational")
    one_line_error(invoke(*base, "--labels", "label==1"), "unknown name 'label'")
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "roc.png").write_bytes(b"old")
    one_line_error(invoke(*base, "--labels", npy_files / "labels.npy"), "roc.png", "exists")
    assert (tmp_path / "figs" / "roc.png").read_bytes() == b"old"
    assert not (tmp_path / "figs" / "histogram.png").exists()


@pytest.mark.slow  # one of the longest: runs with the slow set, keeping the fast set under 5 minutes
def test_oneclass_on_a_tiny_idx_folder(digits_idx, tmp_path):
    config = {"model": {"kind": "fcn", "hidden": [64], "latent_dim": 8},
              "train": {"epochs": 10, "batch_size": 32, "lr": 0.003, "val_fraction": 0.0, "seed": 0},
              "score": {"kind": "combined", "parts": ["mse", "mahalanobis"]}}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    result = invoke("oneclass", "--data", f"idx:{digits_idx}", "--normal", "all", "--config", tmp_path / "cfg.json",
                    "--out", tmp_path / "runs", "--quiet")
    assert result.exit_code == 0, result.output
    assert "mean" in result.output
    for k in range(3):
        assert f"class {k}: ROC AUC" in result.output
        assert (tmp_path / "runs" / f"class_{k}" / "COMPLETE").is_file()
    aucs = [float(line.split("ROC AUC")[1].split()[0]) for line in result.output.splitlines()
            if line.startswith("class ")]
    assert np.mean(aucs) > 0.9  # 8x8 digits, ~100 training images per class


def test_oneclass_bad_inputs(digits_idx, tmp_path):
    one_line_error(invoke("oneclass", "--data", f"idx:{digits_idx}", "--normal", "12"), "--normal 12",
                   "no such class", "0, 1, 2")
    one_line_error(invoke("oneclass", "--data", f"idx:{digits_idx}", "--normal", "three"), "--normal")
    one_line_error(invoke("oneclass", "--data", "faces:20", "--normal", "0"), "train and test split")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    one_line_error(invoke("oneclass", "--data", f"idx:{digits_idx}", "--normal", "0", "--out", tmp_path / "out"),
                   "exists", "--overwrite")


def test_the_fixed_protocol_config_builds_the_mnist_model():
    from latentlab.anomaly.oneclass import check_config, load_config

    cfg = load_config()
    model_config = cfg.model_config((1, 28, 28))
    assert model_config.in_shape == (1, 28, 28)
    assert cfg.train_config().epochs >= 1
    check_config(cfg, (1, 28, 28))  # the score and reported kinds fit the model


@pytest.mark.parametrize(("score", "words"), [
    ({"kind": "elbo"}, ["needs a variational model"]),
    ({"kind": "mahalanobis", "report": ["gmm"]}, ["report 'gmm'"]),
    ({"kind": "combined", "parts": ["mse", "combined"]}, ["cannot be a part of itself"]),
    ("mse", ["'score' to be an object"]),
])
def test_oneclass_config_errors_come_before_training(digits_idx, tmp_path, score, words):
    config = {"model": {"kind": "fcn", "hidden": [8], "latent_dim": 2}, "train": {"epochs": 1}, "score": score}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    result = invoke("oneclass", "--data", f"idx:{digits_idx}", "--normal", "0", "--config", tmp_path / "cfg.json",
                    "--out", tmp_path / "runs")
    one_line_error(result, *words)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- auto, thresholds and predictions


@pytest.fixture
def old_run(tiny_run, tmp_path):  # type: ignore[no-untyped-def]
    """The tiny run as a run trained before ``--score auto`` existed: no stored choice."""
    import shutil

    from latentlab.anomaly.auto import CHOICE_FILE

    folder = tmp_path / "old"
    shutil.copytree(tiny_run, folder, ignore=shutil.ignore_patterns(CHOICE_FILE))
    return folder


def test_evaluate_defaults_to_auto_and_explains_it(old_run, npy_files, tmp_path):
    from latentlab.anomaly.auto import CHOICE_FILE

    result = invoke("evaluate", old_run, "--data", f"npy:{npy_files / 'testingset.npy'}",
                    "--labels", npy_files / "labels.npy", "--out-dir", tmp_path / "eval", "--quiet")
    assert result.exit_code == 0, result.output
    stored = json.loads((old_run / CHOICE_FILE).read_text())  # chosen on first use and stored
    assert f"score auto: {stored['name']}" in result.output
    assert stored["sentence"] in " ".join(result.output.split())
    assert "without labels (the 0.95 quantile of 26 held-out normal images' scores" in result.output
    assert "with the best F1 (chosen with the labels)" in result.output
    assert (tmp_path / "eval" / "tradeoff.png").stat().st_size > 1000
    again = invoke("evaluate", old_run, "--data", f"npy:{npy_files / 'testingset.npy'}",
                   "--labels", npy_files / "labels.npy", "--out-dir", tmp_path / "eval", "--overwrite", "--quiet")
    assert again.exit_code == 0 and stored["sentence"] in " ".join(again.output.split())


def test_score_writes_predictions_at_the_threshold_set_without_labels(tiny_run, npy_files, tmp_path):
    from latentlab.anomaly.detector import ReconstructionDetector
    from latentlab.anomaly.evaluate import normal_images
    from latentlab.runs import open_run

    out, flags = tmp_path / "prediction.csv", tmp_path / "labels.csv"
    result = invoke("score", tiny_run, "--data", f"npy:{npy_files / 'testingset.npy'}", "--out", out,
                    "--labels-out", flags, "--score", "mse", "--contamination", "0.1", "--quiet")
    assert result.exit_code == 0, result.output
    _, scores = read_csv(out)
    lines = flags.read_text().splitlines()
    assert lines[0] == "ID,label" and len(lines) == 65
    predicted = np.array([int(line.split(",")[1]) for line in lines[1:]])
    run = open_run(tiny_run)
    normal = normal_images(run)
    det = ReconstructionDetector(run, score="mse", contamination=0.1).fit(normal.fit, held_out=normal.held_out)
    assert det.threshold_ == pytest.approx(np.quantile(det.held_out_scores_, 0.9))
    np.testing.assert_array_equal(predicted, (scores > det.threshold_).astype(int))
    assert f"{predicted.sum()} of 64 flagged" in result.output


def test_score_labels_out_bad_inputs(tiny_run, npy_files, tmp_path):
    data = f"npy:{npy_files / 'testingset.npy'}"
    out = tmp_path / "p.csv"
    one_line_error(invoke("score", tiny_run, "--data", data, "--out", out, "--labels-out", out), "same file")
    one_line_error(invoke("score", tiny_run, "--data", data, "--out", out, "--labels-out", tmp_path / "l.csv",
                          "--contamination", "0.7"), "--contamination 0.7")
    one_line_error(invoke("score", tiny_run, "--data", data, "--out", out, "--score", "combined",
                          "--combine", "mean"), "--combine mean", "sum, max")
    one_line_error(invoke("score", tiny_run, "--data", data, "--out", out, "--score", "best"),
                   "score 'best'", "or auto")
    assert not out.exists()


def test_score_auto_on_a_run_whose_training_data_is_gone(old_run, npy_files, tmp_path):
    config = json.loads((old_run / "config.json").read_text())
    config["data"]["spec"] = f"npy:{tmp_path / 'gone.npy'}"
    (old_run / "config.json").write_text(json.dumps(config))
    result = invoke("score", old_run, "--data", f"npy:{npy_files / 'testingset.npy'}", "--out", tmp_path / "p.csv")
    one_line_error(result, "gone.npy", "auto score is chosen", "--train-data")
    result = invoke("score", old_run, "--data", f"npy:{npy_files / 'testingset.npy'}", "--out", tmp_path / "p.csv",
                    "--train-data", "faces:256", "--quiet")
    assert result.exit_code == 0, result.output
    assert "auto chose" in result.output


def test_a_oneclass_config_may_ask_for_auto(digits_idx, tmp_path):
    from latentlab.anomaly.oneclass import check_config, load_config, run_oneclass

    config = {"model": {"kind": "fcn", "hidden": [32], "latent_dim": 4},
              "train": {"epochs": 2, "batch_size": 32, "lr": 0.003, "val_fraction": 0.0, "seed": 0},
              "score": {"kind": "auto", "report": ["mse"]}}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    cfg = load_config(tmp_path / "cfg.json")
    check_config(cfg, (1, 8, 8))
    [result] = run_oneclass(f"idx:{digits_idx}", "0", cfg)
    assert 0.0 <= result.roc_auc <= 1.0
