"""A VQ-VAE's code is edited before quantisation: ``edit`` says so (the issue's "a VQ code that is
edited into a non-code"), in its output and in its JSON; other models say nothing of the kind."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.latent.tools import QUANTISED_NOTE

runner = CliRunner()


def _train(out: Path, *model: str) -> None:
    result = runner.invoke(app, ["train", "--data", "faces:32", *model, "--hidden", "16", "--latent-dim", "8",
                                 "--epochs", "1", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output


def test_edit_of_a_vq_code_says_it_acts_before_quantisation(tmp_path: Path) -> None:
    _train(tmp_path / "vq", "--model", "vq-vae", "--backbone", "fcn", "--codebook-size", "16")
    result = runner.invoke(app, ["edit", str(tmp_path / "vq"), "--edit", "z[0]*=3", "--out", str(tmp_path / "e.png")])
    assert result.exit_code == 0, result.output
    assert "before quantisation" in " ".join(result.output.split())
    assert json.loads((tmp_path / "e.json").read_text())["note"] == QUANTISED_NOTE

    _train(tmp_path / "ae", "--model", "fcn")
    plain = runner.invoke(app, ["edit", str(tmp_path / "ae"), "--edit", "z[0]*=3", "--out", str(tmp_path / "a.png")])
    assert plain.exit_code == 0 and "quantisation" not in plain.output
    assert "note" not in json.loads((tmp_path / "a.json").read_text())
