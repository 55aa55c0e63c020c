"""The files of the latent tools: what ``latentlab reconstruct``, ``edit``, ``traverse``,
``interpolate``, ``sample``, ``latent-map`` and ``attribute`` write.

Two layers. ``draw_*`` functions take a result of :mod:`latentlab.latent.tools` and write its
figure (uint8 panels, titles, labels, difference maps; drawn by :mod:`latentlab.viz.latent`).
``*_run`` functions are the commands, one call each: they refuse existing outputs before any
work (unless ``overwrite``), compute with the tools, write the figure (and JSON, GIFs) and
return the result for the caller to print. ``run`` is a run folder, a Run or a model; ``data``
a data spec, a PreparedSet or None for the data the run was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from latentlab.data.batches import to_uint8
from latentlab.errors import LatentlabError
from latentlab.io import write_json
from latentlab.latent.edits import Edit, EditChain
from latentlab.latent.tools import (
    LIMIT,
    Attribute,
    EditReport,
    Interpolation,
    LatentMap,
    Reconstruction,
    Samples,
    Traversal,
    attribute,
    check_count,
    edit_groups,
    edit_report,
    interpolation,
    latent_map,
    opened,
    reconstruction,
    samples,
    traversal,
)
from latentlab.outputs import refuse_existing
from latentlab.runs import as_run

GIF_NAME = re.compile(r"z\d+\.gif")  # traverse --gif DIR writes DIR/z<element>.gif


def uint8_grid(images: Tensor, value_range: tuple[float, float]) -> np.ndarray:
    """(R, S, C, H, W) model-space tensor -> uint8 (R, S, H, W, C)."""
    flat = to_uint8(images.flatten(0, 1), value_range)  # (R*S, H, W, C)
    return flat.reshape(images.shape[0], images.shape[1], *flat.shape[1:])


def sibling(out: Path, suffix: str) -> Path:
    """``fig.png`` -> ``fig<suffix>``: where a figure's JSON goes."""
    out = Path(out)
    return out.with_name(out.stem + suffix)


def _run_path(run: Any) -> str | None:
    return None if run.path is None else str(run.path)


# ---------------------------------------------------------------- reconstruct


def draw_reconstruction(rec: Reconstruction, value_range: tuple[float, float], out: Path) -> Path:
    """Originals above, reconstructions below, each titled with its index or its MSE."""
    from latentlab.viz.grids import image_grid

    return image_grid([list(to_uint8(rec.x, value_range)), list(to_uint8(rec.x_hat, value_range))],
                      [[f"#{i}" for i in rec.rows], [f"MSE {m:.4f}" for m in rec.mse]], out,
                      row_labels=["original", "reconstruction"])


def reconstruct_run(run: Any, data: Any, rows: Sequence[int], out: Path, *,
                    overwrite: bool = False) -> Reconstruction:
    """``latentlab reconstruct``: the figure of :func:`~latentlab.latent.tools.reconstruction` to ``out``."""
    refuse_existing([out], overwrite)
    run, images = opened(run, data)
    rec = reconstruction(run, images, rows)
    draw_reconstruction(rec, run.value_range, out)
    return rec


# ---------------------------------------------------------------- edit


def edit_run(run: Any, data: Any, rows: Sequence[int], edits: Sequence[str | Edit | EditChain] | str, out: Path,
             json_path: Path | None = None, *, overwrite: bool = False) -> EditReport:
    """``latentlab edit``: the edit figure (with difference maps and measured descriptions) to
    ``out`` and :meth:`EditReport.to_dict` to ``json_path`` (default ``<out stem>.json``);
    ``report.files`` lists both."""
    from latentlab.viz.edits import edit_figure

    groups = edit_groups(edits)  # syntax errors before any loading
    json_path = json_path or sibling(out, ".json")
    refuse_existing([out, json_path], overwrite)
    report = edit_report(run, data, rows, groups)
    edit_figure(report.result, report.rows, report.value_range, out, descriptions=report.descriptions)
    report.files = [out, write_json(json_path, report.to_dict())]
    return report


# ---------------------------------------------------------------- traverse


def draw_traversal(t: Traversal, value_range: tuple[float, float], out: Path, title: str = "") -> Path:
    """One row per traversed element, labelled with its rank and effect; the image's own value framed."""
    from latentlab.viz.latent import traversal_figure

    score = {s.element: (rank, s) for rank, s in enumerate(t.ranking, 1)}
    labels = [f"z[{d}]  #{score[d][0]}\neffect {score[d][1].effect:.3g}" for d in t.elements]
    return traversal_figure(uint8_grid(t.images, value_range), t.values.numpy(), t.elements, t.own.tolist(),
                            t.marked, out, labels, title=title)


def gif_paths(folder: Path, elements: Sequence[int] | None = None) -> list[Path]:
    """The GIFs a traversal writes into ``folder``: those of ``elements``, or when the elements are
    not known yet (they come from the ranking) every ``z<element>.gif`` already there."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LatentlabError(f"--gif {folder}: exists and is not a folder")
    if elements is not None:
        return [folder / f"z{d}.gif" for d in elements]
    return sorted(p for p in folder.iterdir() if GIF_NAME.fullmatch(p.name)) if folder.is_dir() else []


def traverse_run(run: Any, data: Any, index: int, out: Path, *, elements: Sequence[int] | None = None,
                 top: int | None = None, steps: int = 9, rank_by: str = "effect", limit: int | None = LIMIT,
                 gif: Path | None = None, overwrite: bool = False) -> Traversal:
    """``latentlab traverse``: the traversal figure to ``out``, the ranking to
    ``<out stem>.ranking.json`` and, with ``gif``, one ``z<element>.gif`` per element into that
    folder; ``t.files`` lists them (figure, ranking, GIFs)."""
    from latentlab.viz.latent import save_gif

    ranking_path = sibling(out, ".ranking.json")
    refuse_existing([out, ranking_path, *(gif_paths(gif, elements) if gif is not None else [])], overwrite)
    run, images = opened(run, data)
    t = traversal(run, images, index, elements=elements, top=top, steps=steps, rank_by=rank_by, limit=limit)
    draw_traversal(t, run.value_range, out, title=f"{run.name}: image #{t.index}, elements ranked by {t.rank_by}")
    t.files = [out, write_json(ranking_path, {"run": _run_path(run), "data": images.spec, **t.to_dict()})]
    if gif is not None:
        pictures = uint8_grid(t.images, run.value_range)  # (K, S, H, W, C)
        t.files += [save_gif(pictures[k], gif / f"z{d}.gif") for k, d in enumerate(t.elements)]
    return t


# ---------------------------------------------------------------- interpolate


def draw_interpolation(i: Interpolation, value_range: tuple[float, float], out: Path, title: str = "") -> Path:
    """One strip: the first image, each decoded step (titled t=...), the last image."""
    from latentlab.viz.latent import strip_figure

    ends = to_uint8(i.x, value_range)
    row = [ends[0], *to_uint8(i.images, value_range), ends[1]]
    titles = [f"#{i.start}", *[f"t={t:.2f}" for t in i.ts], f"#{i.end}"]
    return strip_figure([row], [titles], out, suptitle=title)


def interpolate_run(run: Any, data: Any, start: int, end: int, out: Path, *, steps: int = 10,
                    spherical: bool = False, overwrite: bool = False) -> Interpolation:
    """``latentlab interpolate``: the strip of :func:`~latentlab.latent.tools.interpolation` to ``out``."""
    from latentlab.latent.explore import check_steps

    check_steps(steps)  # before any loading
    refuse_existing([out], overwrite)
    run, images = opened(run, data)
    i = interpolation(run, images, start, end, steps, spherical=spherical)
    kind = "spherical" if spherical else "linear"
    draw_interpolation(i, run.value_range, out, title=f"{run.name}: {kind} interpolation from #{i.start} to #{i.end}")
    return i


# ---------------------------------------------------------------- sample


def draw_samples(s: Samples, value_range: tuple[float, float], out: Path, title: str = "") -> Path:
    """One square grid per source (prior, fitted), each under its title."""
    from latentlab.viz.latent import sample_figure

    return sample_figure([to_uint8(x, value_range) for _, _, x in s.sets], [t for _, t, _ in s.sets], out,
                         suptitle=title)


def sample_run(run: Any, data: Any, out: Path, *, n: int = 64, seed: int = 0, limit: int | None = LIMIT,
               overwrite: bool = False) -> Samples:
    """``latentlab sample``: the grids of :func:`~latentlab.latent.tools.samples` to ``out``
    (a VAE samples its prior and reads no data)."""
    check_count(n)
    refuse_existing([out], overwrite)
    run = as_run(run)
    s = samples(run, data, n=n, seed=seed, limit=limit)
    draw_samples(s, run.value_range, out, title=f"{run.name}: {n} samples per grid (seed {seed})")
    return s


# ---------------------------------------------------------------- latent map


def draw_latent_map(m: LatentMap, value_range: tuple[float, float], out: Path,
                    label_names: Sequence[str] | None = None, title: str = "") -> Path:
    """The scatter of the encoded data coloured by label; for a 2-element latent also the decoded plane."""
    from latentlab.viz.latent import latent_map_figure

    plane = None
    if m.plane is not None:
        pictures, v0, v1 = m.plane
        plane = (uint8_grid(pictures, value_range), v0.numpy(), v1.numpy())
    return latent_map_figure(m.xy, m.labels, label_names, m.axis_names, out, plane=plane, title=title)


def latent_map_run(run: Any, data: Any, out: Path, *, method: str = "pca", limit: int | None = 2000,
                   grid: int = 15, overwrite: bool = False) -> LatentMap:
    """``latentlab latent-map``: the figure of :func:`~latentlab.latent.tools.latent_map` to ``out``."""
    refuse_existing([out], overwrite)
    run, images = opened(run, data)
    m = latent_map(run, images, method=method, limit=limit, grid=grid)
    draw_latent_map(m, run.value_range, out, images.label_names,
                    title=f"{run.name}: {len(m.xy)} images of {images.spec}")
    return m


# ---------------------------------------------------------------- attribute vectors


def draw_attribute(a: Attribute, value_range: tuple[float, float], out: Path) -> Path:
    """The image, then the image with the vector added at each strength; under them the difference
    of each from the reconstruction."""
    from latentlab.viz.latent import diff_map, strip_figure

    row = [to_uint8(a.x, value_range)[0], *to_uint8(a.images, value_range)]
    titles = [f"original #{a.index}", *[f"strength {s:g}" for s in a.strengths]]
    diffs = np.stack([diff_map(img.numpy(), a.reference.numpy()) for img in a.images])  # (S, H, W)
    return strip_figure([row], [titles], out, diffs=diffs, diff_titles=["minus reconstruction"] * len(diffs),
                        suptitle=f"'{a.where}' ({a.n_where}) minus '{a.versus}' ({a.n_versus})")


def attribute_run(run: Any, data: Any, where: str, versus: str | None, apply_to: int, strengths: Sequence[float],
                  out: Path, *, limit: int | None = LIMIT, overwrite: bool = False) -> Attribute:
    """``latentlab attribute``: the strip of :func:`~latentlab.latent.tools.attribute` to ``out``."""
    from latentlab.latent.where import parse_where

    parse_where(where)  # syntax errors before any loading
    if versus is not None:
        parse_where(versus)
    refuse_existing([out], overwrite)
    run, images = opened(run, data)
    a = attribute(run, images, where, versus, apply_to, strengths, limit=limit)
    draw_attribute(a, run.value_range, out)
    return a
