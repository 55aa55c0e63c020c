"""``latentlab report``: one self-contained HTML page about a run (opens offline, images inlined)."""

from __future__ import annotations

from pathlib import Path

import typer

from latentlab.cli.common import OVERWRITE, check_out_file, command, console

app = typer.Typer()


@command(app, "report")
def report_cmd(
    run: Path = typer.Argument(..., help="a run folder"),
    data: str | None = typer.Option(None, "--data", help="data spec (default: the run's training data)"),
    out: Path | None = typer.Option(None, "--out", help="the page to write (default: RUN/report.html)"),
    overwrite: bool = OVERWRITE,
) -> None:
    """One self-contained HTML page about a run (default RUN/report.html).

    Architecture, loss curves, reconstructions, the course edits with measured descriptions, the
    ranked traversal and samples; images inlined, no network needed to open it.
    """
    from latentlab.report import REPORT, write_report

    out = check_out_file(out or run / REPORT, overwrite)
    with console.status(f"writing the report of {run}: reconstructions, edits, traversal, samples, metrics"):
        path = write_report(run, data, out)  # 10-20 s on 64x64 faces: a spinner on a terminal, nothing when piped
    console.print(f"report written to {path.resolve().as_uri()}", highlight=False, soft_wrap=True)
