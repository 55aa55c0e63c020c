"""``latentlab runs``: one row per run folder (model, data, epochs, best loss, anomaly AUC, state)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from latentlab.cli.common import command, console

if TYPE_CHECKING:
    from latentlab.runs_table import RunRow

app = typer.Typer()


@command(app, "runs")
def runs_cmd(
    folder: Path = typer.Argument(Path("runs"), help="a folder of run folders (searched a few levels deep)"),
    csv: bool = typer.Option(False, "--csv", help="print CSV instead of a table"),
    sort: str = typer.Option("run", "--sort", help="column to sort by (prefix - for descending), e.g. best_val_loss"),
) -> None:
    """One row per run folder: model and parameters, data, epochs done/planned, best validation
    loss, anomaly ROC AUC (of the latest `evaluate`), auto AUC (the auto score's, on
    pseudo-anomalies), state (complete, resumable, damaged)."""
    from latentlab.runs_table import runs_table, sort_rows

    rows = sort_rows(runs_table(folder), sort)
    if not rows:
        console.print(f"{folder}: no runs here (no folder holds config.json, model.safetensors or checkpoint/)",
                      highlight=False, soft_wrap=True)
        return
    if csv:
        _print_csv(rows)
        return
    from rich.table import Table

    table = Table(title=str(folder))
    numbers = ("parameters", "epochs", "best val loss", "anomaly AUC", "auto AUC")
    for name in ("run", "model", "parameters", "data", "epochs", "best val loss", "anomaly AUC", "auto AUC", "state"):
        table.add_column(name, justify="right" if name in numbers else "left", no_wrap=name == "state")
    for r in rows:
        state = {"complete": "[green]complete[/]", "resumable": "[yellow]resumable[/]"}.get(r.state, "[red]damaged[/]")
        table.add_row(r.run, r.model or "-", "-" if r.parameters is None else f"{r.parameters:,}", r.data or "-",
                      r.epochs, "-" if r.best_val_loss is None else f"{r.best_val_loss:.5g}",
                      "-" if r.anomaly_auc is None else f"{r.anomaly_auc:.4f}",
                      "-" if r.auto_auc is None else f"{r.auto_auc:.4f}", state)
    console.print(table)
    for r in rows:
        if r.problem:
            console.print(f"{r.run}: {r.state}: {r.problem}", highlight=False, soft_wrap=True)


def _print_csv(rows: list[RunRow]) -> None:
    import csv as csv_module
    import io

    from latentlab.runs_table import COLUMNS

    buf = io.StringIO()
    writer = csv_module.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.as_dict() for r in rows)
    typer.echo(buf.getvalue(), nl=False)
