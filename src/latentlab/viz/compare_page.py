"""The AE-vs-VAE page: figures (PNG files beside the page, also inlined) and one self-contained HTML.

What ``latentlab compare-ae-vae`` writes; the numbers come from :mod:`latentlab.compare`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from latentlab.compare import Comparison, summary_paragraph, verdicts
from latentlab.data.batches import to_uint8
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
    samples = rows_figure([_u8(images[source][:N_SHOWN]) for images in (ae, vae)
                           for source in ("prior", "fitted")],
                          ["AE\nz ~ N(0, I)", "AE\nfitted Gaussian", "VAE\nz ~ N(0, I)",
                           "VAE\nfitted Gaussian"], out / "samples.png")
    steps = len(ae["interpolation"])
    interp = rows_figure([np.concatenate([_u8(images["originals"][:1]), _u8(images["interpolation"]),
                                          _u8(images["originals"][1:2])]) for images in (ae, vae)],
                         ["AE", "VAE"], out / "interpolation.png",
                         [["image A", *[""] * steps, "image B"]] * 2)
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
