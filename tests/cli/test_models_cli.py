"""`latentlab models` and the family options of `latentlab train`: --model FAMILY --backbone B,
--recon-loss, the family hyper-parameters, their bad input, and --resume treating them as model options."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.models.cards import CARDS

runner = CliRunner()
TINY = ["--data", "faces:48", "--epochs", "1", "--batch-size", "16", "--quiet"]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "220"})


def assert_user_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, text


def test_models_lists_every_family_with_paper_claims_and_measures() -> None:
    result = invoke("models")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for card in CARDS:
        assert card.name in text and str(card.year) in text
        assert f"[{card.advantage.measure}]" in text and f"[{card.problem.measure}]" in text, card.name
    for measure in ("held-out PSNR", "codebook usage", "sample sharpness", "active units"):
        assert measure in text


def test_train_a_family_on_a_chosen_backbone_with_its_options(tmp_path) -> None:
    out = tmp_path / "sparse"
    result = invoke("train", *TINY, "--model", "sparse", "--backbone", "conv", "--channels", "4,8",
                    "--latent-dim", "4", "--sparsity", "l1", "--sparsity-weight", "2", "--recon-loss", "l1",
                    "--out", out)
    assert result.exit_code == 0, result.output
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["kind"], model["sparsity"], model["sparsity_weight"], model["recon_loss"]) == \
        ("sparse-conv", "l1", 2.0, "l1")
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_sparsity", "val_sparsity", "train_mse", "train_recon"} <= set(header)
    # --resume compares the family options with the run's: a different weight is refused
    again = invoke("train", "--out", out, "--resume", "--epochs", "2", "--sparsity-weight", "5")
    assert_user_error(again, "the model options")


def test_vq_vae_on_resnet_trains_and_logs_codebook_usage(tmp_path) -> None:
    out = tmp_path / "vq"
    result = invoke("train", *TINY, "--model", "vq-vae", "--backbone", "resnet", "--channels", "4,8",
                    "--latent-dim", "8", "--codebook-size", "32", "--out", out)
    assert result.exit_code == 0, result.output
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_perplexity", "train_codes_used", "train_codebook", "train_commitment"} <= set(header)
    assert "before quantisation" in " ".join(result.output.split())


def test_bad_family_options_are_one_line_errors(tmp_path) -> None:
    out = tmp_path / "bad"
    assert_user_error(invoke("train", *TINY, "--model", "nope", "--out", out), "model kind 'nope'", "vq-vae")
    assert_user_error(invoke("train", *TINY, "--model", "multi-fcn", "--backbone", "conv", "--out", out),
                      "cannot use backbone 'conv'")
    assert_user_error(invoke("train", *TINY, "--model", "ae", "--recon-loss", "bce", "--out", out),
                      "--recon-loss bce", "--range 0,1")
    assert_user_error(invoke("train", *TINY, "--preset", "hw8-conv", "--backbone", "resnet", "--out", out),
                      "--backbone resnet with --preset hw8-conv")
    assert_user_error(invoke("train", *TINY, "--model", "ae", "--mmd-weight", "3", "--out", out),
                      "no option mmd_weight (--mmd-weight)")
    assert not out.exists()


def test_summary_draws_a_family_with_its_codebook(tmp_path) -> None:
    result = invoke("summary", "--model", "vq-vae", "--diagram", tmp_path / "vq.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "vq.png").stat().st_size > 10_000
