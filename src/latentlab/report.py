"""One self-contained HTML page per run: what ``latentlab report RUN`` writes to ``RUN/report.html``.

The page answers the course assignment in one place: the architecture (table and diagram), the
loss curves (from ``metrics.csv``), reconstructions, the course's latent edits with their
measured descriptions and difference maps, a traversal of the highest-ranked latent elements
with the ranking, and decoded samples. Every image is an inline base64 PNG and there is no
script or external URL, so the page opens offline (see :mod:`latentlab.viz.html`).
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path
from typing import Any

from latentlab.data.sources import absolute_spec
from latentlab.errors import LatentlabError
from latentlab.runs import Run, open_run, split_indices
from latentlab.viz import html

REPORT = "report.html"
MAX_RANKED_LATENT = 256  # larger latents (a conv feature map) are traversed without ranking
ENCODE_LIMIT = 1000  # images encoded for ranges, spreads and fitted Gaussians
FACTOR_ROWS = 1000  # images whose codes are scored against known factors (and active units)
TRAVERSED = 6  # latent elements in the traversal figure
RANKED_ROWS = 16  # rows of the ranking table


def course_edits(latent_dim: int) -> list[str]:
    """The course's edits (elements 0 and 2, times 3 and divided by 3), on elements the latent has."""
    elements = [0, 2] if latent_dim >= 3 else list(range(latent_dim))
    return [f"z[{d}]{op}3" for d in elements for op in ("*=", "/=")]


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv as one dict per epoch (numbers only; empty cells left out)."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            parsed = {}
            for k, v in row.items():
                try:
                    parsed[k] = float(v)
                except (TypeError, ValueError):
                    continue
            if "epoch" in parsed:
                rows.append(parsed)
    return rows


def shown_rows(run: Run, data: Any, n: int) -> tuple[list[int], str]:
    """Rows to show: the run's validation images when ``data`` is its training data, else the first ``n``."""
    train = run.config.get("train", {})
    val_fraction = float(train.get("val_fraction", 0.0))
    same = absolute_spec(data.spec) == run.data_spec and run.config.get("data", {}).get("n_images") == len(data)
    if same and val_fraction > 0:
        _, val = split_indices(len(data), val_fraction, int(train.get("seed", 0)))
        return val[:n].tolist(), "validation images (not trained on)"
    return list(range(min(n, len(data)))), f"the first images of {data.spec}"


# ---------------------------------------------------------------- sections


def _overview(run: Run, data: Any, history: list[dict[str, float]]) -> str:
    trained = run.config.get("data", {})
    rows: list[list[Any]] = [
        ["model", run.model.describe()], ["run folder", str(Path(run.path or ".").resolve())],
        ["training data", f"{trained.get('spec')} ({trained.get('n_images')} images)"],
        ["shown data", f"{data.spec} ({len(data)} images)"],
        ["value range", f"{run.value_range[0]:g} .. {run.value_range[1]:g}"],
        ["finished", "yes" if run.complete else "no (no COMPLETE marker: an interrupted run)"],
    ]
    if history:
        last = history[-1]
        rows.append(["epochs", int(last["epoch"])])
        rows += [[k.replace("_", " ") + " (last epoch)", float(v)] for k, v in last.items()
                 if k.startswith(("train_", "val_"))]
    return html.table(None, rows)


def _architecture(run: Run) -> str:
    from latentlab.viz.architecture import diagram_figure, summary_table

    diagram = html.figure_png(diagram_figure(run.model), dpi=90)
    return (html.img(diagram, "architecture diagram")
            + f"<pre>{html.esc(summary_table(run.model))}</pre>")


def _training(history: list[dict[str, float]], tmp: Path) -> str:
    from latentlab.viz.plots import plot_loss

    if not history:
        return '<p class="note">No metrics.csv in the run folder: no loss curves.</p>'
    return html.img(plot_loss(history, tmp / "loss.png"), "loss curves")


def _reconstructions(run: Run, data: Any, rows: list[int], what: str, tmp: Path) -> str:
    from latentlab.data.batches import to_uint8
    from latentlab.latent.apply import reconstruct
    from latentlab.latent.tools import inputs
    from latentlab.losses import per_image_mse
    from latentlab.viz.grids import image_grid

    x = inputs(run, data, rows)
    _, x_hat = reconstruct(run.model, x)
    mse = per_image_mse(x_hat, x)
    path = image_grid([list(to_uint8(x, run.value_range)), list(to_uint8(x_hat, run.value_range))],
                      [[f"#{i}" for i in rows], [f"MSE {m:.4f}" for m in mse.tolist()]], tmp / "recon.png",
                      row_labels=["original", "reconstruction"], panel=1.3)
    return (f"<p>{len(rows)} {html.esc(what)}; mean MSE {float(mse.mean()):.4g} "
            f"(model value range).</p>" + html.img(path, "reconstructions"))


def _edits(run: Run, data: Any, rows: list[int], tmp: Path) -> str:
    from latentlab.latent.apply import edit_images
    from latentlab.latent.edits import parse_edits
    from latentlab.latent.tools import describe_edit_result, inputs
    from latentlab.viz.edits import edit_figure

    texts = course_edits(run.model.latent_dim)
    result = edit_images(run.model, inputs(run, data, rows), parse_edits(texts))
    descriptions = describe_edit_result(run, result, data.spec)
    path = edit_figure(result, rows, run.value_range, tmp / "edits.png", descriptions)
    table = html.table(["image", "edit", "measured change against the reconstruction"],
                       [[f"#{i}", e.text, d.text] for i, per_image in zip(rows, descriptions, strict=True)
                        for e, d in zip(result.edits, per_image, strict=True)])
    return (f"<p>The course's edits {html.esc(', '.join(texts))}: each decoded from the image's latent with "
            "one element changed; below each, the signed difference to the reconstruction.</p>"
            + html.img(path, "latent edits") + table)


def _traversal(run: Run, data: Any, index: int, tmp: Path, first: list[int] | None = None) -> str:
    """The traversal figure and the ranking table; ``first`` receives the element the ranking puts first."""
    from latentlab.latent import explore, tools
    from latentlab.viz.latent import traversal_figure

    d = run.model.latent_dim
    if d <= MAX_RANKED_LATENT:
        t = tools.traversal(run, data, index, top=min(d, TRAVERSED), steps=9, limit=ENCODE_LIMIT)
        elements, values, own, marked, images = t.elements, t.values, t.own, t.marked, t.images
        if first is not None and t.ranking:
            first.append(t.ranking[0].element)
        kl = ["KL"] if run.model.is_variational else []
        ranking = html.table(["rank", "element", "effect", "spread", *kl],
                             [[r + 1, f"z[{s.element}]", s.effect, s.spread, *([s.kl] if kl else [])]
                              for r, s in enumerate(t.ranking[:RANKED_ROWS])])
        note = (f"<p>Elements ranked by effect: the root-mean-square output change when the element moves by "
                f"one spread (its standard deviation over the data), averaged over {t.ranked_on} images. "
                f"The top {len(elements)} are traversed for image #{index}"
                + (f"; the table shows the top {RANKED_ROWS} of {d}" if d > RANKED_ROWS else "") + ".</p>")
    else:  # ranking decodes 2 x images x elements: too much for a feature-map latent
        z_data = tools.encode_run_data(run, data, ENCODE_LIMIT)
        elements = list(range(TRAVERSED))
        lo, hi = explore.latent_ranges(run.model, z_data)
        values = explore.traversal_values(lo, hi, elements, 9)
        x = tools.inputs(run, data, [index])
        own = run.model.embed(x)[0, elements].detach().cpu().float()
        marked, images = explore.closest_step(values, own), explore.traverse(run.model, x, elements, values).cpu()
        ranking = ""
        note = (f"<p>The latent has {d:,} elements: not ranked here "
                f"(use <code>latentlab traverse --top</code>); elements 0-{TRAVERSED - 1} traversed for "
                f"image #{index}.</p>")
    from latentlab.data.batches import to_uint8

    flat = to_uint8(images.flatten(0, 1), run.value_range)
    grid = flat.reshape(images.shape[0], images.shape[1], *flat.shape[1:])
    path = traversal_figure(grid, values.numpy(), elements, own.tolist(), marked, tmp / "traverse.png")
    return note + html.img(path, "latent traversal") + ranking


def _samples(run: Run, data: Any, tmp: Path) -> str:
    from latentlab.data.batches import to_uint8
    from latentlab.latent.tools import samples
    from latentlab.viz.latent import sample_figure

    s = samples(run, data, n=16, limit=ENCODE_LIMIT)
    path = sample_figure([to_uint8(images, run.value_range) for _, _, images in s.sets],
                         [title for _, title, _ in s.sets], tmp / "samples.png")
    sides = ["Left", "Right"] if len(s.sets) == 2 else ["Shown"]
    caption = " ".join(f"{side}: {html.esc(title)}." for side, (_, title, _) in zip(sides, s.sets, strict=False))
    return f"<p>{len(s.sets[0][2])} decoded latents per set. {caption}</p>" + html.img(path, "decoded samples")


def _learned(run: Run, data: Any, first: list[int]) -> str:
    """Active units for every model; MIG, SAP and DCI when the data has known factors, and
    whether the traversal's first element is the one DCI finds most important for some factor."""
    import numpy as np

    from latentlab.latent.active import active_units
    from latentlab.metrics.evaluate import codes_of, evaluate_observed

    units = active_units(run, data, rows=FACTOR_ROWS)
    d = len(units.variance)
    text = (f"<p>{units.count} of {d} elements are active (Burda et al. 2016: the variance of E[z|x] over "
            f"{min(FACTOR_ROWS, len(data))} images above {units.threshold:g})"
            + (f"; mean KL per element {float(units.kl.mean()):.4g}" if units.kl is not None else "") + ".</p>")
    if not data.factors:
        return text + "<p>The data has no known factors: no disentanglement scores.</p>"
    rows = np.sort(np.random.default_rng(0).permutation(len(data))[:FACTOR_ROWS])
    codes = codes_of(run, data, rows)
    try:
        found = evaluate_observed(codes, {k: np.asarray(v)[rows] for k, v in data.factors.items()},
                                  num_eval=len(rows) // 2)
    except LatentlabError as exc:
        return text + f"<p>Disentanglement scores: not computed ({html.esc(str(exc))}).</p>"
    scores = found["scores"]
    if not scores:
        return text + "<p>" + html.esc("; ".join(f"{k}: {v}" for k, v in found["skipped"].items())) + "</p>"
    table = html.table(["score", "value"], [[k.replace("_", " "), v] for k, v in scores.items()])
    text += (f"<p>Scores of the codes against the data's known factors ({', '.join(found['factors'])}) on "
             f"{len(rows)} images, half fitting and half testing (<code>latentlab disentanglement</code> "
             "gives all five with the papers' sample sizes).</p>" + table)
    importance = np.asarray(found["details"].get("dci_importance", []))
    if first and importance.ndim == 2 and importance.shape[0] == d:
        top = importance.argmax(axis=0)  # per factor: the element DCI finds most important
        named = [f for f, e in zip(found["factors"], top, strict=True) if e == first[0]]
        if named:
            text += (f"<p>The traversal ranks z[{first[0]}] first, and DCI finds it the most important element "
                     f"for {html.esc(', '.join(named))}: the two agree.</p>")
        else:
            text += (f"<p>The traversal ranks z[{first[0]}] first, but DCI finds it the most important element for "
                     "no factor: it changes the image most, yet no single known factor follows it (it may mix "
                     "several, or move something the factors do not name).</p>")
    return text


# ---------------------------------------------------------------- the page


def build_report(run_path: str | Path, data_spec: str | None = None) -> str:
    """The report page of a run as one HTML string."""
    run = open_run(run_path)
    data = run.data(data_spec)
    history = run.metrics
    rows, what = shown_rows(run, data, 8)
    first: list[int] = []  # the element the traversal ranks first
    with tempfile.TemporaryDirectory(prefix="latentlab-report-") as name:
        tmp = Path(name)
        sections = [
            ("overview", "Overview", _overview(run, data, history)),
            ("architecture", "Architecture", _architecture(run)),
            ("training", "Loss curves", _training(history, tmp)),
            ("reconstructions", "Reconstructions", _reconstructions(run, data, rows, what, tmp)),
            ("edits", "Latent edits", _edits(run, data, rows[:1], tmp)),
            ("traversal", "Traversal and ranking", _traversal(run, data, rows[0], tmp, first)),
            ("samples", "Samples", _samples(run, data, tmp)),
            ("learned", "What the latent learned", _learned(run, data, first)),
        ]
    stamp = time.strftime("%Y-%m-%d %H:%M")
    title = f"latentlab report: {Path(run.path or '.').resolve().name}"
    return html.page(title, f"{run.model.describe()} · written {stamp}", sections)


def write_report(run_path: str | Path, data_spec: str | None = None, out: str | Path | None = None) -> Path:
    """Write the report (default ``RUN/report.html``) atomically; returns its path."""
    from latentlab.io import write_text

    out = Path(out) if out is not None else Path(run_path) / REPORT
    if out.is_dir():
        raise LatentlabError(f"--out {out}: is a folder; expected a file name such as report.html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise LatentlabError(f"--out {out}: expected a file name ending in .html")
    return write_text(out, build_report(run_path, data_spec))
