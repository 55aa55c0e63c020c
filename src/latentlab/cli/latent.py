"""``latentlab reconstruct`` and ``latentlab edit``: look at what the model does to an image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from latentlab.cli.common import OVERWRITE, command, console, parse_ints

if TYPE_CHECKING:
    from latentlab.latent.apply import EditResult

app = typer.Typer()


@command(app, "reconstruct")
def reconstruct_cmd(
    run: Path = typer.Argument(..., help="a run folder"),
    data: str | None = typer.Option(None, "--data", help="data spec (default: the run's training data)"),
    index: str = typer.Option("0,1,2,3", "--index", help="image indices, e.g. 0,5,9"),
    out: Path = typer.Option(Path("reconstruction.png"), "--out"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Original above, reconstruction below, with the per-image error."""
    from latentlab.latent.figures import reconstruct_run

    rec = reconstruct_run(run, data, parse_ints(index, "--index") or [], out, overwrite=overwrite)
    for i, m in zip(rec.rows, rec.mse, strict=True):
        console.print(f"image {i}: reconstruction MSE {m:.5f}", highlight=False)
    console.print(f"figure written to {out}")


@command(app, "edit")
def edit_cmd(
    run: Path = typer.Argument(..., help="a run folder"),
    edit: list[str] = typer.Option(..., "--edit", help="latent edit, e.g. 'z[0]*=3', 'z+=0.5'; 'a;b' is one panel"),
    data: str | None = typer.Option(None, "--data", help="data spec (default: the run's training data)"),
    index: str = typer.Option("0", "--index", help="image indices, e.g. 7 or 0,5"),
    out: Path = typer.Option(Path("edit.png"), "--out"),
    json_path: Path | None = typer.Option(None, "--json", help="JSON (default <out stem>.json)"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Original | reconstruction | each edit with its difference map and measured description."""
    from latentlab.latent.figures import edit_run

    report = edit_run(run, data, parse_ints(index, "--index") or [], edit, out, json_path, overwrite=overwrite)
    print_edit_table(report.result, report.rows)
    for n, i in enumerate(report.rows):
        for e, d in zip(report.result.edits, report.descriptions[n], strict=True):
            console.print(f"image {i}, {e.text}: {d.text}", highlight=False)
    figure, json_file = report.files
    if report.note:
        console.print(f"note: {report.note}", highlight=False, soft_wrap=True)
    console.print(f"figure written to {figure}; descriptions written to {json_file}")


def print_edit_table(result: EditResult, rows: list[int]) -> None:
    D = result.z.shape[1]
    for n, i in enumerate(rows):
        table = Table(title=f"image {i}: latent values", title_justify="left")
        table.add_column("edit")
        table.add_column("elements")
        table.add_column("before")
        table.add_column("after")
        for e, ze in zip(result.edits, result.z_edited, strict=True):
            pos = e.positions(D)
            shown = pos[:6]
            more = "" if len(pos) <= 6 else f" ... ({len(pos)} elements)"
            table.add_row(e.text, ",".join(map(str, shown)) + more,
                          ", ".join(f"{result.z[n, p]:.4g}" for p in shown),
                          ", ".join(f"{ze[n, p]:.4g}" for p in shown))
        console.print(table)
