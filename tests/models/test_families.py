"""The model families: kinds and backbones, each family's named loss terms, VQ and denoising
semantics, and one epoch of every family on faces:256 (tiny configs) through the real trainer."""

from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F

from latentlab import losses
from latentlab.errors import LatentlabError
from latentlab.models import build, kind_config, load_model
from latentlab.models.base import AEOutput, DiagonalGaussian
from latentlab.models.cards import CARDS, MEASURES
from latentlab.models.registry import BACKBONE_OF, FAMILIES, FAMILY_OF, MODELS, resolve_kind

SMALL = (3, 16, 16)
TINY = {"fcn": {"hidden": (16,), "latent_dim": 4}, "conv": {"channels": (4, 8), "latent_dim": 4},
        "resnet": {"channels": (4, 8), "latent_dim": 4}}


def tiny(family: str, backbone: str, **extra: object):
    return kind_config(family, backbone=backbone, in_shape=SMALL, **TINY[backbone], **extra)


# ---------------------------------------------------------------- kinds, backbones, cards


@pytest.mark.parametrize(("family", "backbone", "kind"), [
    ("ae", "fcn", "fcn"), ("ae", "conv", "conv"), ("ae", "resnet", "resnet"), ("vae", "fcn", "vae-fcn"),
    ("sparse", "conv", "sparse-conv"), ("vq-vae", "resnet", "vq-vae-resnet"), ("beta-vae", "fcn", "beta-vae-fcn"),
    ("denoising", "conv", "denoising-conv"), ("beta-tcvae", "resnet", "beta-tcvae-resnet"), ("wae", "fcn", "wae-fcn"),
])
def test_family_and_backbone_give_the_concrete_kind(family: str, backbone: str, kind: str) -> None:
    assert resolve_kind(family, backbone) == kind
    assert type(kind_config(family, backbone=backbone)) is MODELS[kind][1]
    assert (FAMILY_OF[kind], BACKBONE_OF[kind]) == (family, backbone)


def test_family_defaults_and_paper_defaults() -> None:
    assert kind_config("vq-vae").kind == "vq-vae-conv" and kind_config("sparse").kind == "sparse-fcn"
    assert kind_config("beta-vae").beta == 4.0 and kind_config("vae").beta == 1.0
    assert kind_config("vq-vae").commitment == 0.25 and kind_config("vq-vae").codebook_size == 512
    tcvae = kind_config("beta-tcvae")
    assert (tcvae.alpha, tcvae.beta, tcvae.gamma) == (1, 6, 1)
    assert kind_config("resnet").in_shape == (3, 64, 64) and build(kind_config("resnet")).latent_dim == 256 * 4 * 4


@pytest.mark.parametrize(("call", "needles"), [
    (lambda: kind_config("nope"), ["model kind 'nope'", "sparse", "vq-vae", "beta-tcvae"]),
    (lambda: kind_config("multi-fcn", backbone="conv"), ["'multi-fcn' cannot use backbone 'conv'", "fcn"]),
    (lambda: kind_config("sparse", backbone="vgg"), ["backbone 'vgg'", "fcn, conv, resnet"]),
    (lambda: kind_config("sparse-fcn", backbone="conv"), ["--model sparse --backbone conv"]),
    (lambda: kind_config("fcn", sparsity_weight=1.0), ["no option sparsity_weight (--sparsity-weight)"]),
    (lambda: kind_config("sparse", rho=1.5), ["rho 1.5"]),
    (lambda: kind_config("vq-vae", code_dim=5), ["code dim 5", "48 channels"]),
    (lambda: kind_config("vq-vae", backbone="fcn", latent_dim=6, code_dim=4), ["code dim 4", "latent size 6"]),
    (lambda: kind_config("wae", mmd_weight=-1.0), ["mmd weight -1.0"]),
    (lambda: kind_config("ae", recon_loss="huber"), ["recon loss 'huber'", "mse, l1, bce, ssim"]),
    (lambda: kind_config("ae", recon_loss="bce"), ["recon loss bce", "value range 0,1"]),
])
def test_bad_family_input_is_one_line(call, needles: list[str]) -> None:
    with pytest.raises(LatentlabError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_every_family_has_a_card_with_paper_and_measured_claims() -> None:
    assert [c.name for c in CARDS] == list(FAMILIES)
    for c in CARDS:
        assert c.link.startswith("https://") and 2000 <= c.year <= 2026, c.name
        assert c.advantage.measure in MEASURES and c.problem.measure in MEASURES
        assert set(c.backbones) == set(FAMILIES[c.name]) and c.default_backbone in c.backbones
    for kind in MODELS:  # every new family file (and the resnet backbone) opens with its paper's link
        if FAMILY_OF[kind] not in ("ae", "vae") or BACKBONE_OF[kind] == "resnet":
            module = __import__(MODELS[kind][0].__module__, fromlist=["_"])
            assert module.__doc__ and "https://" in module.__doc__.split("\n\n")[0], kind


# ---------------------------------------------------------------- loss terms


def terms_of(config, seed: int = 0) -> losses.LossTerms:
    torch.manual_seed(seed)
    model = build(config).train()
    x = torch.rand(8, *config.in_shape) * 2 - 1
    return losses.model_loss(model, x, x)


@pytest.mark.parametrize(("family", "names"), [
    ("sparse", {"sparsity"}), ("contractive", {"contractive"}), ("wae", {"mmd"}),
    ("beta-tcvae", {"kl", "mi", "tc", "dwkl"}), ("vq-vae", {"codebook", "commitment", "perplexity", "codes_used"}),
    ("vae", {"kl"}), ("denoising", set()), ("ae", set()),
])
@pytest.mark.parametrize("backbone", ["fcn", "conv"])
def test_each_family_logs_its_named_terms(family: str, names: set[str], backbone: str) -> None:
    terms = terms_of(tiny(family, backbone)).items()
    assert set(terms) == {"loss", "recon", *names}
    assert all(torch.isfinite(v) for v in terms.values())


def test_the_total_is_recon_plus_the_weighted_terms() -> None:
    pixels = math.prod(SMALL)
    t = terms_of(tiny("sparse", "fcn", sparsity="l1", sparsity_weight=2.0)).items()
    assert torch.allclose(t["loss"], t["recon"] + 2.0 / pixels * t["sparsity"])
    t = terms_of(tiny("vq-vae", "fcn", commitment=0.5)).items()
    assert torch.allclose(t["loss"], t["recon"] + t["codebook"] + 0.5 * t["commitment"])
    t = terms_of(tiny("beta-tcvae", "fcn")).items()
    assert torch.allclose(t["loss"], t["recon"] + (t["mi"] + 6 * t["tc"] + t["dwkl"]) / pixels)


def test_tc_decomposition_sums_to_a_kl_estimate_and_tc_grows_with_correlation() -> None:
    torch.manual_seed(0)
    mu, logvar = torch.randn(256, 3) * 0.5, torch.full((256, 3), -2.0)
    posterior = DiagonalGaussian(mu, logvar)
    z = posterior.sample()
    parts = losses.tc_decomposition(z, posterior)
    log_q_z_x = losses.gaussian_log_density(z, mu, logvar).sum(1)
    log_p_z = losses.gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    assert torch.allclose(parts["mi"] + parts["tc"] + parts["dwkl"], (log_q_z_x - log_p_z).mean(), atol=1e-4)
    shared = torch.randn(256, 1).expand(256, 3).contiguous()  # three copies of one factor: correlated codes
    correlated = losses.tc_decomposition(shared, DiagonalGaussian(shared, logvar))
    independent = losses.tc_decomposition(torch.randn(256, 3), DiagonalGaussian(torch.randn(256, 3), logvar))
    assert correlated["tc"] > independent["tc"] + 1.0


def test_mmd_is_small_for_prior_codes_and_large_for_shifted_ones() -> None:
    torch.manual_seed(0)
    same = losses.mmd_imq(torch.randn(128, 8), torch.randn(128, 8))
    shifted = losses.mmd_imq(torch.randn(128, 8) + 2.0, torch.randn(128, 8))
    assert abs(float(same)) < 0.05 and float(shifted) > 10 * abs(float(same)) + 0.1


def test_jacobian_estimate_matches_a_linear_encoder() -> None:
    torch.manual_seed(0)
    w = torch.randn(3, 12)
    estimate = losses.jacobian_frobenius(lambda x: x.flatten(1) @ w.T, torch.randn(4, 3, 2, 2), projections=400)
    assert abs(float(estimate) / float(w.pow(2).sum()) - 1) < 0.15


def test_contractive_penalty_trains_the_encoder_and_is_logged_in_eval_too() -> None:
    model = build(tiny("contractive", "conv")).train()
    x = torch.rand(4, *SMALL)
    losses.model_loss(model, x, x).items()["contractive"].backward()
    assert model.encoder[0].weight.grad is not None and model.encoder[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert float(losses.model_loss(model, x, x).items()["contractive"]) > 0


@pytest.mark.parametrize("kind", ["mse", "l1", "bce", "ssim"])
def test_reconstruction_losses(kind: str) -> None:
    torch.manual_seed(0)
    x, x_hat = torch.rand(4, *SMALL), torch.rand(4, *SMALL)
    value = losses.reconstruction_loss(x_hat, x, kind, "sigmoid")
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    expected = {"mse": F.mse_loss(x_hat, x), "l1": F.l1_loss(x_hat, x), "bce": F.binary_cross_entropy(x_hat, x),
                "ssim": 1 - ssim(x_hat, x, data_range=(0.0, 1.0), kernel_size=11)}[kind]
    assert torch.allclose(value, expected, atol=1e-6)
    assert float(losses.reconstruction_loss(x, x, kind, "sigmoid")) < float(value)
    config = tiny("ae", "fcn", recon_loss=kind, out_activation="sigmoid")
    terms = losses.model_loss(build(config), x, x).items()
    assert ("mse" in terms) == (kind != "mse")  # the MSE is logged beside any other reconstruction loss


# ---------------------------------------------------------------- VQ-VAE and denoising semantics


@pytest.mark.parametrize("backbone", ["fcn", "conv"])
def test_vq_latent_is_pre_quantisation_and_decode_snaps_to_codes(backbone: str) -> None:
    torch.manual_seed(0)
    config = tiny("vq-vae", backbone, codebook_size=16) if backbone == "fcn" else \
        kind_config("vq-vae", in_shape=SMALL, channels=(4, 8), codebook_size=16)
    model = build(config).eval()
    assert model.quantised_latent and "before quantisation" in model.describe()
    x = torch.rand(3, *SMALL) * 2 - 1
    z = model.embed(x)
    z_q, indices = model.quantise(z)
    assert not torch.equal(z, z_q)  # the tools see the continuous code
    codes = model._vectors(z_q)
    assert torch.equal(codes, model.codebook.weight[indices])  # every quantised vector is a codebook entry
    assert torch.allclose(model.decode(z), model.decode(z_q), atol=1e-6)
    edited = z.clone()
    edited[:, 0] += 1e-4  # an edit too small to change the nearest code decodes to the same image
    if torch.equal(model.quantise(edited)[1], indices):
        assert torch.allclose(model.decode(edited), model.decode(z), atol=1e-6)
    model.train()
    model.zero_grad()
    losses.model_loss(model, x, x).total.backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0  # straight-through: the encoder learns
    assert model.codebook.weight.grad.abs().sum() > 0  # the codebook term moves the codes


def test_denoising_corrupts_only_while_training() -> None:
    torch.manual_seed(0)
    model = build(tiny("denoising", "fcn", noise_std=0.5))
    x = torch.rand(4, *SMALL) * 2 - 1
    model.eval()
    clean = model(x).x_hat
    assert torch.equal(clean, model.decode(model.encode(x)))
    model.train()
    assert not torch.allclose(model(x).x_hat, clean)
    assert isinstance(model(x), AEOutput)
    quiet = build(tiny("denoising", "fcn", noise_std=0.0))
    assert torch.equal(quiet.train()(x).x_hat, quiet.eval()(x).x_hat)  # no corruption: the plain autoencoder


# ---------------------------------------------------------------- one epoch of every family on faces:256

EPOCH_CASES = [("ae", "fcn"), ("vae", "conv"), ("beta-vae", "resnet"), ("denoising", "resnet"), ("sparse", "conv"),
               ("contractive", "fcn"), ("beta-tcvae", "fcn"), ("wae", "conv"), ("vq-vae", "resnet")]


def test_every_family_and_backbone_is_in_the_epoch_cases() -> None:
    assert {f for f, _ in EPOCH_CASES} == set(FAMILIES) and {b for _, b in EPOCH_CASES} == {"fcn", "conv", "resnet"}


@pytest.fixture(scope="module")
def faces256():
    from latentlab.data import load_source

    return load_source("faces:256")


@pytest.mark.parametrize(("family", "backbone"), EPOCH_CASES)
def test_one_epoch_on_faces_and_save_load(family: str, backbone: str, faces256, tmp_path) -> None:
    from latentlab.data import BatchSpec
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    config = kind_config(family, backbone=backbone, **TINY[backbone])
    model = train_run(config, faces256, BatchSpec(), TrainConfig(epochs=1, batch_size=64, lr=2e-3, seed=0),
                      tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "metrics.csv") as f:
        row = next(csv.DictReader(f))
    names = set(terms_of(tiny(family, backbone)).items())
    assert {f"train_{n}" for n in names} <= set(row) and {f"val_{n}" for n in names} <= set(row)
    assert math.isfinite(float(row["val_loss"]))
    loaded = load_model(tmp_path / "run")
    assert loaded.kind == resolve_kind(family, backbone)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x).x_hat, model.eval()(x).x_hat)
