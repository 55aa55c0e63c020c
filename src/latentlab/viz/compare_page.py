"""The AE-vs-VAE page: figures (PNG files beside the page, also inlined) and one self-contained HTML.

What ``latentlab compare-ae-vae`` writes; the numbers come from :mod:`latentlab.compare`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latentlab.compare import Comparison, summary_paragraph, verdicts
from latentlab.data.batches import to_uint8
from latentlab.io import write_json, write_text
from latentlab.viz import html
from latentlab.viz.grids import image_grid

PAGE = "compare.html"
N_SHOWN = 10


def _u8(x: Any) -> list[Any]:
    return list(to_uint8(x, (0.0, 1.0)))


def _mse_titles(images: dict[str, Any], n: int) -> list[str]:
    mse = (images["reconstructions"][:n] - images["originals"][:n]).pow(2).flatten(1).mean(1)
    return [f"MSE {m:.4f}" for m in mse.tolist()]


def write_figures(c: Comparison, out: Path) -> dict[str, Path]:
    """recon.png, samples.png, interpolation.png in ``out``."""
    ae, vae = c.ae.images, c.vae.images
    n = min(8, len(ae["originals"]))
    recon = image_grid(
        [_u8(ae["originals"][:n]), _u8(ae["reconstructions"][:n]), _u8(vae["reconstructions"][:n])],
        [[""] * n, _mse_titles(ae, n), _mse_titles(vae, n)],
        out / "recon.png", row_labels=["original", "AE", "VAE"], panel=1.3)
    samples = image_grid(
        [_u8(ae["prior"][:N_SHOWN]), _u8(ae["fitted"][:N_SHOWN]), _u8(vae["prior"][:N_SHOWN]),
         _u8(vae["fitted"][:N_SHOWN])], None, out / "samples.png",
        row_labels=["AE, z ~ N(0, I)", "AE, fitted Gaussian", "VAE, z ~ N(0, I)", "VAE, fitted Gaussian"],
        panel=1.1)
    interp = image_grid([_u8(ae["interpolation"]), _u8(vae["interpolation"])], None,
                        out / "interpolation.png", row_labels=["AE", "VAE"], panel=1.1)
    return {"recon": recon, "samples": samples, "interpolation": interp}


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
        ("samples", "Samples", "<p>Decoded latents: four rows of ten.</p>"
                               + html.img(figures["samples"], "samples from each model")),
        ("interpolation", "Interpolation", "<p>Linear path between the codes of two held-out images.</p>"
                                           + html.img(figures["interpolation"], "interpolations")),
        ("reconstructions", "Reconstructions", html.img(figures["recon"], "reconstructions")),
        ("models", "Models", html.table(["", "model", "run folder"],
                                        [["AE", c.ae.description, c.ae.path], ["VAE", c.vae.description,
                                                                                c.vae.path]])),
        ("method", "How it is measured", METHOD),
    ]
    text = html.page(f"AE vs VAE on {c.data_spec}", f"{c.n_eval} evaluation images: {c.held_out}", sections)
    return write_text(out / PAGE, text)
