"""The demo: the README's first command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.cli.demo import COURSE_EDITS, run_demo


def test_demo_writes_table_loss_and_course_edits(tmp_path) -> None:
    out = run_demo(tmp_path / "demo", n_images=200, epochs=1, progress=False)
    table = (out / "architecture.txt").read_text()
    assert "Total params" in table and "Linear" in table
    assert (out / "loss.png").stat().st_size > 1000
    assert (out / "edits.png").stat().st_size > 1000
    assert COURSE_EDITS == ["z[0]*=3", "z[0]/=3", "z[2]*=3", "z[2]/=3"]


@pytest.mark.slow
def test_demo_command_as_a_user_runs_it(tmp_path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "d") in " ".join(result.output.split())
    assert (tmp_path / "d" / "COMPLETE").is_file()
