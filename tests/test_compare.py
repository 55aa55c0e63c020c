"""AE vs VAE: the measures on known images, the generated verdicts both ways, and the command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.compare import (
    Comparison,
    ModelEvidence,
    direction,
    high_frequency_energy,
    laplacian_variance,
    nearest_distance,
    pair_configs,
    summary_paragraph,
    verdicts,
)
from latentlab.errors import LatentlabError

# ---------------------------------------------------------------- measures


def checkerboard(n: int = 4, size: int = 32, cell: int = 2) -> torch.Tensor:
    """(n, 3, size, size) in [0, 1]: sharp black and white squares, shifted per image."""
    i = torch.arange(size)
    board = (((i[:, None] // cell) + (i[None, :] // cell)) % 2).float()
    return torch.stack([board.roll(k, 1) for k in range(n)])[:, None].repeat(1, 3, 1, 1)


def box_blur(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    weight = torch.full((3, 1, k, k), 1.0 / (k * k))
    padded = torch.nn.functional.pad(x, (k // 2,) * 4, mode="replicate")
    return torch.nn.functional.conv2d(padded, weight, groups=3)


def test_blur_lowers_both_sharpness_measures() -> None:
    sharp = checkerboard()
    blurred = box_blur(sharp)
    assert (laplacian_variance(blurred) < 0.2 * laplacian_variance(sharp)).all()
    assert (high_frequency_energy(blurred) < 0.2 * high_frequency_energy(sharp)).all()
    flat = torch.full((2, 3, 32, 32), 0.4)
    assert torch.allclose(laplacian_variance(flat), torch.zeros(2), atol=1e-10)
    assert torch.allclose(high_frequency_energy(flat), torch.zeros(2), atol=1e-10)


def test_nearest_distance_is_the_mse_to_the_closest_reference() -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(50, 3, 8, 8, generator=g)
    x = torch.cat([ref[7:8], ref[20:21] + 0.1])
    d = nearest_distance(x, ref, chunk=1)
    assert d[0] == pytest.approx(0.0, abs=1e-5)
    assert d[1] <= 0.01 + 1e-5  # at most the distance to its own source
    brute = min(float((x[1] - r).pow(2).mean()) for r in ref)
    assert d[1] == pytest.approx(brute, rel=1e-4)


# ---------------------------------------------------------------- verdicts and paragraph


def evidence(name: str, mse: float, sharp: float, prior: float, std: float) -> ModelEvidence:
    return ModelEvidence(name=name, path=name, description=name, recon_mse=mse, laplacian_ratio=sharp,
                         hf_ratio=sharp, recon_distance=0.01,
                         sample_distance={"prior": 0.01 * prior, "fitted": 0.012},
                         sample_laplacian_ratio={"prior": 0.5, "fitted": 0.5}, midpoint_distance=0.012,
                         z_mean_abs=0.1, z_std=std)


def comparison(ae: ModelEvidence, vae: ModelEvidence) -> Comparison:
    return Comparison(ae=ae, vae=vae, data_spec="faces:100", n_eval=20, n_ref=80, held_out="a test split",
                      real_distance=0.005)


def test_verdicts_follow_the_numbers_either_way() -> None:
    textbook = comparison(evidence("AE", 0.002, 0.8, prior=5.0, std=4.0),
                          evidence("VAE", 0.004, 0.5, prior=1.2, std=1.0))
    backwards = comparison(evidence("AE", 0.004, 0.5, prior=1.2, std=1.0),
                           evidence("VAE", 0.002, 0.8, prior=5.0, std=4.0))
    assert [h for _, _, h in verdicts(textbook)][:4] == [True, True, True, True]
    assert [h for _, _, h in verdicts(backwards)][:4] == [False, False, False, False]
    text = summary_paragraph(textbook)
    assert "the AE's error is 2.00 times lower" in text and "AE's reconstructions are sharper" in text
    assert "suits the VAE's decoder better" in text
    other = summary_paragraph(backwards)
    assert "the VAE's error is 2.00 times lower" in other and "VAE's reconstructions are sharper" in other
    assert "works better for the AE's decoder" in other


def test_small_differences_are_too_close_to_call() -> None:
    c = comparison(evidence("AE", 0.0030, 0.80, 2.0, 2.0), evidence("VAE", 0.0031, 0.79, 2.02, 2.0))
    assert [h for _, _, h in verdicts(c)][:4] == [None, None, None, None]
    text = summary_paragraph(c)
    assert "about equally well" in text and "about equally sharp" in text and "too close to call" in text
    assert direction(1.0, 1.04) == 0 and direction(1.0, 1.2) == -1 and direction(1.2, 1.0) == 1


def test_pair_configs_share_backbone_and_latent() -> None:
    ae, vae = pair_configs((3, 64, 64), 6, "conv")
    assert ae.kind == "conv" and vae.kind == "vae-conv"
    assert ae.channels == vae.channels and ae.latent_dim == vae.latent_dim == 6
    ae, vae = pair_configs((1, 28, 28), 2, "fcn")
    assert (ae.kind, vae.kind) == ("fcn", "vae-fcn") and ae.hidden == vae.hidden
    assert pair_configs((1, 28, 28), 2, "conv")[0].channels == (16, 32)  # 28 = 4 x 7: two stride-2 layers
    for args, match in ((((3, 64, 64), 0, "fcn"), "--latent-dim"), (((3, 64, 64), 4, "mlp"), "--backbone"),
                        (((1, 7, 7), 4, "conv"), "even height")):
        with pytest.raises(LatentlabError, match=match):
            pair_configs(*args)


# ---------------------------------------------------------------- the command


def numbers_table(text: str) -> dict[str, tuple[float, float]]:
    cell = r'<td class="num">([^<]+)</td>'
    rows = re.findall(r"<tr><td>([^<]+)</td>" + cell + cell + "</tr>", text)
    return {name: (float(a), float(b)) for name, a, b in rows}


def check_page(out: Path) -> str:
    text = (out / "compare.html").read_text(encoding="utf-8")
    assert "<script" not in text and not re.search(r"https?://", text)  # opens offline
    srcs = re.findall(r'<img src="([^"]*)"', text)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    table = numbers_table(text)
    mse = table["reconstruction MSE (pixels in [0, 1])"]
    assert all(0 < v < 1 for v in mse)
    assert len(table) >= 12
    summary = re.search(r'<p class="summary">(.*?)</p>', text, re.S)
    assert summary is not None
    paragraph = summary.group(1)
    assert "AE" in paragraph and "VAE" in paragraph
    assert f"{mse[0]:.4g}" in paragraph and f"{mse[1]:.4g}" in paragraph  # the paragraph quotes both
    data = json.loads((out / "compare.json").read_text())
    assert data["ae"]["recon_mse"] == pytest.approx(mse[0], rel=1e-3)
    assert len(data["verdicts"]) == 5 and all(v["holds"] in (True, False, None) for v in data["verdicts"])
    for name in ("recon.png", "samples.png", "interpolation.png"):
        assert (out / name).stat().st_size > 1000
    return text


def test_compare_two_trained_runs(tiny_run: Path, tiny_vae_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compare-ae-vae", "--ae", str(tiny_run), "--vae", str(tiny_vae_run),
                                      "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    text = check_page(tmp_path / "cmp")
    assert "validation images both models were trained without" in text
    assert (tmp_path / "cmp" / "compare.html").resolve().as_uri() in "".join(result.output.split())


def test_compare_trains_a_pair_on_a_tiny_budget(tmp_path: Path) -> None:
    out = tmp_path / "pair"
    result = CliRunner().invoke(app, ["compare-ae-vae", "--data", "faces:240", "--epochs", "1",
                                      "--latent-dim", "3", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "ae" / "COMPLETE").is_file() and (out / "vae" / "COMPLETE").is_file()
    ae, vae = (json.loads((out / n / "config.json").read_text())["model"] for n in ("ae", "vae"))
    assert (ae["kind"], vae["kind"]) == ("fcn", "vae-fcn") and ae["latent_dim"] == vae["latent_dim"] == 3
    check_page(out)
    again = CliRunner().invoke(app, ["compare-ae-vae", "--data", "faces:240", "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output  # the runs are not replaced silently


def test_bad_input_is_one_line(tiny_run: Path, tiny_vae_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "file").write_text("x")
    cases = [
        ["--ae", str(tiny_run)],  # --vae missing
        ["--ae", str(tiny_vae_run), "--vae", str(tiny_run)],  # swapped kinds
        [],  # neither --data nor runs
        ["--data", "faces:64", "--backbone", "mlp"],
        ["--data", "faces:64", "--latent-dim", "0"],
        ["--data", "nope:1"],
    ]
    for args in cases:
        result = runner.invoke(app, ["compare-ae-vae", *args, "--out", str(tmp_path / "o")])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and "error:" in result.output
    assert not (tmp_path / "o").exists()  # nothing trained or written
    result = runner.invoke(app, ["compare-ae-vae", "--data", "faces:64", "--out", str(tmp_path / "file")])
    assert result.exit_code == 2
