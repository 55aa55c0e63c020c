"""``latentlab traverse | interpolate | sample | latent-map | attribute``: look around the latent space.

Each command parses its options, calls :mod:`latentlab.latent.tools`, draws with
:mod:`latentlab.viz.latent` and prints what it measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import typer
from rich.table import Table

from latentlab.cli.common import command, console, parse_floats, parse_ints
from latentlab.errors import LatentlabError

app = typer.Typer()

RUN = typer.Argument(..., help="a run folder")
DATA = typer.Option(None, "--data", help="data spec (default: the run's training data)")
LIMIT = typer.Option(5000, "--limit", help="encode at most this many images for ranges and statistics")


def _open(run: Path, data: str | None):  # type: ignore[no-untyped-def]
    from latentlab.runs import open_run

    r = open_run(run)
    return r, r.data(data)


def _uint8_grid(images: torch.Tensor, value_range: tuple[float, float]) -> np.ndarray:
    """(R, S, C, H, W) model-space tensor -> uint8 (R, S, H, W, C)."""
    from latentlab.data.batches import to_uint8

    flat = to_uint8(images.flatten(0, 1), value_range)  # (R*S, H, W, C)
    return flat.reshape(images.shape[0], images.shape[1], *flat.shape[1:])


def _sibling(out: Path, suffix: str) -> Path:
    return out.with_name(out.stem + suffix)


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
) -> None:
    """One row per latent element decoded over its range; the elements ranked by their effect."""
    from latentlab.io import write_json
    from latentlab.latent.tools import traversal
    from latentlab.viz.latent import save_gif, traversal_figure

    element_list = parse_ints(elements, "--elements")
    r, images = _open(run, data)
    t = traversal(r, images, index, elements=element_list, top=top, steps=steps, rank_by=rank_by, limit=limit)
    pictures = _uint8_grid(t.images, r.value_range)  # (K, S, H, W, C)
    score = {s.element: (rank, s) for rank, s in enumerate(t.ranking, 1)}
    labels = [f"z[{d}]  #{score[d][0]}\neffect {score[d][1].effect:.3g}" for d in t.elements]
    traversal_figure(pictures, t.values.numpy(), t.elements, t.own.tolist(), t.marked, out, labels,
                     title=f"{run.name}: image #{t.index}, elements ranked by {t.rank_by}")
    ranking_path = write_json(_sibling(out, ".ranking.json"),
                              {"run": str(run), "data": images.spec, **t.to_dict()})
    _print_ranking(t)
    if gif is not None:
        for k, d in enumerate(t.elements):
            save_gif(pictures[k], gif / f"z{d}.gif")
        console.print(f"GIFs written to {gif}/ (z<element>.gif)")
    console.print(f"figure written to {out}; ranking written to {ranking_path}")


def _print_ranking(t) -> None:  # type: ignore[no-untyped-def]
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
) -> None:
    """Decode the latents on the way from one image's latent to another's."""
    from latentlab.data.batches import to_uint8
    from latentlab.latent.explore import check_steps, interpolate
    from latentlab.latent.tools import inputs
    from latentlab.viz.latent import strip_figure

    check_steps(steps)
    r, images = _open(run, data)
    a, b = images.check_index([start, end])
    x = inputs(r, images, [a, b])
    path = interpolate(r.model, x[:1], x[1:], steps, spherical=spherical)
    ends = to_uint8(x, r.value_range)
    row = [ends[0], *to_uint8(path, r.value_range), ends[1]]
    titles = [f"#{a}", *[f"t={t:.2f}" for t in [i / (steps - 1) for i in range(steps)]], f"#{b}"]
    kind = "spherical" if spherical else "linear"
    strip_figure([row], [titles], out, suptitle=f"{run.name}: {kind} interpolation from #{a} to #{b}")
    console.print(f"{kind} interpolation #{a} -> #{b} in {steps} steps; figure written to {out}")


@command(app, "sample")
def sample_cmd(
    run: Path = RUN,
    data: str | None = DATA,
    n: int = typer.Option(64, "--n", help="number of samples per grid"),
    seed: int = typer.Option(0, "--seed"),
    limit: int = LIMIT,
    out: Path = typer.Option(Path("samples.png"), "--out"),
) -> None:
    """Decode random latents: N(0, I) for a VAE; for a plain AE also a Gaussian fitted to its codes."""
    from latentlab.data.batches import to_uint8
    from latentlab.latent.tools import samples
    from latentlab.runs import open_run

    if n < 1:
        raise LatentlabError(f"--n {n}: expected a positive number of samples")
    r = open_run(run)
    images = None if r.model.is_variational else r.data(data)
    s = samples(r, images, n=n, seed=seed, limit=limit)
    from latentlab.viz.latent import sample_figure

    sample_figure([to_uint8(x, r.value_range) for _, _, x in s.sets], [title for _, title, _ in s.sets], out,
                  suptitle=f"{run.name}: {n} samples per grid (seed {seed})")
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
) -> None:
    """Scatter of the encoded data coloured by label; a 2-element latent also gets its decoded plane."""
    from latentlab.latent.tools import latent_map
    from latentlab.viz.latent import latent_map_figure

    r, images = _open(run, data)
    m = latent_map(r, images, method=method, limit=limit, grid=grid)
    plane = None
    if m.plane is not None:
        pics, v0, v1 = m.plane
        plane = (_uint8_grid(pics, r.value_range), v0.numpy(), v1.numpy())
    latent_map_figure(m.xy, m.labels, images.label_names, m.axis_names, out, plane=plane,
                      title=f"{run.name}: {len(m.xy)} images of {images.spec}")
    what = {"plane": f"2-element latent: scatter and the decoded {grid} x {grid} plane",
            "identity": f"{r.model.latent_dim}-element latent: scatter of its values",
            "pca": f"{r.model.latent_dim}-element latent: PCA projection scatter",
            "tsne": f"{r.model.latent_dim}-element latent: t-SNE projection scatter"}[
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
) -> None:
    """Attribute vector: mean latent of one group minus the other, added to an image at several strengths."""
    from latentlab.data.batches import to_uint8
    from latentlab.latent.tools import attribute
    from latentlab.latent.where import parse_where
    from latentlab.viz.latent import diff_map, strip_figure

    parse_where(where)  # syntax errors before any loading
    if versus is not None:
        parse_where(versus)
    values = parse_floats(strengths, "--strengths") or []
    r, images = _open(run, data)
    a = attribute(r, images, where, versus, apply_to, values, spec=data, limit=limit)
    row = [to_uint8(a.x, r.value_range)[0], *to_uint8(a.images, r.value_range)]
    titles = [f"original #{a.index}", *[f"strength {s:g}" for s in a.strengths]]
    diffs = np.stack([diff_map(img.numpy(), a.reference.numpy()) for img in a.images])  # (S, H, W)
    strip_figure([row], [titles], out, diffs=diffs, diff_titles=["minus reconstruction"] * len(diffs),
                 suptitle=f"'{a.where}' ({a.n_where}) minus '{a.versus}' ({a.n_versus})")
    console.print(f"attribute vector: mean z of '{a.where}' ({a.n_where} images) minus '{a.versus}' "
                  f"({a.n_versus} images); length {float(a.vector.norm()):.4g}", highlight=False)
    for s, d in zip(a.strengths, a.descriptions, strict=True):
        if s != 0:
            console.print(f"strength {s:g}: {d.text}", highlight=False)
    console.print(f"figure written to {out}")
