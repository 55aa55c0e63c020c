"""The run report: one self-contained page (inline PNGs, no URLs, no scripts) with every section."""

from __future__ import annotations

import base64
import functools
import io
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.errors import LatentlabError
from latentlab.report import course_edits, read_metrics, write_report

SECTIONS = ["Overview", "Architecture", "Loss curves", "Reconstructions", "Latent edits",
            "Traversal and ranking", "Samples", "What the latent learned"]


def inline_images(text: str) -> list[bytes]:
    srcs = re.findall(r'<img src="([^"]*)"', text)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    return [base64.b64decode(s.split(",", 1)[1]) for s in srcs]


def assert_offline(text: str) -> None:
    assert "<script" not in text.lower()
    assert not re.search(r"https?://", text)
    assert not re.search(r'(?:src|href)="(?!data:|#)', text)  # only inline data and in-page anchors


def test_report_of_an_autoencoder_via_the_cli(tiny_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(tiny_run, tmp_path / "run")
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    path = run / "report.html"  # the default place
    assert path.resolve().as_uri() in "".join(result.output.split())  # the link it prints
    assert not [p for p in run.iterdir() if p.name.startswith(".report.html")]  # no temporary left
    text = path.read_text(encoding="utf-8")
    assert list(re.findall(r"<h2>(.*?)</h2>", text)) == SECTIONS
    assert_offline(text)
    images = inline_images(text)
    assert len(images) == 6  # diagram, loss, reconstructions, edits, traversal, samples
    for data in images:
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "PNG" and im.size[0] > 100
    assert "Total params: 1,585,796" in text  # the torchinfo table
    for edit in course_edits(4):
        assert f"<td>{edit}</td>" in text  # each course edit with its measured description
    assert text.count("PSNR") >= 4 and ("% of the change" in text or "spread over the image" in text)
    ranked = re.findall(r"<td>z\[(\d)\]</td>", text)
    assert sorted(ranked) == ["0", "1", "2", "3"]  # the ranking lists every element once
    last = read_metrics(tiny_run / "metrics.csv")[-1]
    assert f"{last['val_loss']:.4g}" in text  # the final losses come from metrics.csv
    assert "Gaussian fitted to" in text  # a plain AE also gets fitted-Gaussian samples
    learned = text[text.index("What the latent learned"):]
    assert re.search(r"\d of 4 elements are active", learned)
    assert "dci disentanglement" in learned and "mig" in learned  # faces has known factors
    first = re.search(r"The traversal ranks z\[(\d)\] first", learned)
    assert first is not None and first.group(1) == ranked[0]  # the ranking table's first element
    assert "the two agree" in learned or "for no factor" in learned


def test_report_of_a_vae_ranks_with_kl(tiny_vae_run: Path, tmp_path: Path) -> None:
    text = write_report(tiny_vae_run, out=tmp_path / "v.html").read_text(encoding="utf-8")
    assert "<th>KL</th>" in text
    assert "VAE: z ~ N(0, I)" in text and "Gaussian fitted to" not in text
    assert_offline(text)


@pytest.mark.slow  # one of the longest: runs with the slow set, keeping the fast set under 5 minutes
def test_feature_map_latent_is_traversed_without_ranking(tmp_path: Path) -> None:
    """A conv AE whose (4, 16, 16) feature map is the latent: 1,024 elements, too many to rank;
    a bare model folder (no metrics, no data spec) needs --data."""
    from latentlab.models import build, kind_config, save_model

    folder = save_model(build(kind_config("conv", channels=(2, 4))), tmp_path / "conv")
    with pytest.raises(LatentlabError, match="pass --data"):
        write_report(folder)
    text = write_report(folder, "faces:48").read_text(encoding="utf-8")
    assert "1,024 elements: not ranked here" in text
    assert "No metrics.csv" in text
    assert len(inline_images(text)) == 5  # no loss curves


def test_errors_are_one_line_and_leave_the_old_report(tiny_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    old = tmp_path / "old.html"
    old.write_text("old report")
    bad_data = runner.invoke(app, ["report", str(tiny_run), "--data", "digits", "--out", str(old), "--overwrite"])
    assert bad_data.exit_code == 2 and "Traceback" not in bad_data.output
    assert old.read_text() == "old report"
    for args in (["report", str(tmp_path / "missing")],
                 ["report", str(tiny_run), "--out", str(tmp_path / "r.png")],
                 ["report", str(tiny_run), "--out", str(tmp_path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_course_edits_fit_the_latent() -> None:
    from latentlab.cli.demo import COURSE_EDITS

    assert course_edits(8) == COURSE_EDITS
    assert course_edits(2) == ["z[0]*=3", "z[0]/=3", "z[1]*=3", "z[1]/=3"]
    assert course_edits(1) == ["z[0]*=3", "z[0]/=3"]


@pytest.mark.slow
def test_demo_writes_the_report_and_prints_its_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import latentlab.cli.demo as demo

    monkeypatch.setattr(demo, "run_demo", functools.partial(demo.run_demo, n_images=200, epochs=1))
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--quiet"])
    assert result.exit_code == 0, result.output
    page = tmp_path / "d" / "report.html"
    assert page.resolve().as_uri() in "".join(result.output.split())
    assert_offline(page.read_text(encoding="utf-8"))
