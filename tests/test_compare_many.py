"""``latentlab compare``: families from the registry, the measures on known inputs, claims judged
both ways, the command end to end (train, reuse, resume, --runs) and its bad input."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.compare import ModelEvidence
from latentlab.compare_claims import CLAIMS, MEASURES, direction, verdicts
from latentlab.compare_many import (
    FamilyEvidence,
    ManyComparison,
    backbone_of,
    family_config,
    family_of,
    known_families,
    parse_families,
)
from latentlab.compare_measures import active_units, knn_precision_recall, psnr, ssim
from latentlab.errors import LatentlabError

# ---------------------------------------------------------------- families


def test_families_come_from_the_registry_kinds() -> None:
    assert (family_of("conv"), family_of("fcn"), family_of("vae-conv"), family_of("sparse-fcn")) == \
        ("ae", "ae", "vae", "sparse")
    assert (backbone_of("vae-fcn"), backbone_of("conv"), backbone_of("wae")) == ("fcn", "conv", None)
    assert {"ae", "vae"} <= set(known_families())
    ae, vae = (family_config(f, "conv", (3, 32, 32), 6) for f in ("ae", "vae"))
    assert (ae.kind, vae.kind) == ("conv", "vae-conv")
    assert ae.channels == vae.channels and ae.latent_dim == vae.latent_dim == 6
    fcn = family_config("vae", "fcn", (1, 28, 28), 3, hidden=(32,))
    assert (fcn.kind, fcn.hidden, fcn.in_shape) == ("vae-fcn", (32,), (1, 28, 28))


def test_unknown_or_unfit_family_is_one_line() -> None:
    with pytest.raises(LatentlabError, match=r"--models nope: unknown family; expected one of .*ae, .*vae"):
        parse_families("ae,nope")
    with pytest.raises(LatentlabError, match="distinct"):
        parse_families("ae,ae")
    assert parse_families(" ae , VAE") == ("ae", "vae")
    with pytest.raises(LatentlabError, match="--models multi: cannot use the conv backbone"):
        family_config("multi", "conv", (3, 64, 64), 3)
    with pytest.raises(LatentlabError, match="--backbone mlp"):
        family_config("ae", "mlp", (3, 64, 64), 3)
    with pytest.raises(LatentlabError, match="--latent-dim 0"):
        family_config("ae", "conv", (3, 64, 64), 0)


# ---------------------------------------------------------------- measures


def test_psnr_ssim_of_known_errors() -> None:
    x = torch.full((2, 3, 16, 16), 0.5)
    assert psnr(x + 0.1, x) == pytest.approx(20.0, abs=1e-3)  # MSE 0.01 -> 20 dB
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 32, 32, generator=g)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-5)
    assert ssim((img + 0.3 * torch.randn(img.shape, generator=g)).clamp(0, 1), img) < 0.8


def test_knn_precision_recall_separates_same_from_far() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(40, 3, 4, 4, generator=g)
    same = real + 1e-4
    assert knn_precision_recall(real, same) == (1.0, 1.0)
    far = real + 10.0
    assert knn_precision_recall(real, far) == (0.0, 0.0)
    collapsed = real[:1].repeat(40, 1, 1, 1) + 1e-5 * torch.randn(40, 3, 4, 4, generator=g)
    precision, recall = knn_precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.3  # realistic but no coverage: mode collapse


def test_active_units_counts_elements_by_variance() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(500, 4, generator=g) * torch.tensor([1.0, 0.5, 0.01, 0.0])
    assert active_units(mu) == 2  # variances 1, 0.25 pass 0.01; 1e-4 and 0 do not


# ---------------------------------------------------------------- claims


def evidence(family: str, psnr_db: float, sharp: float, prior: float) -> FamilyEvidence:
    base = ModelEvidence(name=family, path=family, description=family, recon_mse=0.01, laplacian_ratio=sharp,
                         hf_ratio=sharp, recon_distance=0.01, sample_distance={"prior": 0.01 * prior, "fitted": 0.012},
                         sample_laplacian_ratio={"prior": sharp, "fitted": sharp}, midpoint_distance=0.012,
                         z_mean_abs=0.1, z_std=1.0)
    return FamilyEvidence(base=base, family=family, kind=family, latent_dim=8, parameters=100, train_seconds=1.0,
                          steps=10, psnr=psnr_db, ssim=0.5, precision={"prior": 0.5, "fitted": 0.5},
                          recall={"prior": 0.5, "fitted": 0.5}, active_units=8, kl_per_element=float("nan"),
                          anomaly_auc=0.7, code_sensitivity=0.1, noisy_psnr=20.0, codebook_usage=float("nan"))


def comparison(*models: FamilyEvidence) -> ManyComparison:
    return ManyComparison(models=list(models), data_spec="faces:100", n_eval=20, n_ref=80, held_out="a split",
                          real_distance=0.005)


def test_claims_follow_the_numbers_either_way() -> None:
    textbook = comparison(evidence("ae", 25.0, 0.8, prior=5.0), evidence("vae", 22.0, 0.4, prior=1.2))
    backwards = comparison(evidence("ae", 22.0, 0.4, prior=1.2), evidence("vae", 25.0, 0.8, prior=5.0))
    assert [v.holds for v in verdicts(textbook)] == [True, True, True, True]
    assert [v.holds for v in verdicts(backwards)] == [False, False, False, False]
    close = comparison(evidence("ae", 25.0, 0.8, 2.0), evidence("vae", 25.1, 0.79, 2.02))
    assert [v.holds for v in verdicts(close)] == [None, None, None, None]
    alone = verdicts(comparison(evidence("vae", 22.0, 0.4, 1.2)))
    assert [v.holds for v in alone] == [None, None] and "no ae in this comparison" in alone[0].evidence
    assert "22" in verdicts(textbook)[0].evidence  # the numbers behind the verdict
    assert direction(25.0, 25.15, "psnr") == 0 and direction(25.0, 25.3, "psnr") == -1
    vq = evidence("vq-vae", 22.0, 0.4, 1.2)
    for used, holds in ((0.2, True), (0.9, False), (float("nan"), None)):
        vq.codebook_usage = used  # judged against the claim's own bar: under half the codebook
        problem = next(v for v in verdicts(comparison(vq)) if v.claim.role == "problem")
        assert problem.holds is holds and "codebook" in problem.evidence


def test_claims_read_the_cards_wording_and_measure() -> None:
    from latentlab.compare_claims import CARD_MEASURES, claims
    from latentlab.models.cards import CARDS

    judged = {(c.family, c.role): c for c in claims()}
    for card in CARDS:
        for role in ("advantage", "problem"):
            written = getattr(card, role)
            claim = judged[(card.name, role)]  # every card's claim is judged
            assert claim.text == written.text and claim.measure == CARD_MEASURES[written.measure.lower()]


def test_every_claim_names_a_known_measure_and_family() -> None:
    assert all(c.measure in MEASURES and c.expect in (1, -1) and c.role in ("advantage", "problem")
               for c in CLAIMS)
    assert {c.family for c in CLAIMS} >= {"ae", "vae", "beta-vae", "vq-vae", "wae"}


# ---------------------------------------------------------------- the command


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_page(out: Path, names: list[str]) -> None:
    text = (out / "compare.html").read_text(encoding="utf-8")
    assert "<script" not in text and not re.search(r"https?://", text)  # self-contained
    assert len(re.findall(r'<img src="data:image/png;base64,', text)) == 3
    rows = read_csv(out / "compare.csv")
    assert [r["model"] for r in rows] == names
    for r in rows:
        assert 0 < float(r["recon_mse"]) < 1 and 0 < float(r["psnr"]) < 60
        assert 0 <= float(r["precision"]) <= 1 and 0.0 <= float(r["anomaly_auc"]) <= 1.0
        assert int(r["parameters"]) > 0 and float(r["train_seconds"]) > 0
        assert f"{float(r['psnr']):.4g}" in text  # the page shows the CSV's numbers
    data = json.loads((out / "compare.json").read_text())
    assert {v["family"] for v in data["verdicts"]} <= set(names)
    assert all(v["holds"] in (True, False, None) and v["evidence"] for v in data["verdicts"])


@pytest.mark.slow  # one of the longest: runs with the slow set, keeping the fast set under 5 minutes
def test_compare_trains_reuses_and_resumes(tmp_path: Path) -> None:
    out, runner = tmp_path / "cmp", CliRunner()
    args = ["compare", "--models", "ae,vae", "--data", "faces:240", "--epochs", "1", "--backbone", "fcn",
            "--hidden", "32", "--latent-dim", "3", "--samples", "32", "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    check_page(out, ["ae", "vae"])
    kinds = [json.loads((out / f / "config.json").read_text())["model"]["kind"] for f in ("ae", "vae")]
    assert kinds == ["fcn", "vae-fcn"]
    vae = read_csv(out / "compare.csv")[1]
    assert float(vae["kl_per_element"]) > 0 and read_csv(out / "compare.csv")[0]["kl_per_element"] == "nan"
    assert all(0.0 <= float(r[k]) <= 1.0 for r in read_csv(out / "compare.csv")  # faces has known factors
               for k in ("mig", "sap", "dci_disentanglement", "dci_informativeness"))
    assert "DCI disentanglement" in (out / "compare.html").read_text()

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output  # the page is not replaced silently
    weights = (out / "ae" / "model.safetensors").stat().st_mtime_ns
    (out / "vae" / "COMPLETE").unlink()  # as if killed after its last checkpoint
    resumed = runner.invoke(app, [*args, "--overwrite"])
    assert resumed.exit_code == 0, resumed.output
    assert "ae: reusing the complete run" in resumed.output and "vae: resuming" in resumed.output
    assert (out / "ae" / "model.safetensors").stat().st_mtime_ns == weights
    assert (out / "vae" / "COMPLETE").is_file()

    (out / "compare.html").unlink()
    (out / "compare.csv").unlink()
    changed = [*args[:args.index("--latent-dim")], "--latent-dim", "4", "--out", str(out), "--quiet"]
    other = runner.invoke(app, changed)
    assert other.exit_code == 2 and "other model settings" in other.output  # never trained over silently
    assert json.loads((out / "ae" / "config.json").read_text())["model"]["latent_dim"] == 3


def test_factor_scores_need_factors_and_follow_them() -> None:
    from types import SimpleNamespace

    import numpy as np
    import torch

    from latentlab.compare_many import factor_scores

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 400), rng.integers(0, 4, 400)
    data = SimpleNamespace(factors={"a": a, "b": b})
    rows = np.arange(400)
    aligned = torch.tensor(np.stack([a, b, rng.normal(size=400)], axis=1), dtype=torch.float32)
    noise = torch.tensor(rng.normal(size=(400, 3)), dtype=torch.float32)
    good, bad = factor_scores(aligned, data, rows), factor_scores(noise, data, rows)
    assert set(good) == {"mig", "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness"}
    assert good["mig"] > 0.5 > bad["mig"] and good["dci_disentanglement"] > bad["dci_disentanglement"]
    assert factor_scores(aligned, SimpleNamespace(factors={}), rows) == {}  # data without factors: no rows
    assert factor_scores(aligned[:, :1], data, rows) == {}  # one element: nothing these scores can say


def test_compare_existing_runs(tiny_run: Path, tiny_vae_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs-cmp"
    result = CliRunner().invoke(app, ["compare", "--runs", f"{tiny_run},{tiny_vae_run}", "--samples", "32",
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    check_page(out, ["ae", "vae"])
    assert "validation images both models were trained without" in (out / "compare.html").read_text()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["compare", "--data", "faces:64", "--out", str(tmp_path / "o")]
    cases = [
        (["--models", "ae,nope", "--budget", "1m"], "unknown family"),
        (["--models", "ae,vae", "--budget", "ten"], "--budget 'ten'"),
        (["--models", "multi", "--budget", "1m"], "cannot use the conv backbone"),
        (["--models", "ae", "--backbone", "mlp", "--budget", "1m"], "--backbone mlp"),
        (["--models", "ae"], "--budget"),
        (["--budget", "1m"], "--models or --runs"),
        (["--runs", str(tmp_path / "missing")], "not found"),
    ]
    for args, message in cases:
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and message in " ".join(result.output.split()), (args, result.output)
    assert not (tmp_path / "o").exists()  # nothing trained or written


@pytest.mark.slow  # nine tiny trainings and measurements: about 30 s on 2 busy cores
def test_every_family_of_the_registry_trains_and_is_judged(tmp_path: Path) -> None:
    from latentlab.compare_claims import verdicts as judged
    from latentlab.compare_many import Plan, compare_many, train_families
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import load_prepared
    from latentlab.runs import Run

    families = tuple(f for f in known_families() if f != "multi")  # multi-fcn: its own fixed latent
    data = load_prepared("faces:96", BatchSpec())
    plan = Plan(families=families, backbone="fcn", latent_dim=3, epochs=1, hidden=(8,), batch_size=32)
    folders = train_families(data, tmp_path, plan, progress=False)
    c = compare_many([Run.open(f) for f in folders], data, n_samples=8, progress=False)
    assert [m.family for m in c.models] == list(families)
    assert all(m.psnr == m.psnr and m.parameters > 0 for m in c.models)
    judged_families = {v.claim.family for v in judged(c)}
    assert judged_families == set(families)  # every family's claims have a row
