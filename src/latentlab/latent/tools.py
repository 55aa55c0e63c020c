"""The latent tools applied to a trained run and its data: what ``latentlab reconstruct``,
``edit``, ``traverse``, ``interpolate``, ``sample``, ``latent-map`` and ``attribute`` compute,
as plain functions returning data (:mod:`latentlab.latent.figures` draws it, the CLI prints it).

Everything here composes :mod:`latentlab.latent.explore` and :mod:`latentlab.latent.describe`
with a :class:`~latentlab.runs.Run`: images are prepared as in training, the encoded data
(at most ``limit`` images) gives the ranges and spreads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentlab.errors import LatentlabError
from latentlab.latent import explore
from latentlab.latent.apply import EditResult, edit_images, reconstruct
from latentlab.latent.describe import ChangeDescription, describe_change
from latentlab.latent.edits import Edit, EditChain, parse_edit_groups
from latentlab.runs import Run, as_run

LIMIT = 5000  # encoded images used for ranges, spreads, fitted Gaussians and groups
RANK_IMAGES = 32  # images the ranking averages over


def opened(run: Any, data: Any = None) -> tuple[Run, Any]:
    """(the Run, its images): ``run`` a Run, a run folder or a model; ``data`` a PreparedSet or
    ImageSet, a data spec, or None for the data the run was trained on."""
    run = as_run(run)
    return run, data if data is not None and not isinstance(data, str) else run.data(data)


def encode_run_data(run: Any, data: Any, limit: int | None = LIMIT) -> Tensor:
    """(N, D): the first ``limit`` images of ``data`` (a PreparedSet or ImageSet) encoded by the run's model."""
    if limit is not None and limit < 1:
        raise LatentlabError(f"--limit {limit}: expected a positive number of images")
    run = as_run(run)
    return explore.encode_dataset(run.model, data, run.rule, limit=limit)


def inputs(run: Any, data: Any, rows: Sequence[int]) -> Tensor:
    """The model input (N, C, H, W) of the given rows of ``data``, on the model's device."""
    return as_run(run).inputs(data, list(rows))


def factor_model_for(run: Any, spec: str | None) -> Any:
    """The faces factor regressor when the data is the generated ``faces`` set and the model is RGB."""
    spec = spec or run.data_spec or ""
    if spec.split(":")[0] != "faces" or run.model.in_shape[0] != 3:
        return None
    from latentlab.latent.factors import FactorRegressor

    return FactorRegressor.for_faces()


# ---------------------------------------------------------------- reconstruct


@dataclass
class Reconstruction:
    rows: list[int]
    x: Tensor  # (N, C, H, W) model input
    x_hat: Tensor  # (N, C, H, W)
    mse: list[float]  # per image


def reconstruction(run: Any, data: Any, rows: Sequence[int]) -> Reconstruction:
    """The given rows of ``data`` and their reconstructions, with the per-image MSE."""
    from latentlab.losses import per_image_mse

    run, data = opened(run, data)
    index: list[int] = data.check_index(list(rows))
    x = inputs(run, data, index)
    _, x_hat = reconstruct(run.model, x)
    return Reconstruction(rows=index, x=x.cpu(), x_hat=x_hat.cpu(), mse=per_image_mse(x_hat, x).tolist())


# ---------------------------------------------------------------- edit


def describe_edit_result(run: Any, result: Any, spec: str | None) -> list[list[ChangeDescription]]:
    """Per image, per edit: the measured change of the edited image against the reconstruction."""
    from latentlab.latent.describe import describe_edits

    return describe_edits(result, run.value_range, factor_model_for(run, spec))


@dataclass
class EditReport:
    """Edits of some images: the decoded edits and, per image and edit, the measured change."""

    run: str | None  # the run folder
    data: str  # the data spec
    value_range: tuple[float, float]
    rows: list[int]
    result: EditResult
    descriptions: list[list[ChangeDescription]]  # [image][edit]
    files: list[Path] = field(default_factory=list)  # what edit_run wrote: the figure, the JSON
    note: str = ""  # what the edit acted on, when that is not simply the code (a VQ-VAE's)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``latentlab edit``: per image, per edit, its measured description."""
        images = [{"index": i, "edits": [{"edit": e.text, **d.to_dict()}
                                         for e, d in zip(self.result.edits, per_image, strict=True)]}
                  for i, per_image in zip(self.rows, self.descriptions, strict=True)]
        found = {"run": self.run, "data": self.data, "value_range": list(self.value_range), "images": images}
        return {**found, "note": self.note} if self.note else found


def edit_report(run: Any, data: Any, rows: Sequence[int],
                edits: Sequence[str | Edit | EditChain] | str) -> EditReport:
    """Apply each edit (an expression such as ``z[0]*=3``; ``a;b`` is one combined edit) to the
    latents of the given rows of ``data`` and measure what changed against the reconstruction."""
    groups = edit_groups(edits)
    run, data = opened(run, data)
    index: list[int] = data.check_index(list(rows))
    result = edit_images(run.model, inputs(run, data, index), groups)
    return EditReport(run=None if run.path is None else str(run.path), data=data.spec, value_range=run.value_range,
                      rows=index, result=result, descriptions=describe_edit_result(run, result, data.spec),
                      note=QUANTISED_NOTE if getattr(run.model, "quantised_latent", False) else "")


QUANTISED_NOTE = ("edits act on the code before quantisation; decoding snaps the edited code to the nearest "
                  "codebook vectors, so a small edit may change nothing and a larger one jumps to another code")


def edit_groups(edits: Sequence[str | Edit | EditChain] | str) -> list[Edit | EditChain]:
    """Parsed edits (one per string; ``a;b`` is one combined edit): syntax errors before any loading."""
    if isinstance(edits, str):
        return parse_edit_groups(edits)
    return [parse_edit_groups(e)[0] if isinstance(e, str) else e for e in edits]


# ---------------------------------------------------------------- traverse


@dataclass
class Traversal:
    index: int
    elements: list[int]
    values: Tensor  # (K, S)
    own: Tensor  # (K,) the image's own value of each traversed element
    marked: list[int]  # per row, the step closest to the own value
    images: Tensor  # (K, S, C, H, W)
    ranking: list[explore.ElementScore]
    rank_by: str
    ranked_on: int  # images the ranking averaged over
    files: list[Path] = field(default_factory=list)  # what traverse_run wrote: figure, ranking, GIFs

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "rank_by": self.rank_by, "images_ranked_on": self.ranked_on,
                "ranking": [{"rank": r + 1, **s.to_dict()} for r, s in enumerate(self.ranking)],
                "traversed": self.elements, "values": self.values.tolist(), "own": self.own.tolist()}


def rank_run(run: Any, data: Any, z_data: Tensor, by: str = "effect",
             n_images: int = RANK_IMAGES) -> tuple[list[explore.ElementScore], int]:
    """Rank the latent elements on ``n_images`` evenly spaced images of ``data``."""
    # every image costs 2 * D decodes: big latents (a conv feature map) rank on fewer images
    n = min(n_images, len(z_data), max(4, 16384 // max(run.model.latent_dim, 1)))
    rows = np.unique(np.linspace(0, len(z_data) - 1, n).round().astype(int))
    return explore.rank_elements(run.model, inputs(run, data, rows.tolist()), z_data, by=by), len(rows)


def traversal(run: Any, data: Any, index: int, *, elements: Sequence[int] | None = None, top: int | None = None,
              steps: int = 9, rank_by: str = "effect", limit: int | None = LIMIT) -> Traversal:
    """Decode the image ``index`` with each chosen element swept over its range.

    ``elements`` names the elements; else the ``top`` ranked ones (default: up to 8).
    """
    run, data = opened(run, data)
    d = run.model.latent_dim
    if elements is not None and top is not None:
        raise LatentlabError("--elements and --top: give one of them, not both")
    if top is not None and not 1 <= top <= d:
        raise LatentlabError(f"--top {top}: expected 1..{d} (the latent has {d} elements)")
    elements = explore.check_elements(elements, d) if elements is not None else None
    steps = explore.check_steps(steps)
    [index] = data.check_index([index])
    explore.check_rank_by(run.model, rank_by)
    z_data = encode_run_data(run, data, limit)
    ranking, ranked_on = rank_run(run, data, z_data, rank_by)
    if elements is None:
        elements = [s.element for s in ranking[: top or min(d, 8)]]
    lo, hi = explore.latent_ranges(run.model, z_data)
    values = explore.traversal_values(lo, hi, elements, steps)
    x = inputs(run, data, [index])
    own = run.model.embed(x)[0, elements].detach().cpu().float()
    images = explore.traverse(run.model, x, elements, values)
    return Traversal(index=index, elements=elements, values=values, own=own, marked=explore.closest_step(values, own),
                     images=images.cpu(), ranking=ranking, rank_by=rank_by, ranked_on=ranked_on)


# ---------------------------------------------------------------- interpolate


@dataclass
class Interpolation:
    start: int
    end: int
    x: Tensor  # (2, C, H, W) the two images
    images: Tensor  # (steps, C, H, W) decoded along the way, both ends included
    spherical: bool

    @property
    def ts(self) -> list[float]:
        """The position of each step, 0 to 1."""
        steps = len(self.images)
        return [i / (steps - 1) for i in range(steps)]


def interpolation(run: Any, data: Any, start: int, end: int, steps: int = 10,
                  spherical: bool = False) -> Interpolation:
    """Decode ``steps`` latents on the way from the latent of image ``start`` to that of ``end``
    (linear, or along the great circle when ``spherical``)."""
    explore.check_steps(steps)
    run, data = opened(run, data)
    a, b = data.check_index([start, end])
    x = inputs(run, data, [a, b])
    images = explore.interpolate(run.model, x[:1], x[1:], steps, spherical=spherical)
    return Interpolation(start=a, end=b, x=x.cpu(), images=images.cpu(), spherical=spherical)


# ---------------------------------------------------------------- sample


@dataclass
class Samples:
    """Decoded samples per source ("prior", "fitted") with a title saying what they are."""

    sets: list[tuple[str, str, Tensor]] = field(default_factory=list)  # (source, title, images (n, C, H, W))


def check_count(n: int) -> int:
    """``n`` samples: a positive integer."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise LatentlabError(f"--n {n}: expected a positive number of samples")
    return n


def samples(run: Any, data: Any | None, n: int = 64, seed: int = 0, limit: int | None = LIMIT) -> Samples:
    """VAE: z ~ N(0, I). Plain AE: z ~ N(0, I) and z ~ a Gaussian fitted to the encoded data."""
    check_count(n)
    run = as_run(run)
    if not run.model.is_variational:  # a VAE samples its prior: no data needed
        run, data = opened(run, data)
    model = run.model
    out = Samples()
    _, x = explore.sample(model, n, source="prior", generator=torch.Generator().manual_seed(seed))
    if model.is_variational:
        out.sets.append(("prior", "VAE: z ~ N(0, I), the prior it was trained for", x.cpu()))
        return out
    out.sets.append(("prior", "plain AE: z ~ N(0, I) (it was never trained for this prior)", x.cpu()))
    z_data = encode_run_data(run, data, limit)
    g = torch.Generator().manual_seed(seed)
    _, x = explore.sample(model, n, source="fitted", z_data=z_data, generator=g)
    out.sets.append(("fitted", f"plain AE: z ~ Gaussian fitted to {len(z_data)} encoded images", x.cpu()))
    return out


# ---------------------------------------------------------------- latent map


@dataclass
class LatentMap:
    kind: str  # "plane" (2-element latent: scatter + decoded grid) or "projection" (scatter only)
    method: str  # "identity", "pca" or "tsne"
    xy: np.ndarray  # (N, 2)
    axis_names: list[str]
    labels: np.ndarray | None
    latent_dim: int
    plane: tuple[Tensor, Tensor, Tensor] | None = None  # (images (n, n, C, H, W), z0 values, z1 values)


def latent_map(run: Any, data: Any, method: str = "pca", limit: int | None = 2000,
               grid: int = 15) -> LatentMap:
    """The encoded data in 2-D, and for a 2-element latent the decoded plane."""
    run, data = opened(run, data)
    if method not in ("pca", "tsne"):
        raise LatentlabError(f"--method {method}: expected 'pca' or 'tsne'")
    d = run.model.latent_dim
    if d == 2:
        explore.check_steps(grid, "--grid")
    z_data = encode_run_data(run, data, limit)
    xy, names = explore.project(z_data, method)
    labels = None if data.labels is None else np.asarray(data.labels[: len(z_data)])
    if d != 2:
        return LatentMap("projection", method if d > 2 else "identity", xy, names, labels, latent_dim=d)
    lo, hi = explore.latent_ranges(run.model, z_data)
    images, v0, v1 = explore.plane_grid(run.model, lo, hi, grid)
    return LatentMap("plane", "identity", xy, names, labels, latent_dim=d, plane=(images.cpu(), v0, v1))


# ---------------------------------------------------------------- attribute vectors


@dataclass
class Attribute:
    where: str
    versus: str
    n_where: int
    n_versus: int
    vector: Tensor  # (D,)
    index: int
    strengths: list[float]
    x: Tensor  # (1, C, H, W) the image the vector is applied to
    images: Tensor  # (len(strengths), C, H, W)
    reference: Tensor  # (C, H, W) the reconstruction (strength 0)
    descriptions: list[ChangeDescription]  # per strength, against the reconstruction


def data_columns(data: Any, n: int) -> dict[str, np.ndarray]:
    """What ``--where`` can name: ``label`` (when the data has labels) and every known factor."""
    cols = {name: np.asarray(v[:n]) for name, v in data.factors.items()}
    if data.labels is not None:
        cols["label"] = np.asarray(data.labels[:n])
    return cols


def attribute(run: Any, data: Any, where: str, versus: str | None, apply_to: int,
              strengths: Sequence[float], spec: str | None = None, limit: int | None = LIMIT) -> Attribute:
    """mean z of the rows matching ``where`` minus that of ``versus`` (default: all other rows),
    added to the latent of image ``apply_to`` at each strength."""
    from latentlab.latent.where import parse_where, select

    w = parse_where(where)  # syntax errors before any loading
    v = parse_where(versus) if versus is not None else None
    run, data = opened(run, data)
    [index] = data.check_index([apply_to])
    if not strengths:
        raise LatentlabError("--strengths: expected at least one number")
    n = len(data) if limit is None else min(len(data), limit)
    cols = data_columns(data, n)
    rows_w = select(w, cols, "--where")
    rows_v = select(v, cols, "--versus") if v is not None else np.setdiff1d(np.arange(n), rows_w)
    if rows_v.size == 0:
        raise LatentlabError(f"--where '{where}' selects every row; give --versus for the other group")
    z_data = encode_run_data(run, data, limit)
    vector = explore.attribute_vector(z_data, rows_w, rows_v)
    x = inputs(run, data, [index])
    with torch.no_grad():
        z = run.model.embed(x)  # (1, D)
        steps = torch.tensor([float(s) for s in strengths], dtype=z.dtype, device=z.device)
        images = run.model.decode(z + steps[:, None] * vector.to(z)[None]).cpu()
        reference = run.model.decode(z)[0].cpu()
    fm = factor_model_for(run, spec or data.spec)
    descriptions = [describe_change(reference, img, run.value_range, fm) for img in images]
    return Attribute(where=where, versus=versus or f"not ({where})", n_where=len(rows_w),
                     n_versus=len(rows_v), vector=vector, index=index,
                     strengths=[float(s) for s in strengths], x=x.cpu(), images=images,
                     reference=reference, descriptions=descriptions)
