"""``latentlab export``: a run's encoder, decoder and anomaly scorer as ONNX files."""

from __future__ import annotations

from pathlib import Path

import typer

from latentlab.cli.common import OVERWRITE, command, console
from latentlab.errors import LatentlabError

app = typer.Typer()

FORMATS = ("onnx",)


@command(app, "export")
def export_cmd(
    run: Path = typer.Argument(..., help="a run folder"),
    format: str = typer.Option("onnx", "--format", help="onnx"),
    out: Path = typer.Option(..., "--out", help="folder to write encoder.onnx, decoder.onnx, scorer.onnx into"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Write encoder.onnx, decoder.onnx and scorer.onnx (uint8 images -> anomaly score), dynamic batch size."""
    if format not in FORMATS:
        raise LatentlabError(f"--format {format}: expected one of {', '.join(FORMATS)}")
    from latentlab.export import export_onnx

    done = export_onnx(run, out, overwrite=overwrite)
    for path in done.files:
        console.print(str(path), highlight=False, soft_wrap=True)
    console.print(f"scorer: {done.score} ({done.why}); input uint8 (N, H, W, C), {done.scorer_input} pixels",
                  highlight=False, soft_wrap=True)
