"""The comparison pages: figures (PNG files beside the page, also inlined) and one self-contained HTML.

What ``latentlab compare-ae-vae`` (numbers from :mod:`latentlab.compare`) and ``latentlab compare``
(numbers from :mod:`latentlab.compare_many`, claims from :mod:`latentlab.compare_claims`) write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from latentlab.compare import Comparison, summary_paragraph, verdicts
from latentlab.compare_claims import MEASURES
from latentlab.compare_claims import summary as many_summary
from latentlab.compare_claims import verdicts as many_verdicts
from latentlab.compare_many import ManyComparison
from latentlab.data.batches import to_uint8
from latentlab.durations import format_duration
from latentlab.io import save_figure, write_json, write_text
from latentlab.viz import html
from latentlab.viz.latent import mosaic
from latentlab.viz.plots import figure

PAGE = "compare.html"
N_SHOWN = 10


def _u8(x: Any) -> np.ndarray:
    return to_uint8(x, (0.0, 1.0))  # (N, H, W, C)


def rows_figure(rows: list[np.ndarray], labels: list[str], path: Path,
                captions: list[list[str]] | None = None) -> Path:
    """One mosaic per row of uint8 (S, H, W, C) panels, labelled on the left; ``captions[r]``
    under each panel of row r. One ``imshow`` per row keeps a 4 x 10 figure fast."""
    s = max(len(r) for r in rows)
    h, w = rows[0].shape[1:3]
    gap = max(1, h // 16)
    row_h, cap_h, left = 1.0, (0.22 if captions else 0.06), 1.3  # inches
    width, height = left + 1.0 * s + 0.1, len(rows) * (row_h + cap_h) + 0.1
    fig = figure(figsize=(width, height))
    for r, row in enumerate(rows):
        top = 0.05 + r * (row_h + cap_h)
        ax = fig.add_axes((left / width, 1 - (top + row_h) / height, 1.0 * len(row) / width, row_h / height))
        big = mosaic(row[None], gap)
        ax.imshow(big[..., 0] if big.shape[-1] == 1 else big, cmap="gray" if big.shape[-1] == 1 else None,
                  vmin=0, vmax=255, interpolation="nearest", aspect="auto")
        ax.set_yticks([])
        ax.text(-0.08 / len(row), 0.5, labels[r], transform=ax.transAxes, ha="right", va="center", fontsize=8)
        ax.set_xticks([j * (w + gap) + (w - 1) / 2 for j in range(len(row))],
                      captions[r] if captions else [""] * len(row), fontsize=7)
        ax.tick_params(length=0, pad=2)
        for spine in ax.spines.values():
            spine.set_visible(False)
    return save_figure(fig, path, dpi=100)


def _mse_captions(images: dict[str, Any], n: int) -> list[str]:
    mse = (images["reconstructions"][:n] - images["originals"][:n]).pow(2).flatten(1).mean(1)
    return [f"MSE {m:.4f}" for m in mse.tolist()]


def write_figures(c: Comparison, out: Path) -> dict[str, Path]:
    """recon.png, samples.png, interpolation.png in ``out``."""
    ae, vae = c.ae.images, c.vae.images
    n = min(8, len(ae["originals"]))
    recon = rows_figure([_u8(ae["originals"][:n]), _u8(ae["reconstructions"][:n]),
                         _u8(vae["reconstructions"][:n])], ["original", "AE", "VAE"], out / "recon.png",
                        [[""] * n, _mse_captions(ae, n), _mse_captions(vae, n)])
    samples = samples_figure(c, out / "samples.png")
    steps = len(ae["interpolation"])
    interp = rows_figure([np.concatenate([_u8(images["originals"][:1]), _u8(images["interpolation"]),
                                          _u8(images["originals"][1:2])]) for images in (ae, vae)],
                         ["AE", "VAE"], out / "interpolation.png",
                         [["image A", *[""] * steps, "image B"]] * 2)
    return {"recon": recon, "samples": samples, "interpolation": interp}


def samples_figure(c: Comparison, path: Path) -> Path:
    """Decoded samples, ten per row: AE and VAE, each from N(0, I) and from a fitted Gaussian."""
    return rows_figure([_u8(images[source][:N_SHOWN]) for images in (c.ae.images, c.vae.images)
                        for source in ("prior", "fitted")],
                       ["AE\nz ~ N(0, I)", "AE\nfitted Gaussian", "VAE\nz ~ N(0, I)",
                        "VAE\nfitted Gaussian"], path)


def samples_png(c: Comparison) -> bytes:
    """:func:`samples_figure` as PNG bytes, written to no lasting file (a notebook's picture)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return samples_figure(c, Path(tmp) / "samples.png").read_bytes()


def _numbers(c: Comparison) -> str:
    ae, vae = c.ae, c.vae
    rows: list[list[Any]] = [
        ["reconstruction MSE (pixels in [0, 1])", ae.recon_mse, vae.recon_mse],
        ["Laplacian variance of reconstructions / originals", ae.laplacian_ratio, vae.laplacian_ratio],
        ["high-frequency energy of reconstructions / originals", ae.hf_ratio, vae.hf_ratio],
        ["nearest-training-image MSE: reconstructions", ae.recon_distance, vae.recon_distance],
    ]
    for source, what in (("prior", "z ~ N(0, I)"), ("fitted", "z ~ fitted Gaussian")):
        rows.append([f"nearest-training-image MSE: samples, {what}", ae.sample_distance[source],
                     vae.sample_distance[source]])
        rows.append([f"samples' over reconstructions' nearest-training-image MSE ({what})",
                     ae.plausibility(source), vae.plausibility(source)])
        rows.append([f"Laplacian variance of samples ({what}) / originals", ae.sample_laplacian_ratio[source],
                     vae.sample_laplacian_ratio[source]])
    rows += [
        ["nearest-training-image MSE: interpolation midpoints", ae.midpoint_distance, vae.midpoint_distance],
        ["encoded data: mean over elements of |mean z|  (N(0, I): 0)", ae.z_mean_abs, vae.z_mean_abs],
        ["encoded data: mean over elements of std z  (N(0, I): 1)", ae.z_std, vae.z_std],
    ]
    note = (f'<p class="note">Held-out real images lie at nearest-training-image MSE {c.real_distance:.4g} '
            f"(reference: {c.n_ref} training images).</p>")
    return html.table(["measure", "AE", "VAE"], rows) + note


def _verdicts(c: Comparison) -> str:
    words = {True: ("yes", "yes"), False: ("no", "no"), None: ("note", "too close to call")}
    rows = "".join(f"<tr><td>{html.esc(claim)}</td><td>{html.esc(evidence)}</td>"
                   f'<td class="{words[holds][0]}">{words[holds][1]}</td></tr>'
                   for claim, evidence, holds in verdicts(c))
    return ("<table><thead><tr><th>textbook claim</th><th>measured here</th><th>holds here?</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


METHOD = """<ul>
<li>Every measure is on images scaled to [0, 1]; MSE is per pixel.</li>
<li>Sharpness: variance of the 3x3 Laplacian of the luma, and the power above 0.25 cycles/pixel, each as
the mean over the reconstructions divided by the mean over their originals (100% = as sharp).</li>
<li>Samples: 64 latents from N(0, I) and 64 from a Gaussian (mean and covariance) fitted to the codes of
the training images, decoded. "Nearest-training-image MSE" is the MSE to the closest of the reference
training images; dividing by the same figure for the model's own reconstructions removes the blur that
every output of that model has, so 1.0 means "as close to real images as a reconstruction".</li>
<li>Interpolation midpoints: the decoded mean of the codes of two held-out images.</li>
<li>Noise raises both sharpness measures as much as real edges do: an undertrained, noisy decoder can
score "sharper than the originals" (above 100%). Read them beside the MSE and the pictures.</li>
</ul>"""


def write_page(c: Comparison, out: Path) -> Path:
    """Write the figures, ``compare.json`` and ``compare.html`` into ``out``; returns the page."""
    figures = write_figures(c, out)
    write_json(out / "compare.json", c.to_dict())
    sections = [
        ("summary", "What the numbers show", f'<p class="summary">{html.esc(summary_paragraph(c))}</p>'
                                            + _verdicts(c)),
        ("numbers", "Numbers", _numbers(c)),
        ("samples", "Samples", "<p>Decoded latents, ten per row.</p>"
                               + html.img(figures["samples"], "samples from each model")),
        ("interpolation", "Interpolation", "<p>The decoded linear path between the codes of two held-out "
                                           "images; the originals at the ends.</p>"
                                           + html.img(figures["interpolation"], "interpolations")),
        ("reconstructions", "Reconstructions", html.img(figures["recon"], "reconstructions")),
        ("models", "Models", html.table(["", "model", "run folder"],
                                        [["AE", c.ae.description, c.ae.path], ["VAE", c.vae.description,
                                                                                c.vae.path]])),
        ("method", "How it is measured", METHOD),
    ]
    text = html.page(f"AE vs VAE on {c.data_spec}", f"{c.n_eval} evaluation images: {c.held_out}", sections)
    return write_text(out / PAGE, text)


# ---------------------------------------------------------------- N families (``latentlab compare``)

CSV = "compare.csv"


def write_many_figures(c: ManyComparison, out: Path) -> dict[str, Path]:
    """recon.png, samples.png, interpolation.png in ``out``: one row per model."""
    first = c.models[0].base.images
    n = min(8, len(first["originals"]))
    recon = rows_figure([_u8(first["originals"][:n]), *[_u8(m.base.images["reconstructions"][:n])
                                                        for m in c.models]],
                        ["original", *[m.name for m in c.models]], out / "recon.png",
                        [[""] * n, *[_mse_captions(m.base.images, n) for m in c.models]])
    samples = rows_figure([_u8(m.base.images[source][:N_SHOWN]) for m in c.models for source in ("prior", "fitted")],
                          [f"{m.name}\n{what}" for m in c.models for what in ("z ~ N(0, I)", "fitted Gaussian")],
                          out / "samples.png")
    steps = len(first["interpolation"])
    interp = rows_figure([np.concatenate([_u8(m.base.images["originals"][:1]), _u8(m.base.images["interpolation"]),
                                          _u8(m.base.images["originals"][1:2])]) for m in c.models],
                         [m.name for m in c.models], out / "interpolation.png",
                         [["image A", *[""] * steps, "image B"]] * len(c.models))
    return {"recon": recon, "samples": samples, "interpolation": interp}


def write_csv(c: ManyComparison, path: Path) -> Path:
    """One row per model: every measure (NaN where it does not apply)."""
    import csv
    import io

    rows = [{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in m.row().items()} for m in c.models]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buf.getvalue())


def _many_numbers(c: ManyComparison) -> str:
    rows: list[list[Any]] = [[MEASURES[key].label, *[m.row()[key] for m in c.models]] for key in MEASURES]
    units = ["active units (of the latent elements)", *[f"{m.active_units} of {m.latent_dim}" for m in c.models]]
    rows.insert(list(MEASURES).index("active_fraction"), units)
    from latentlab.compare_many import FACTOR_SCORES

    rows += [[label, *[m.extra.get(key, float("nan")) for m in c.models]]
             for key, label in FACTOR_SCORES.items() if any(key in m.extra for m in c.models)]
    note = (f'<p class="note">Held-out real images lie at nearest-training-image MSE {c.real_distance:.4g} '
            f"(reference: {c.n_ref} training images). nan: the measure does not apply to that model.</p>")
    return html.table(["measure", *[m.name for m in c.models]], rows) + note


def _many_verdicts(c: ManyComparison) -> str:
    words = {True: ("yes", "yes"), False: ("no", "no"), None: ("note", "open")}
    rows = "".join(
        f"<tr><td>{html.esc(v.claim.family)}</td><td>{html.esc(v.claim.role)}</td>"
        f"<td>{html.esc(v.claim.text)} <span class=\"note\">({html.esc(v.claim.source)})</span></td>"
        f"<td>{html.esc(v.evidence)}</td>"
        f'<td class="{words[v.holds][0]}">{words[v.holds][1]}</td></tr>'
        for v in many_verdicts(c))
    return ("<table><thead><tr><th>family</th><th></th><th>textbook claim</th><th>measured here</th>"
            f"<th>holds here?</th></tr></thead><tbody>{rows}</tbody></table>")


MANY_METHOD = METHOD.replace("</ul>", """<li>PSNR: the mean over images of each image's PSNR (data range 1);
SSIM: torchmetrics' mean SSIM (Gaussian window, sigma 1.5).</li>
<li>k-NN precision and recall (Kynkaanniemi et al., NeurIPS 2019), in pixel space, k = 3: the share of
samples inside the k-NN ball of some held-out real image (realism), and the share of real images
inside the k-NN ball of some sample (coverage); as many samples as real images.</li>
<li>Active units (Burda et al., ICLR 2016): elements whose posterior mean (a plain autoencoder's code)
varies over the held-out images with variance above 0.01. KL per element: a VAE's
KL(q(z|x) || N(0, I)) averaged over elements and images.</li>
<li>Planted anomalies: the first half of the held-out images as normals against CutPaste and
shuffled-tile versions (latentlab.anomaly.pseudo) of the second half; the score is each image's
reconstruction MSE.</li>
<li>Code sensitivity: the mean distance between the codes of an image and of the image plus Gaussian
noise (std 10% of the value range), over the mean distance between codes of different images. Noisy
PSNR: reconstructions of those noisy inputs against the clean images.</li>
<li>When the data has known factors (faces, shapes, sets with factor columns): MIG, SAP and DCI
(latentlab.metrics, as in disentanglement_lib) of the held-out posterior means, half of the held-out
images fitting the estimators and half testing them.</li>
<li>A claim is judged against the family it names; differences within 5% (0.2 dB for PSNR, 0.01 for
SSIM and AUC, 0.02 for precision and recall, 0.05 for the active fraction) are "open".</li>
</ul>""")


def write_many_page(c: ManyComparison, out: Path) -> Path:
    """Write the figures, ``compare.json``, ``compare.csv`` and ``compare.html`` into ``out``."""
    figures = write_many_figures(c, out)
    write_csv(c, out / CSV)
    write_json(out / "compare.json", {
        "data": c.data_spec, "n_eval": c.n_eval, "n_reference": c.n_ref, "held_out": c.held_out,
        "real_distance": c.real_distance, "budget_seconds": c.budget,
        "models": [{k: (None if isinstance(v, float) and v != v else v) for k, v in m.row().items()}
                   for m in c.models],
        "verdicts": [v.to_dict() for v in many_verdicts(c)], "summary": many_summary(c)})
    models = [[m.name, m.kind, m.base.description, m.base.path, m.train_seconds, m.steps] for m in c.models]
    sections = [
        ("summary", "What the numbers show", f'<p class="summary">{html.esc(many_summary(c))}</p>'
                                            + _many_verdicts(c)),
        ("numbers", "Numbers", _many_numbers(c)),
        ("samples", "Samples", "<p>Decoded latents, ten per row: from N(0, I) and from a Gaussian fitted to the "
                               "codes of the training images.</p>" + html.img(figures["samples"], "samples")),
        ("interpolation", "Interpolation", "<p>The decoded linear path between the codes of two held-out "
                                           "images; the originals at the ends.</p>"
                                           + html.img(figures["interpolation"], "interpolations")),
        ("reconstructions", "Reconstructions", html.img(figures["recon"], "reconstructions")),
        ("models", "Models", html.table(["name", "kind", "model", "run folder", "training seconds", "steps"],
                                        models)),
        ("method", "How it is measured", MANY_METHOD),
    ]
    budget = f", {format_duration(c.budget)} of training each" if c.budget else ""
    text = html.page(f"{len(c.models)} autoencoder families on {c.data_spec}",
                     f"{c.n_eval} evaluation images: {c.held_out}{budget}", sections)
    return write_text(out / PAGE, text)
