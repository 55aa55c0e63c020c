"""``latentlab traverse | interpolate | sample | latent-map | attribute``: look around the latent space.

Each command parses its options, calls one function of :mod:`latentlab.latent.figures` (which
computes with :mod:`latentlab.latent.tools` and writes the figure) and prints what it measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from latentlab.cli.common import OVERWRITE, command, console, parse_floats, parse_ints

if TYPE_CHECKING:
    from latentlab.latent.tools import Traversal

app = typer.Typer()

RUN = typer.Argument(..., help="a run folder")
DATA = typer.Option(None, "--data", help="data spec (default: the run's training data)")
LIMIT = typer.Option(5000, "--limit", help="encode at most this many images for ranges and statistics")


@command(app, "traverse")
def traverse_cmd(
    run: Path = RUN,
    data: str | None = DATA,
    index: int = typer.Option(0, "--index", help="the image whose latent is traversed"),
    elements: str | None = typer.Option(None, "--elements", "--dims", help="latent elements, e.g. 0,2"),
    top: int | None = typer.Option(None, "--top", help="traverse the K highest-ranked elements (default 8)"),
    steps: int = typer.Option(9, "--steps", help="values per element, ends included"),
    rank_by: str = typer.Option("effect", "--rank-by", help="effect (output change per spread) or kl (VAE)"),
    gif: Path | None = typer.Option(None, "--gif", help="folder for one animated GIF per element"),
    limit: int = LIMIT,
    out: Path = typer.Option(Path("traverse.png"), "--out"),
    overwrite: bool = OVERWRITE,
) -> None:
    """One row per latent element decoded over its range; the elements ranked by their effect."""
    from latentlab.latent.figures import traverse_run

    t = traverse_run(run, data, index, out, elements=parse_ints(elements, "--elements"), top=top, steps=steps,
                     rank_by=rank_by, limit=limit, gif=gif, overwrite=overwrite)
    _print_ranking(t)
    figure, ranking_path, *_ = t.files
    if gif is not None:
        console.print(f"GIFs written to {gif}/ (z<element>.gif)")
    console.print(f"figure written to {figure}; ranking written to {ranking_path}")


def _print_ranking(t: Traversal) -> None:
    table = Table(title=f"latent elements ranked by {t.rank_by} (over {t.ranked_on} images)",
                  title_justify="left")
    for name in ("rank", "element", "effect", "spread", *(["KL"] if t.ranking[0].kl is not None else []),
                 "traversed"):
        table.add_column(name, justify="right")
    for rank, s in enumerate(t.ranking[:32], 1):
        kl = [f"{s.kl:.3g}"] if s.kl is not None else []
        table.add_row(str(rank), f"z[{s.element}]", f"{s.effect:.4g}", f"{s.spread:.4g}", *kl,
                      "yes" if s.element in t.elements else "")
    console.print(table)
    if len(t.ranking) > 32:
        console.print(f"... {len(t.ranking) - 32} more in the JSON file")


@command(app, "interpolate")
def interpolate_cmd(
    run: Path = RUN,
    data: str | None = DATA,
    start: int = typer.Option(..., "--from", help="index of the first image"),
    end: int = typer.Option(..., "--to", help="index of the last image"),
    steps: int = typer.Option(10, "--steps", help="decoded images, both ends included"),
    spherical: bool = typer.Option(False, "--spherical", help="walk the great circle (slerp)"),
    out: Path = typer.Option(Path("interpolate.png"), "--out"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Decode the latents on the way from one image's latent to another's."""
    from latentlab.latent.figures import interpolate_run

    i = interpolate_run(run, data, start, end, out, steps=steps, spherical=spherical, overwrite=overwrite)
    kind = "spherical" if spherical else "linear"
    console.print(f"{kind} interpolation #{i.start} -> #{i.end} in {steps} steps; figure written to {out}")


@command(app, "sample")
def sample_cmd(
    run: Path = RUN,
    data: str | None = DATA,
    n: int = typer.Option(64, "--n", help="number of samples per grid"),
    seed: int = typer.Option(0, "--seed"),
    limit: int = LIMIT,
    out: Path = typer.Option(Path("samples.png"), "--out"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Decode random latents: N(0, I) for a VAE; for a plain AE also a Gaussian fitted to its codes."""
    from latentlab.latent.figures import sample_run

    s = sample_run(run, data, out, n=n, seed=seed, limit=limit, overwrite=overwrite)
    for source, title, _ in s.sets:
        console.print(f"{source}: {title}", highlight=False)
    console.print(f"figure written to {out}")


@command(app, "latent-map")
def latent_map_cmd(
    run: Path = RUN,
    data: str | None = DATA,
    method: str = typer.Option("pca", "--method", help="pca or tsne (for a latent of more than 2 elements)"),
    limit: int = typer.Option(2000, "--limit", help="encode at most this many images"),
    grid: int = typer.Option(15, "--grid", help="decoded grid size for a 2-element latent"),
    out: Path = typer.Option(Path("latent_map.png"), "--out"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Scatter of the encoded data coloured by label; a 2-element latent also gets its decoded plane."""
    from latentlab.latent.figures import latent_map_run

    m = latent_map_run(run, data, out, method=method, limit=limit, grid=grid, overwrite=overwrite)
    what = {"plane": f"2-element latent: scatter and the decoded {grid} x {grid} plane",
            "identity": f"{m.latent_dim}-element latent: scatter of its values",
            "pca": f"{m.latent_dim}-element latent: PCA projection scatter",
            "tsne": f"{m.latent_dim}-element latent: t-SNE projection scatter"}[
        "plane" if m.kind == "plane" else m.method]
    console.print(f"{what}; figure written to {out}", highlight=False)


@command(app, "attribute")
def attribute_cmd(
    run: Path = RUN,
    data: str | None = DATA,
    where: str = typer.Option(..., "--where", help="the group, e.g. 'label==1' or 'mouth>0.5'"),
    versus: str | None = typer.Option(None, "--versus", help="the other group (default: every other image)"),
    apply_to: int = typer.Option(0, "--apply-to", help="index of the image to change"),
    strengths: str = typer.Option("-2,-1,0,1,2", "--strengths", help="multiples of the vector to add"),
    limit: int = LIMIT,
    out: Path = typer.Option(Path("attribute.png"), "--out"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Attribute vector: mean latent of one group minus the other, added to an image at several strengths."""
    from latentlab.latent.figures import attribute_run

    a = attribute_run(run, data, where, versus, apply_to, parse_floats(strengths, "--strengths") or [], out,
                      limit=limit, overwrite=overwrite)
    console.print(f"attribute vector: mean z of '{a.where}' ({a.n_where} images) minus '{a.versus}' "
                  f"({a.n_versus} images); length {float(a.vector.norm()):.4g}", highlight=False)
    for s, d in zip(a.strengths, a.descriptions, strict=True):
        if s != 0:
            console.print(f"strength {s:g}: {d.text}", highlight=False)
    console.print(f"figure written to {out}")
