"""A plain autoencoder against a VAE: the textbook claims, measured on the same data.

The usual lecture answer to "what does a VAE gain, and what is its problem" (Kingma & Welling,
2014): a VAE can *generate* by decoding z ~ N(0, I), a plain autoencoder cannot, and VAE output
is blurrier. This module trains (or opens) one model of each kind with the same backbone and
latent size and measures, on held-out images:

* reconstruction error (MSE, pixels scaled to [0, 1]);
* sharpness relative to the originals: the variance of the Laplacian (Pech-Pacheco et al., 2000)
  and the energy above half the Nyquist frequency;
* how far decoded samples lie from the nearest training image, relative to how far the model's
  own reconstructions lie (1.0: samples look as "real" as reconstructions), for z ~ N(0, I) and
  for z from a Gaussian fitted to the encoded data; likewise for interpolation midpoints;
* the statistics of the encoded data against the N(0, I) prior.

The page's paragraph and verdicts are generated from these numbers, whichever way they come out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentlab.data.sources import absolute_spec
from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder
from latentlab.runs import Run, split_indices

SOURCES = ("prior", "fitted")


# ---------------------------------------------------------------- measures on images in [0, 1]


def luma(x: Tensor) -> Tensor:
    """(N, C, H, W) in [0, 1] -> (N, H, W) luma (ITU-R BT.601 weights; grey images as they are)."""
    if x.shape[1] == 1:
        return x[:, 0]
    w = torch.tensor((0.299, 0.587, 0.114), dtype=x.dtype)
    return torch.einsum("nchw,c->nhw", x[:, :3], w)


def laplacian_variance(x: Tensor) -> Tensor:
    """(N,) variance of the 3x3 Laplacian of each image's luma: higher = more edges = sharper."""
    y = luma(x.float())[:, None]  # (N, 1, H, W)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return torch.nn.functional.conv2d(y, kernel).flatten(1).var(dim=1)


def high_frequency_energy(x: Tensor, cutoff: float = 0.25) -> Tensor:
    """(N,) mean power of each image's luma above ``cutoff`` cycles/pixel (Nyquist is 0.5)."""
    y = luma(x.float())  # (N, H, W)
    h, w = y.shape[-2:]
    power = torch.fft.fft2(y - y.mean(dim=(1, 2), keepdim=True)).abs().pow(2) / (h * w) ** 2
    fy, fx = torch.fft.fftfreq(h), torch.fft.fftfreq(w)
    mask = (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt() > cutoff  # (H, W)
    energy: Tensor = (power * mask).flatten(1).sum(dim=1)
    return energy


def nearest_distance(x: Tensor, reference: Tensor, chunk: int = 256) -> Tensor:
    """(N,) per-pixel MSE from each image to its nearest image in ``reference`` (M, C, H, W)."""
    ref = reference.flatten(1).float()  # (M, P)
    ref_sq = ref.pow(2).sum(1)
    out = []
    for part in x.flatten(1).float().split(chunk):
        d = part.pow(2).sum(1, keepdim=True) - 2 * part @ ref.T + ref_sq[None]  # (n, M)
        out.append(d.min(dim=1).values.clamp_min(0) / ref.shape[1])
    return torch.cat(out)


def to_unit(x: Tensor, value_range: tuple[float, float]) -> Tensor:
    lo, hi = value_range
    return ((x.float() - lo) / (hi - lo)).clamp(0.0, 1.0)


# ---------------------------------------------------------------- evidence per model


@dataclass
class ModelEvidence:
    """What was measured for one model (images in [0, 1])."""

    name: str
    path: str
    description: str
    recon_mse: float
    laplacian_ratio: float  # reconstructions / originals
    hf_ratio: float
    recon_distance: float  # nearest-training-image MSE of the reconstructions
    sample_distance: dict[str, float]  # source -> nearest-training-image MSE of decoded samples
    sample_laplacian_ratio: dict[str, float]
    midpoint_distance: float  # of interpolation midpoints between held-out pairs
    z_mean_abs: float  # mean over elements of |mean of z|; N(0, I) gives 0
    z_std: float  # mean over elements of the std of z; N(0, I) gives 1
    images: dict[str, Tensor] = field(default_factory=dict, repr=False)  # figures, in [0, 1]

    def plausibility(self, source: str) -> float:
        """Sample distance over reconstruction distance: 1.0 = as close to real images as reconstructions."""
        return self.sample_distance[source] / max(self.recon_distance, 1e-12)

    def to_dict(self) -> dict[str, Any]:
        """The numbers (no images); NaN as None, so the JSON is strict."""
        def clean(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return None if isinstance(v, float) and v != v else v
        return {k: clean(v) for k, v in self.__dict__.items() if k != "images"}


@torch.no_grad()
def _embed_all(model: Autoencoder, x: Tensor, chunk: int = 256) -> Tensor:
    return torch.cat([model.embed(part).float() for part in x.split(chunk)])  # (N, D)


@torch.no_grad()
def _decode_all(model: Autoencoder, z: Tensor, chunk: int = 256) -> Tensor:
    return torch.cat([model.decode(part).float() for part in z.split(chunk)])  # (N, C, H, W)


@torch.no_grad()
def evaluate(name: str, run: Run, images: Any, eval_rows: np.ndarray, ref_rows: np.ndarray,
             n_samples: int = 64, seed: int = 0) -> ModelEvidence:
    """Measure one model on rows ``eval_rows`` of ``images`` (a PreparedSet or an ImageSet) with
    rows ``ref_rows`` as the training reference."""
    from latentlab.latent.explore import interpolate, sample

    model, vr = run.model, run.value_range
    x = run.inputs(images, eval_rows)  # (N, C, H, W) model space
    x_ref = run.inputs(images, ref_rows)  # (M, C, H, W)
    z_ref, ref = _embed_all(model, x_ref), to_unit(x_ref, vr)
    z = _embed_all(model, x)
    x_hat = _decode_all(model, z)
    x01, x_hat01 = to_unit(x, vr), to_unit(x_hat, vr)
    lap, hf = laplacian_variance(x01).mean(), high_frequency_energy(x01).mean()
    k = min(n_samples, len(x))
    samples, distance, sample_lap = {}, {}, {}
    for source in SOURCES:
        g = torch.Generator().manual_seed(seed)
        _, s = sample(model, n_samples, source=source, z_data=z_ref, generator=g)
        samples[source] = to_unit(s, vr)
        distance[source] = float(nearest_distance(samples[source], ref).mean())
        sample_lap[source] = float(laplacian_variance(samples[source]).mean() / lap)
    half = len(x) // 2
    pairs = min(k, half)
    mid = to_unit(model.decode((z[:pairs] + z[half:half + pairs]) / 2), vr)  # (pairs, C, H, W)
    path = to_unit(interpolate(model, x[:1], x[1:2], steps=8), vr)
    return ModelEvidence(
        name=name, path=str(run.path), description=model.describe(),
        recon_mse=float((x_hat01 - x01).pow(2).flatten(1).mean(1).mean()),
        laplacian_ratio=float(laplacian_variance(x_hat01).mean() / lap),
        hf_ratio=float(high_frequency_energy(x_hat01).mean() / hf),
        recon_distance=float(nearest_distance(x_hat01[:k], ref).mean()),
        sample_distance=distance, sample_laplacian_ratio=sample_lap,
        midpoint_distance=float(nearest_distance(mid, ref).mean()) if pairs else float("nan"),
        z_mean_abs=float(z.mean(0).abs().mean()), z_std=float(z.std(0).mean()) if len(z) > 1 else 0.0,
        images={"originals": x01, "reconstructions": x_hat01, "interpolation": path, **samples},
    )


# ---------------------------------------------------------------- which images


def evaluation_rows(runs: Sequence[Run], data: Any, max_eval: int = 400,
                    max_ref: int = 1000) -> tuple[np.ndarray, np.ndarray, str]:
    """(eval rows, reference rows, how held out): the runs' validation split when both trained on
    this data with the same split, else a fresh 20% split of ``data``."""
    n = len(data)
    splits = set()
    for run in runs:
        train = run.config.get("train", {})
        splits.add((run.data_spec, run.config.get("data", {}).get("n_images"),
                    float(train.get("val_fraction", 0.0)), int(train.get("seed", 0))))
    if n < 10:
        raise LatentlabError(f"--data {data.spec}: {n} images; expected at least 10 to compare on")
    spec, n_images, val_fraction, seed = next(iter(splits))
    ref, held = split_indices(n, val_fraction, seed) if val_fraction > 0 else (np.arange(n), np.arange(0))
    if len(splits) == 1 and spec == absolute_spec(data.spec) and n_images == n and len(held) >= 2:
        every = "both models" if len(runs) == 2 else "every model" if len(runs) > 2 else "the model"
        how = f"the {len(held)} validation images {every} {'were' if len(runs) == 2 else 'was'} trained without"
    else:
        ref, held = split_indices(n, 0.2, 0)
        seen = any(run.data_spec == absolute_spec(data.spec) for run in runs)
        how = (f"a 20% split of {data.spec}" + (" (which a model trained on: not strictly held out)"
                                                 if seen else ", data no model was trained on"))
    return held[:max_eval], ref[:max_ref], how


def check_pair(ae: Run, vae: Run) -> None:
    if ae.model.is_variational:
        raise LatentlabError(f"--ae {ae.path}: is a VAE ({ae.model.kind}); expected a plain autoencoder")
    if not vae.model.is_variational:
        raise LatentlabError(f"--vae {vae.path}: is a plain autoencoder ({vae.model.kind}); expected a VAE")
    if ae.model.in_shape != vae.model.in_shape:
        raise LatentlabError(f"--ae/--vae: input shapes differ ({ae.model.in_shape} vs {vae.model.in_shape})")
    if dataclasses.replace(ae.rule, noise=0.0) != dataclasses.replace(vae.rule, noise=0.0):
        raise LatentlabError(f"--ae/--vae: the runs prepare images differently ({ae.rule} vs {vae.rule}); "
                             "compare runs trained with the same --crop/--center-crop/--resize/--range")


@dataclass
class Comparison:
    ae: ModelEvidence
    vae: ModelEvidence
    data_spec: str
    n_eval: int
    n_ref: int
    held_out: str
    real_distance: float  # nearest-training-image MSE of the held-out originals themselves

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data_spec, "n_eval": self.n_eval, "n_reference": self.n_ref,
                "held_out": self.held_out, "real_distance": self.real_distance,
                "ae": self.ae.to_dict(), "vae": self.vae.to_dict(),
                "verdicts": [{"claim": c, "evidence": e, "holds": h} for c, e, h in verdicts(self)],
                "summary": summary_paragraph(self)}

    def _repr_html_(self) -> str:
        """A notebook shows the summary, the verdicts and the numbers of ``compare.html``, with the samples."""
        from latentlab.viz import compare_page, html

        return (f'<p class="summary">{html.esc(summary_paragraph(self))}</p>' + compare_page._verdicts(self)
                + compare_page._numbers(self) + html.img(self._repr_png_(), "samples of each model"))

    def _repr_png_(self) -> bytes:
        """Ten decoded samples per row: AE and VAE, each from N(0, I) and from a Gaussian fitted to its codes."""
        from latentlab.viz import compare_page

        return compare_page.samples_png(self)


def compare_runs(ae: Run, vae: Run, data: Any, n_samples: int = 64, seed: int = 0) -> Comparison:
    """Measure both runs on the same held-out images of ``data`` (an ImageSet)."""
    check_pair(ae, vae)
    eval_rows, ref_rows, how = evaluation_rows((ae, vae), data)
    real = nearest_distance(to_unit(ae.inputs(data, eval_rows[:n_samples]), ae.value_range),
                            to_unit(ae.inputs(data, ref_rows), ae.value_range))
    return Comparison(ae=evaluate("AE", ae, data, eval_rows, ref_rows, n_samples, seed),
                      vae=evaluate("VAE", vae, data, eval_rows, ref_rows, n_samples, seed),
                      data_spec=data.spec, n_eval=len(eval_rows), n_ref=len(ref_rows), held_out=how,
                      real_distance=float(real.mean()))


# ---------------------------------------------------------------- what the numbers say


TOLERANCE = 0.05  # relative differences up to 5% are "too close to call"


def direction(a: float, b: float, tol: float = TOLERANCE) -> int:
    """+1 when ``a`` clearly exceeds ``b``, -1 when clearly below, 0 within ``tol`` (relative)."""
    if abs(a - b) <= tol * max(abs(a), abs(b), 1e-12):
        return 0
    return 1 if a > b else -1


def _holds(d: int) -> bool | None:
    return None if d == 0 else d > 0


def _ratio(m: ModelEvidence, value: float) -> float:
    return value / max(m.recon_distance, 1e-12)


def verdicts(c: Comparison) -> list[tuple[str, str, bool | None]]:
    """(claim, the numbers, does it hold here: True, False or None when too close to call)."""
    ae, vae = c.ae, c.vae
    sharp = (direction(ae.laplacian_ratio, vae.laplacian_ratio), direction(ae.hf_ratio, vae.hf_ratio))
    mid_ae, mid_vae = _ratio(ae, ae.midpoint_distance), _ratio(vae, vae.midpoint_distance)
    return [
        ("A plain autoencoder cannot generate from N(0, I); a VAE can.",
         f"samples from N(0, I) lie {ae.plausibility('prior'):.2f}x (AE) and "
         f"{vae.plausibility('prior'):.2f}x (VAE) as far from the nearest training image as each "
         "model's own reconstructions",
         _holds(direction(ae.plausibility("prior"), vae.plausibility("prior")))),
        ("A plain autoencoder's codes do not follow N(0, I); a VAE's roughly do.",
         f"per element, mean |mean| {ae.z_mean_abs:.2f} vs {vae.z_mean_abs:.2f} and mean std "
         f"{ae.z_std:.2f} vs {vae.z_std:.2f} (N(0, I): 0 and 1)",
         _holds(direction(_prior_gap(ae), _prior_gap(vae)))),
        ("VAE reconstructions are blurrier.",
         f"Laplacian variance {100 * ae.laplacian_ratio:.0f}% (AE) vs {100 * vae.laplacian_ratio:.0f}% (VAE) "
         f"of the originals; high-frequency energy {100 * ae.hf_ratio:.0f}% vs {100 * vae.hf_ratio:.0f}%",
         _holds(sharp[0]) if sharp[0] == sharp[1] else None),
        ("A plain autoencoder reconstructs more accurately.",
         f"MSE {ae.recon_mse:.4g} (AE) vs {vae.recon_mse:.4g} (VAE)",
         _holds(direction(vae.recon_mse, ae.recon_mse))),
        ("Interpolating in a VAE's latent space stays closer to real images.",
         f"midpoints lie {mid_ae:.2f}x (AE) and {mid_vae:.2f}x (VAE) as far from the nearest "
         "training image as the reconstructions",
         _holds(direction(mid_ae, mid_vae))),
    ]


def _prior_gap(m: ModelEvidence) -> float:
    """How far the encoded data's per-element statistics are from N(0, I)'s (0 mean, 1 std)."""
    return m.z_mean_abs + abs(float(np.log(max(m.z_std, 1e-12))))


def summary_paragraph(c: Comparison) -> str:
    """A few sentences stating what the numbers show, whichever way they come out."""
    ae, vae = c.ae, c.vae
    d = direction(vae.recon_mse, ae.recon_mse)
    better, worse = (ae, vae) if d > 0 else (vae, ae)
    times = worse.recon_mse / max(better.recon_mse, 1e-12)
    s = [f"On {c.n_eval} images ({c.held_out}) the AE reconstructs with MSE {ae.recon_mse:.4g} and the VAE "
         f"with {vae.recon_mse:.4g}: "
         + ("about equally well." if d == 0 else f"the {better.name}'s error is {times:.2f} times lower.")]
    lap, hf = direction(ae.laplacian_ratio, vae.laplacian_ratio), direction(ae.hf_ratio, vae.hf_ratio)
    sharper = "AE" if lap > 0 else "VAE"
    s.append(f"Relative to the originals, the AE's reconstructions keep {100 * ae.laplacian_ratio:.0f}% "
             f"of the Laplacian variance and {100 * ae.hf_ratio:.0f}% of the high-frequency energy, "
             f"the VAE's {100 * vae.laplacian_ratio:.0f}% and {100 * vae.hf_ratio:.0f}%: "
             + ("the two are about equally sharp." if lap == hf == 0 else
                f"the {sharper}'s reconstructions are sharper by both measures." if lap == hf else
                "the two measures do not clearly agree on which model is sharper."))
    pa, pv, fa = ae.plausibility("prior"), vae.plausibility("prior"), ae.plausibility("fitted")
    prior = direction(pa, pv)
    s.append(f"Decoding z ~ N(0, I) gives AE images {pa:.2f}x and VAE images {pv:.2f}x as far from the "
             f"nearest training image as each model's own reconstructions (1.0 = as close); from a Gaussian "
             f"fitted to its codes the AE gets {fa:.2f}x. "
             + {1: "So N(0, I) suits the VAE's decoder better than the AE's",
                0: "So N(0, I) works about equally for both decoders",
                -1: "So here N(0, I) works better for the AE's decoder than for the VAE's"}[prior]
             + f" (per-element std of the codes: AE {ae.z_std:.2f}, VAE {vae.z_std:.2f}; N(0, I): 1).")
    held = [h for _, _, h in verdicts(c)]
    yes, no, unclear = held.count(True), held.count(False), held.count(None)
    s.append(f"Of the {len(held)} textbook claims below, {yes} {'holds' if yes == 1 else 'hold'} on this "
             f"data and budget, {no} {'does' if no == 1 else 'do'} not and {unclear} "
             f"{'is' if unclear == 1 else 'are'} too close to call "
             f"(differences within {100 * TOLERANCE:.0f}%).")
    return " ".join(s)


# ---------------------------------------------------------------- training the pair


def default_channels(in_shape: tuple[int, int, int], backbone: str = "conv") -> tuple[int, ...]:
    """Conv widths 16, 32, 64 -- as many stride-2 layers as the image size divides by."""
    h, w = in_shape[1:]
    depth = next((k for k in (3, 2, 1) if h % 2 ** k == 0 and w % 2 ** k == 0), 0)
    if depth == 0:
        raise LatentlabError(f"--backbone {backbone}: images of {h}x{w}; expected an even height and width")
    return (16, 32, 64)[:depth]


def pair_configs(in_shape: tuple[int, int, int], latent_dim: int, backbone: str) -> tuple[Any, Any]:
    """An AE and a VAE config with the same backbone and latent size."""
    from latentlab.models import ConvConfig, ConvVAEConfig, FCNConfig, FCNVAEConfig

    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise LatentlabError(f"--latent-dim {latent_dim}: expected a positive integer")
    if backbone == "fcn":
        return (FCNConfig(in_shape=in_shape, hidden=(256, 64), latent_dim=latent_dim),
                FCNVAEConfig(in_shape=in_shape, hidden=(256, 64), latent_dim=latent_dim))
    if backbone == "conv":
        channels = default_channels(in_shape)
        return (ConvConfig(in_shape=in_shape, channels=channels, latent_dim=latent_dim),
                ConvVAEConfig(in_shape=in_shape, channels=channels, latent_dim=latent_dim))
    raise LatentlabError(f"--backbone {backbone}: expected 'fcn' or 'conv'")


def train_pair(data: Any, out: Path, *, epochs: int = 8, latent_dim: int = 8, backbone: str = "fcn",
               seed: int = 0, overwrite: bool = False, progress: bool = False) -> tuple[Path, Path]:
    """Train the AE into ``out/ae`` and the VAE into ``out/vae`` on the same data, split and seed."""
    from latentlab.data.batches import BatchSpec
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    ae_config, vae_config = pair_configs(data.image_shape, latent_dim, backbone)
    for name in ("ae", "vae"):  # refuse before training either model
        if not overwrite and (out / name).is_dir() and any((out / name).iterdir()):
            raise LatentlabError(f"{out / name}: folder exists and is not empty; "
                                 "pass --overwrite to replace it")
    train = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, val_fraction=0.2, seed=seed)
    for config, name in ((ae_config, "ae"), (vae_config, "vae")):
        train_run(config, data, BatchSpec(), train, out / name, overwrite=overwrite, progress=progress)
    return out / "ae", out / "vae"
