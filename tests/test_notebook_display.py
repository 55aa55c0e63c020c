"""Results that are tables or figures show themselves in a notebook (``_repr_html_`` /
``_repr_png_``): edit descriptions, element rankings, detectors and their evaluations, and the
AE-vs-VAE comparison. Each shows its own numbers, not a fixed page."""

from __future__ import annotations

import io
import math
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image


def _cells(html: str) -> list[str]:
    return re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html)


def test_a_change_description_is_a_table_of_its_measurements() -> None:
    from latentlab.latent.describe import describe_change

    before = torch.zeros(3, 12, 12)
    after = before.clone()
    after[0, 8:, :4] = 0.5  # redder, in the lower left
    d = describe_change(before, after, (-1.0, 1.0))
    html = d._repr_html_()
    cells = _cells(html)
    assert cells[cells.index("MSE") + 1] == f"{d.mse:.4g}"
    assert cells[cells.index("red shift") + 1] == f"{d.channel_shift['red']:.4g}"
    assert f"{d.top_region} ({100 * d.top_share:.0f}%)" in cells and d.top_region == "lower left"
    assert d.text.split(";")[0] in html
    same = describe_change(before, before, (-1.0, 1.0))._repr_html_()
    assert "identical" in same and math.isinf(describe_change(before, before, (-1.0, 1.0)).psnr)


def test_a_ranking_is_a_list_that_shows_as_a_table(tiny_run: Path) -> None:
    from latentlab.latent.explore import Ranking, rank_elements
    from latentlab.runs import Run

    run = Run.open(tiny_run)
    images = run.data("faces:16")
    x = run.inputs(images)
    ranking = rank_elements(run.model, x, run.model.embed(x).detach())
    assert isinstance(ranking, Ranking) and issubclass(Ranking, list) and len(ranking) == run.model.latent_dim
    rows = re.findall(r"<tr>(.*?)</tr>", ranking._repr_html_())[1:]  # after the header
    assert [int(_cells(r)[1]) for r in rows] == [s.element for s in ranking]
    assert [_cells(r)[2] for r in rows] == [f"{s.effect:.4g}" for s in ranking]
    assert "KL" not in ranking._repr_html_()  # a plain autoencoder has no KL per element


@pytest.fixture(scope="module")
def fitted(tiny_run: Path) -> tuple[Any, Any]:
    from latentlab.anomaly.detector import ReconstructionDetector
    from latentlab.runs import Run

    run = Run.open(tiny_run)
    normal = run.data("faces:48")
    return ReconstructionDetector(run, score="mse").fit(normal), normal


def test_a_detector_shows_what_it_scores_by_and_its_threshold(tiny_run: Path, fitted: tuple[Any, Any]) -> None:
    from latentlab.anomaly.detector import ReconstructionDetector

    unfitted = ReconstructionDetector(str(tiny_run), score="mse")._repr_html_()
    assert "not fitted" in unfitted and str(tiny_run) in unfitted
    det = fitted[0]
    html = det._repr_html_()
    cells = _cells(html)
    assert "(fitted)" in html
    assert cells[cells.index("threshold") + 1] == f"{det.threshold_:.4g}"
    assert cells[cells.index("flagged among them") + 1] == f"{int(det.labels_.sum()):,}"


def test_an_evaluation_shows_its_numbers_and_figures(fitted: tuple[Any, Any], tmp_path: Path) -> None:
    from latentlab.anomaly.evaluate import evaluate

    det, normal = fitted
    labels = np.zeros(len(normal), dtype=np.int64)
    labels[::4] = 1
    result = evaluate(det, normal, labels, tmp_path, k=2)
    html = result._repr_html_()
    cells = _cells(html)
    assert cells[cells.index("ROC AUC") + 1] == f"{result.evaluation.roc_auc:.4g}"
    assert cells[cells.index("images (anomalies)") + 1] == f"{len(labels)} ({labels.sum()})"
    assert html.count("<img ") == len(result.files) == 5


def test_a_comparison_shows_its_verdicts_numbers_and_samples(tiny_run: Path, tiny_vae_run: Path) -> None:
    from latentlab.compare import compare_runs, summary_paragraph, verdicts
    from latentlab.data.sources import load_source
    from latentlab.runs import Run

    c = compare_runs(Run.open(tiny_run), Run.open(tiny_vae_run), load_source("faces:64"), n_samples=10)
    html = c._repr_html_()
    assert escape(summary_paragraph(c).split(":")[0]) in html
    for claim, _, _ in verdicts(c):
        assert escape(claim) in html
    assert f"{c.ae.recon_mse:.4g}" in _cells(html) and f"{c.vae.recon_mse:.4g}" in _cells(html)
    picture = Image.open(io.BytesIO(c._repr_png_()))
    assert picture.format == "PNG" and picture.size[0] > picture.size[1] > 0  # four rows of ten samples
