"""``latentlab summary``: what a model is, as a table, a module tree or a diagram."""

from __future__ import annotations

from pathlib import Path

import typer

from latentlab.cli.common import OVERWRITE, check_out_file, command, console
from latentlab.errors import LatentlabError

app = typer.Typer()


def model_for(target: str | None, preset: str | None, kind: str | None):  # type: ignore[no-untyped-def]
    from latentlab.models import build, kind_config, load_model, preset_config

    given = [v for v in (target, preset, kind) if v]
    if len(given) != 1:
        raise LatentlabError("summary: give one of RUN, --preset NAME or --model KIND")
    if preset:
        return build(preset_config(preset))
    if kind:
        return build(kind_config(kind))
    return load_model(Path(str(target)))


@command(app, "summary")
def summary(
    run: str | None = typer.Argument(None, help="a run folder"),
    preset: str | None = typer.Option(None, "--preset"),
    model: str | None = typer.Option(None, "--model", help="a model kind with default settings"),
    show_repr: bool = typer.Option(False, "--repr", help="print the module tree as print(model) does"),
    depth: int = typer.Option(4, "--depth", help="table depth"),
    diagram: Path | None = typer.Option(None, "--diagram", help="also draw the architecture to this PNG/SVG"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Print the layers with output shapes and parameter counts (and the total)."""
    if diagram is not None:
        check_out_file(diagram, overwrite)
    m = model_for(run, preset, model)
    if show_repr:
        console.print(repr(m), markup=False, highlight=False)
    else:
        from latentlab.viz.architecture import summary_table

        console.print(summary_table(m, depth=depth), markup=False, highlight=False, soft_wrap=True)
    console.print(f"{m.describe()}", highlight=False)
    if run is not None:
        from latentlab.latent.active import run_active_line

        console.print(run_active_line(run), highlight=False, soft_wrap=True)
    if diagram is not None:
        from latentlab.viz.architecture import draw_diagram

        draw_diagram(m, diagram)
        console.print(f"diagram written to {diagram}")
