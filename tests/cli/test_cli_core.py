"""The core commands through typer's runner: train, summary, reconstruct, edit, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *needles: str) -> None:
    """Exit 2, one line naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = result.output.strip()
    for needle in needles:
        assert needle in " ".join(text.split()), text


def test_train_writes_a_run_and_prints_progress(tmp_path) -> None:
    out = tmp_path / "run"
    result = invoke("train", "--data", "faces:96", "--model", "fcn", "--hidden", "16", "--latent-dim", "3",
                    "--epochs", "2", "--batch-size", "32", "--out", out)
    assert result.exit_code == 0, result.output
    assert "epoch 2" in result.output and "img/s" in result.output
    assert (out / "COMPLETE").is_file()
    again = invoke("train", "--data", "faces:96", "--out", out)
    assert_user_error(again, "exists", "--overwrite")
    resumed = invoke("train", "--out", out, "--resume", "--epochs", "3")
    assert resumed.exit_code == 0, resumed.output
    assert (out / "metrics.csv").read_text().count("\n") == 4  # header + 3 epochs


def test_train_options_reach_the_run(tmp_path) -> None:
    out = tmp_path / "denoise"
    result = invoke("train", "--data", "digits", "--model", "conv", "--channels", "4,8", "--latent-dim", "5",
                    "--resize", "8", "--range", "0,1", "--noise", "0.1", "--epochs", "1", "--optimizer", "adamw",
                    "--weight-decay", "0.01", "--val-fraction", "0.2", "--seed", "4", "--quiet", "--out", out)
    assert result.exit_code == 0, result.output
    import json

    config = json.loads((out / "config.json").read_text())
    assert config["model"]["channels"] == [4, 8] and config["model"]["out_activation"] == "sigmoid"
    assert config["data"]["rule"]["noise"] == 0.1 and config["train"]["optimizer"] == "adamw"


def test_summary_table_and_repr() -> None:
    result = invoke("summary", "--preset", "hw8-conv")
    assert result.exit_code == 0, result.output
    assert "47,355" in result.output and "ConvTranspose2d" in result.output
    assert "Units." not in result.output and "Total mult-adds (M):" in result.output  # torchinfo 1.8 on 3.11+
    rules = [line for line in result.output.splitlines() if line and set(line) == {"="}]
    assert len(rules) >= 3 and len({len(line) for line in rules}) == 1  # the table's rules are not wrapped
    result = invoke("summary", "--preset", "hw8-fcn", "--repr")
    assert "Linear(in_features=12288, out_features=128, bias=True)" in result.output


def test_reconstruct_and_edit(tiny_run, tmp_path) -> None:
    fig = tmp_path / "rec.png"
    result = invoke("reconstruct", tiny_run, "--data", "faces:20", "--index", "0,5,9", "--out", fig)
    assert result.exit_code == 0, result.output
    assert fig.stat().st_size > 1000 and "reconstruction MSE" in result.output
    fig = tmp_path / "edit.png"
    result = invoke("edit", tiny_run, "--data", "faces:20", "--index", "7", "--edit", "z[0]*=3", "--edit",
                    "z[0]/=3", "--edit", "z[2]=8", "--edit", "z+=0.5", "--out", fig)
    assert result.exit_code == 0, result.output
    assert fig.stat().st_size > 1000
    assert "8" in result.output and "z[2]=8" in result.output


@pytest.mark.parametrize(("args", "needles"), [
    (["train", "--data", "npy:/nope/x.npy", "--out", "{tmp}/r"], ["/nope/x.npy", "not found"]),
    (["train", "--data", "faces:50", "--preset", "hw9", "--out", "{tmp}/r"], ["preset 'hw9'"]),
    (["train", "--data", "faces:50", "--model", "transformer", "--out", "{tmp}/r"], ["model kind 'transformer'"]),
    (["train", "--data", "faces:50", "--precision", "fp8", "--out", "{tmp}/r"], ["--precision fp8"]),
    (["train", "--data", "faces:50", "--range", "0,2,3", "--out", "{tmp}/r"], ["0,2,3"]),
    (["train", "--data", "faces:50", "--preset", "hw8-fcn", "--beta", "2", "--out", "{tmp}/r"], ["beta"]),
    (["edit", "{run}", "--edit", "z[0]**=3", "--out", "{tmp}/e.png"], ["z[0]**=3"]),
    (["edit", "{run}", "--data", "faces:20", "--edit", "z[9]*=3", "--out", "{tmp}/e.png"], ["z[9]*=3", "out of range"]),
    (["edit", "{run}", "--data", "faces:20", "--index", "99", "--edit", "z[0]=1", "--out", "{tmp}/e.png"],
     ["index 99"]),
    (["reconstruct", "{tmp}", "--out", "{tmp}/r.png"], ["config.json"]),
    (["summary", "--preset", "nope"], ["preset 'nope'"]),
    (["reconstruct", "{run}", "--data", "digits", "--out", "{tmp}/r.png"], ["--data digits", "expects"]),
])
def test_bad_input_is_one_line_exit_2(args, needles, tiny_run, tmp_path) -> None:
    args = [a.format(tmp=tmp_path, run=tiny_run) for a in args]
    assert_user_error(invoke(*args), *needles)


def test_run_without_weights_or_with_unknown_kind(tiny_run, tmp_path) -> None:
    import json
    import shutil

    broken = tmp_path / "noweights"
    shutil.copytree(tiny_run, broken)
    (broken / "model.safetensors").unlink()
    assert_user_error(invoke("reconstruct", broken, "--out", tmp_path / "a.png"), "weights not found")
    odd = tmp_path / "oddkind"
    shutil.copytree(tiny_run, odd)
    config = json.loads((odd / "config.json").read_text())
    config["model"]["kind"] = "gan"
    (odd / "config.json").write_text(json.dumps(config))
    assert_user_error(invoke("reconstruct", odd, "--out", tmp_path / "a.png"), "model kind 'gan'")


def test_npy_course_format_trains(tmp_path) -> None:
    path = tmp_path / "trainingset.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (64, 64, 64, 3), dtype=np.uint8))
    result = invoke("train", "--data", f"npy:{path}", "--preset", "hw8-conv", "--epochs", "1", "--quiet",
                    "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("argv", "needle"), [
    (["train", "--epochs", "abc", "--out", "x"], "--epochs"),
    (["nosuch"], "No such command"),
    (["train", "--bogus"], "--bogus"),
])
def test_entry_point_usage_errors_are_one_line(argv, needle, capsys) -> None:
    from latentlab.cli.app import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_joined_edits_are_one_combined_panel(tiny_run, tmp_path) -> None:
    import json

    out = tmp_path / "chain.png"
    result = invoke("edit", tiny_run, "--data", "faces:20", "--index", "3", "--edit", "z[0]=1.5;z[1]+=0.5",
                    "--edit", "z[2]*=2", "--out", out)
    assert result.exit_code == 0, result.output
    saved = json.loads(out.with_suffix(".json").read_text())
    assert [e["edit"] for e in saved["images"][0]["edits"]] == ["z[0]=1.5;z[1]+=0.5", "z[2]*=2"]
