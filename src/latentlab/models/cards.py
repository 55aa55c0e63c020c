"""The model families as a table: paper, what each adds to a plain autoencoder, one advantage and
one problem -- each claim with the measurement that ``latentlab compare`` uses to check it.

Plain data (no torch): ``latentlab models`` prints it, ``compare`` reads the measures, docs/models.md
explains them. Measure names are the ones ``compare`` reports: "held-out PSNR", "held-out SSIM",
"sample sharpness", "sample nearest-train distance", "sample coverage", "active units",
"codebook usage", "anomaly AUC", "training time", "interpolation midpoints".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    text: str
    measure: str  # what `latentlab compare` measures to say whether it holds here


@dataclass(frozen=True)
class Card:
    name: str  # the family name of `--model`
    title: str
    authors: str
    year: int
    venue: str
    link: str
    adds: str  # what it adds to a plain autoencoder
    advantage: Claim
    problem: Claim
    backbones: tuple[str, ...] = ("fcn", "conv", "resnet")
    default_backbone: str = "fcn"

    @property
    def paper(self) -> str:
        return f"{self.authors}, \"{self.title}\", {self.venue} {self.year}"


CARDS: tuple[Card, ...] = (
    Card("ae", "Reducing the Dimensionality of Data with Neural Networks", "Hinton & Salakhutdinov", 2006,
         "Science", "https://doi.org/10.1126/science.1127647",
         "the baseline: encoder to a small code, decoder back, reconstruction loss",
         Claim("sharpest reconstructions for its size", "held-out PSNR"),
         Claim("cannot generate: decoding N(0, I) samples gives non-images", "sample nearest-train distance")),
    Card("vae", "Auto-Encoding Variational Bayes", "Kingma & Welling", 2014, "ICLR",
         "https://arxiv.org/abs/1312.6114",
         "a Gaussian posterior q(z|x) and a KL term to the prior N(0, I)",
         Claim("generates: prior samples decode to face-like images", "sample nearest-train distance"),
         Claim("blurry output", "sample sharpness"), default_backbone="conv"),
    Card("beta-vae", "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework",
         "Higgins et al.", 2017, "ICLR", "https://openreview.net/forum?id=Sy2fzU9gl",
         "the KL weighted by beta > 1 (default 4)",
         Claim("more factorised latent: single elements follow single factors", "active units"),
         Claim("worse reconstructions than a VAE", "held-out PSNR"), default_backbone="conv"),
    Card("denoising", "Extracting and Composing Robust Features with Denoising Autoencoders",
         "Vincent, Larochelle, Bengio & Manzagol", 2008, "ICML", "https://doi.org/10.1145/1390156.1390294",
         "Gaussian corruption of the input while training; reconstructs the clean image",
         Claim("robust features: better anomaly separation", "anomaly AUC"),
         Claim("smooths fine detail away", "held-out SSIM")),
    Card("sparse", "Sparse autoencoder (CS294A lecture notes)", "Ng", 2011, "Stanford CS294A",
         "https://web.stanford.edu/class/cs294a/sparseAutoencoder_2011new.pdf",
         "a KL (or L1) penalty keeping few code elements active per image",
         Claim("few active elements: a compact, interpretable code", "active units"),
         Claim("the penalty costs reconstruction quality", "held-out PSNR")),
    Card("contractive", "Contractive Auto-Encoders: Explicit Invariance During Feature Extraction",
         "Rifai, Vincent, Muller, Glorot & Bengio", 2011, "ICML", "https://icml.cc/2011/papers/455_icmlpaper.pdf",
         "a penalty on the encoder's Jacobian norm ||dz/dx||_F^2",
         Claim("codes insensitive to small input changes: smooth interpolations", "interpolation midpoints"),
         Claim("an extra encoder pass and backward per step: slower training", "training time")),
    Card("beta-tcvae", "Isolating Sources of Disentanglement in Variational Autoencoders",
         "Chen, Li, Grosse & Duvenaud", 2018, "NeurIPS", "https://arxiv.org/abs/1802.04942",
         "the KL split into mutual information, total correlation (weighted beta = 6) and dimension-wise KL",
         Claim("disentangles without the beta-VAE's loss of information", "active units"),
         Claim("minibatch estimator: needs large batches, still blurry", "sample sharpness"),
         default_backbone="conv"),
    Card("wae", "Wasserstein Auto-Encoders", "Tolstikhin, Bousquet, Gelly & Schoelkopf", 2018, "ICLR",
         "https://arxiv.org/abs/1711.01558",
         "a deterministic encoder whose code distribution is matched to N(0, I) by MMD",
         Claim("generates with sharper samples than a VAE", "sample sharpness"),
         Claim("samples cover the data less evenly (MMD on small batches)", "sample coverage")),
    Card("vq-vae", "Neural Discrete Representation Learning", "van den Oord, Vinyals & Kavukcuoglu", 2017,
         "NeurIPS", "https://arxiv.org/abs/1711.00937",
         "a learned codebook: the code is snapped to its nearest entries (straight-through gradients)",
         Claim("sharp reconstructions from a discrete code", "held-out PSNR"),
         Claim("codebook collapse: few codes used; no simple prior to sample from", "codebook usage"),
         default_backbone="conv"),
)

MEASURES = ("held-out PSNR", "held-out SSIM", "sample sharpness", "sample nearest-train distance",
            "sample coverage", "active units", "codebook usage", "anomaly AUC", "training time",
            "interpolation midpoints")


def card(name: str) -> Card:
    """The card of family ``name`` (a LatentlabError listing the families otherwise)."""
    from latentlab.errors import LatentlabError

    for c in CARDS:
        if c.name == name:
            return c
    raise LatentlabError(f"model family '{name}': expected one of {', '.join(c.name for c in CARDS)}")
