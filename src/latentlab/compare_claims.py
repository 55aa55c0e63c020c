"""The textbook claims of every family, each with the measure that tests it and a verdict.

Each family's usual advantage and problem (the course's question: "list an advantage and a
disadvantage compared with a vanilla autoencoder") is stated as a comparison of one measure
against another family (the plain autoencoder, or the VAE for claims made against it) and
judged on the numbers of :class:`latentlab.compare_many.ManyComparison`: holds, does not hold, or
open (too close to call, or no family to judge against). The wording and the measure come from
the family's card (:mod:`latentlab.models.cards`) where there is one; how each is judged (against
which family, in which direction) is defined here, keyed by family and role.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latentlab.compare_many import ManyComparison

RELATIVE = 0.05  # relative differences up to 5% are "too close to call", unless the measure says otherwise


@dataclass(frozen=True)
class Measure:
    label: str
    higher_is_better: bool | None  # None: neither (a property, not a quality)
    tolerance: float | None = None  # absolute; None: relative RELATIVE


MEASURES: dict[str, Measure] = {
    "recon_mse": Measure("held-out reconstruction MSE (pixels in [0, 1])", False),
    "psnr": Measure("held-out reconstruction PSNR (dB)", True, 0.2),
    "ssim": Measure("held-out reconstruction SSIM", True, 0.01),
    "sharpness": Measure("Laplacian variance of reconstructions / originals", True),
    "hf_energy": Measure("high-frequency energy of reconstructions / originals", True),
    "sample_sharpness": Measure("Laplacian variance of N(0, I) samples / originals", True),
    "sample_distance": Measure("nearest-training-image MSE of N(0, I) samples / of reconstructions", False),
    "fitted_sample_distance": Measure("nearest-training-image MSE of fitted-Gaussian samples / of "
                                      "reconstructions", False),
    "precision": Measure("k-NN precision of N(0, I) samples (realism)", True, 0.02),
    "recall": Measure("k-NN recall of N(0, I) samples (coverage)", True, 0.02),
    "fitted_precision": Measure("k-NN precision of fitted-Gaussian samples", True, 0.02),
    "fitted_recall": Measure("k-NN recall of fitted-Gaussian samples", True, 0.02),
    "midpoint_distance": Measure("nearest-training-image MSE of interpolation midpoints / of reconstructions",
                                 False),
    "active_fraction": Measure("active units / latent elements (Cov_x E[z|x] > 0.01)", None, 0.05),
    "kl_per_element": Measure("KL(q(z|x) || N(0, I)) per element (nats)", None),
    "anomaly_auc": Measure("ROC AUC of the reconstruction error on the planted set", True, 0.01),
    "code_sensitivity": Measure("code shift under input noise / code distance between images", False),
    "noisy_psnr": Measure("PSNR of reconstructions of noisy inputs vs clean images (dB)", True, 0.2),
    "prior_gap": Measure("distance of the codes' per-element mean and std from N(0, I)'s", False),
    "codebook_usage": Measure("fraction of the codebook a batch uses (last logged in training)", True),
    "parameters": Measure("parameters", None),
    "train_seconds": Measure("training seconds", None),
    "step_seconds": Measure("seconds per optimizer step", False),
}


@dataclass(frozen=True)
class Claim:
    """``family``'s ``measure`` is higher (``expect`` +1) or lower (-1) than ``versus``'s; with no
    ``versus``, higher or lower than ``threshold``."""

    family: str
    role: str  # "advantage" or "problem"
    text: str
    measure: str
    versus: str
    expect: int
    source: str = ""  # the paper
    threshold: float = float("nan")  # the bar when there is no ``versus``


# How each family's card claim is judged: (family, role) -> (measure, versus, expect, threshold);
# with the wording used when latentlab.models.cards has no card for the family.
CLAIMS: tuple[Claim, ...] = (
    Claim("ae", "advantage", "Reconstructs more accurately than a VAE: nothing but reconstruction is optimised.",
          "psnr", "vae", +1, "Hinton & Salakhutdinov 2006"),
    Claim("ae", "problem", "Cannot generate: decoded z ~ N(0, I) lie far from real images.",
          "sample_distance", "vae", +1, "Hinton & Salakhutdinov 2006"),
    Claim("vae", "advantage", "Generates: decoded z ~ N(0, I) look like the data.",
          "sample_distance", "ae", -1, "Kingma & Welling 2014"),
    Claim("vae", "problem", "Blurry output: samples less sharp than a plain autoencoder's.",
          "sample_sharpness", "ae", -1, "Kingma & Welling 2014"),
    Claim("beta-vae", "advantage", "A more factorised latent: the stronger KL switches off elements a VAE keeps.",
          "active_fraction", "vae", -1, "Higgins et al. 2017"),
    Claim("beta-vae", "problem", "Reconstructs worse than a VAE.", "psnr", "vae", -1, "Higgins et al. 2017"),
    Claim("denoising", "advantage", "Robust features: its reconstruction error separates anomalies better.",
          "anomaly_auc", "ae", +1, "Vincent et al. 2008"),
    Claim("denoising", "problem", "Smooths fine detail away.", "ssim", "ae", -1, "Vincent et al. 2008"),
    Claim("sparse", "advantage", "Few active elements: a compact code.", "active_fraction", "ae", -1, "Ng 2011"),
    Claim("sparse", "problem", "The sparsity penalty costs reconstruction accuracy.", "psnr", "ae", -1, "Ng 2011"),
    Claim("contractive", "advantage", "Codes insensitive to small input changes: smooth interpolations.",
          "midpoint_distance", "ae", -1, "Rifai et al. 2011"),
    Claim("contractive", "problem", "The Jacobian penalty makes each training step slower.",
          "step_seconds", "ae", +1, "Rifai et al. 2011"),
    Claim("beta-tcvae", "advantage", "Disentangles without the beta-VAE's loss of information: more elements "
          "stay active.", "active_fraction", "beta-vae", +1, "Chen et al. 2018"),
    Claim("beta-tcvae", "problem", "Still blurry: samples less sharp than a plain autoencoder's.",
          "sample_sharpness", "ae", -1, "Chen et al. 2018"),
    Claim("wae", "advantage", "Generates sharper samples than a VAE.", "sample_sharpness", "vae", +1,
          "Tolstikhin et al. 2018"),
    Claim("wae", "problem", "Samples cover the data less evenly than a VAE's.", "recall", "vae", -1,
          "Tolstikhin et al. 2018"),
    Claim("vq-vae", "advantage", "Sharp reconstructions from a discrete code: better than a VAE's.",
          "psnr", "vae", +1, "van den Oord et al. 2017"),
    Claim("vq-vae", "problem", "Codebook collapse: a batch uses under half of the codebook.",
          "codebook_usage", "", -1, "van den Oord et al. 2017", threshold=0.5),
)

# the measure names of latentlab.models.cards -> the keys of MEASURES
CARD_MEASURES = {
    "held-out psnr": "psnr", "held-out ssim": "ssim", "sample sharpness": "sample_sharpness",
    "sample nearest-train distance": "sample_distance", "sample coverage": "recall",
    "active units": "active_fraction", "codebook usage": "codebook_usage", "anomaly auc": "anomaly_auc",
    "training time": "step_seconds", "interpolation midpoints": "midpoint_distance",
}


def direction(a: float, b: float, measure: str) -> int:
    """+1 when ``a`` clearly exceeds ``b`` under ``measure``'s tolerance, -1 clearly below, 0 otherwise."""
    tol = MEASURES[measure].tolerance
    limit = tol if tol is not None else RELATIVE * max(abs(a), abs(b), 1e-12)
    if abs(a - b) <= limit:
        return 0
    return 1 if a > b else -1


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    evidence: str
    holds: bool | None  # None: too close to call, or not judged (see evidence)

    def to_dict(self) -> dict[str, Any]:
        c = self.claim
        return {"family": c.family, "role": c.role, "claim": c.text,
                "measure": c.measure, "measure_label": MEASURES[c.measure].label, "versus": c.versus,
                "evidence": self.evidence, "holds": self.holds}


def card_claims() -> dict[tuple[str, str], tuple[str, str]]:
    """(family, 'advantage'|'problem') -> (the card's text, its measure key), from
    ``latentlab.models.cards`` when it is there (measures it names that are not measured here
    are left out: the claim keeps its own)."""
    try:
        from latentlab.models.cards import CARDS
    except ImportError:
        return {}
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for card in CARDS:
        for role in ("advantage", "problem"):
            claim = getattr(card, role, None)
            text, measure = getattr(claim, "text", None), str(getattr(claim, "measure", "")).lower()
            if isinstance(text, str):
                out[(card.name, role)] = (text, CARD_MEASURES.get(measure, ""))
    return out


def claims() -> list[Claim]:
    """The claims judged: the cards' text and measure where a card gives them, else those above."""
    cards = card_claims()
    out = []
    for claim in CLAIMS:
        text, measure = cards.get((claim.family, claim.role), ("", ""))
        out.append(replace(claim, text=text or claim.text, measure=measure or claim.measure))
    return out


def _judge(claim: Claim, a: float, b: float, versus: str) -> tuple[bool | None, str]:
    if a != a or b != b:  # NaN: not measurable for one of them
        return None, " (not measured for both)" if versus else " (not measured)"
    d = direction(a, b, claim.measure)
    if d == 0:
        return None, " (too close to call)"
    return d == claim.expect, ""


def verdicts(c: ManyComparison) -> list[Verdict]:
    """The claims of every family in ``c``, each judged on its numbers."""
    out = []
    for claim in claims():
        model = c.get(claim.family)
        if model is None:
            continue
        label, a = MEASURES[claim.measure].label, model.value(claim.measure)
        if not claim.versus:
            holds, note = _judge(claim, a, claim.threshold, "")
            out.append(Verdict(claim, f"{label}: {claim.family} {a:.4g} (the bar: {claim.threshold:.4g}){note}",
                               holds))
            continue
        other = c.get(claim.versus)
        if other is None:
            out.append(Verdict(claim, f"{label}: {claim.family} {a:.4g}; no {claim.versus} in this comparison "
                                      "to judge it against", None))
            continue
        b = other.value(claim.measure)
        holds, note = _judge(claim, a, b, claim.versus)
        out.append(Verdict(claim, f"{label}: {claim.family} {a:.4g} vs {claim.versus} {b:.4g}{note}", holds))
    return out


def summary(c: ManyComparison) -> str:
    """A few sentences on what the numbers show, whichever way they come out."""
    ranked = sorted(c.models, key=lambda m: -m.psnr)
    best, worst = ranked[0], ranked[-1]
    s = [f"On {c.n_eval} held-out images ({c.held_out}), {best.name} reconstructs best "
         f"(PSNR {best.psnr:.2f} dB, SSIM {best.ssim:.3f})"
         + (f" and {worst.name} worst ({worst.psnr:.2f} dB)." if len(ranked) > 1 else ".")]
    gen = sorted(c.models, key=lambda m: m.value("sample_distance"))
    s.append(f"Decoding z ~ N(0, I), {gen[0].name}'s samples lie closest to real images "
             f"({gen[0].value('sample_distance'):.2f}x its reconstructions' distance; k-NN precision "
             f"{gen[0].precision['prior']:.2f}, recall {gen[0].recall['prior']:.2f}).")
    auc = max(c.models, key=lambda m: m.anomaly_auc if m.anomaly_auc == m.anomaly_auc else -1.0)
    s.append(f"On the planted anomalies, {auc.name}'s reconstruction error separates best (ROC AUC "
             f"{auc.anomaly_auc:.3f}).")
    held = [v.holds for v in verdicts(c)]
    yes, no, open_ = held.count(True), held.count(False), held.count(None)
    s.append(f"Of {len(held)} textbook claims, {yes} hold here, {no} do not and {open_} are too close to "
             "call or could not be judged.")
    return " ".join(s)
