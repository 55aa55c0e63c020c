"""``latentlab reconstruct`` and ``latentlab edit``: look at what the model does to an image."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from latentlab.cli.common import command, console, parse_ints

app = typer.Typer()


def _open(run: Path, data: str | None, index: list[int]):  # type: ignore[no-untyped-def]
    from latentlab.runs import open_run

    r = open_run(run)
    images = r.data(data)
    rows = images.check_index(index)
    return r, images, r.inputs(images, rows), rows


@command(app, "reconstruct")
def reconstruct_cmd(
    run: Path = typer.Argument(..., help="a run folder"),
    data: str | None = typer.Option(None, "--data", help="data spec (default: the run's training data)"),
    index: str = typer.Option("0,1,2,3", "--index", help="image indices, e.g. 0,5,9"),
    out: Path = typer.Option(Path("reconstruction.png"), "--out"),
) -> None:
    """Original above, reconstruction below, with the per-image error."""
    from latentlab.data.batches import to_uint8
    from latentlab.latent.apply import reconstruct
    from latentlab.losses import per_image_mse
    from latentlab.viz.grids import image_grid

    r, _, x, rows = _open(run, data, parse_ints(index, "--index") or [])
    _, x_hat = reconstruct(r.model, x)
    mse = per_image_mse(x_hat, x)
    originals, recons = to_uint8(x, r.value_range), to_uint8(x_hat, r.value_range)
    image_grid([list(originals), list(recons)],
               [[f"#{i}" for i in rows], [f"MSE {m:.4f}" for m in mse.tolist()]], out,
               row_labels=["original", "reconstruction"])
    for i, m in zip(rows, mse.tolist(), strict=True):
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
) -> None:
    """Original | reconstruction | each edit with its difference map and measured description."""
    from latentlab.latent.edits import parse_edit_groups

    edits = parse_edit_groups(edit)  # syntax errors before any loading; "a;b" is one combined panel
    r, _, x, rows = _open(run, data, parse_ints(index, "--index") or [])
    from latentlab.io import write_json
    from latentlab.latent.apply import edit_images
    from latentlab.latent.tools import describe_edit_result
    from latentlab.viz.edits import edit_figure

    result = edit_images(r.model, x, edits)
    descriptions = describe_edit_result(r, result, data)
    edit_figure(result, rows, r.value_range, out, descriptions=descriptions)
    json_path = json_path or out.with_name(out.stem + ".json")
    images = [{"index": i, "edits": [{"edit": e.text, **d.to_dict()}
                                     for e, d in zip(edits, per_image, strict=True)]}
              for i, per_image in zip(rows, descriptions, strict=True)]
    write_json(json_path, {"run": str(run), "data": data or r.data_spec, "value_range": list(r.value_range),
                           "images": images})
    print_edit_table(result, rows)
    for n, i in enumerate(rows):
        for e, d in zip(edits, descriptions[n], strict=True):
            console.print(f"image {i}, {e.text}: {d.text}", highlight=False)
    console.print(f"figure written to {out}; descriptions written to {json_path}")


def print_edit_table(result, rows: list[int]) -> None:  # type: ignore[no-untyped-def]
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
