"""The code table: the same scores as encoding every draw, with each factor combination encoded once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from latentlab.data import shapes
from latentlab.metrics.codes import CodeTable, table_fits
from latentlab.metrics.evaluate import disentanglement, evaluate
from latentlab.metrics.truth import GroundTruth, encoder_of, ground_truth

SIZES = (4, 5, 3, 6)  # 360 combinations
MANY: dict[str, Any] = {"batch_size": 8, "num_train": 60, "num_eval": 40, "num_variance_estimate": 300}  # 2,800 draws
FEW: dict[str, Any] = {"batch_size": 4, "num_train": 30, "num_eval": 20, "num_variance_estimate": 100}  # 750 draws
MIX = np.random.default_rng(7).normal(size=(4, 5))  # a fixed code of 5 elements


class Recorder:
    """A deterministic code of level rows that records every row it is asked to encode."""

    def __init__(self, sizes: tuple[int, ...] = SIZES) -> None:
        self.rows: list[np.ndarray] = []
        self.sizes = np.asarray(sizes)

    def __call__(self, levels: np.ndarray) -> np.ndarray:
        self.rows.append(np.asarray(levels).copy())
        z = (levels - (self.sizes - 1) / 2) / self.sizes
        mixed = (z[:, :, None] * MIX[None]).sum(axis=1)  # z @ MIX, but each row's rounding independent of N
        return np.asarray(np.tanh(mixed + 0.5 * z[:, :1] ** 2))

    def distinct(self) -> int:
        return len(np.unique(np.concatenate(self.rows), axis=0))

    def count(self) -> int:
        return sum(len(r) for r in self.rows)


def truth(sizes: tuple[int, ...] = SIZES) -> GroundTruth:
    return GroundTruth(names=("a", "b", "c", "d"), sizes=sizes, observe=lambda levels: levels.copy())


def without_counts(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if k != "images_encoded"}


@pytest.mark.parametrize(("sizes", "counts", "drawn"), [
    (SIZES, MANY, 2 * 8 * 100 + 300 + 8 * 100 + 100),  # more draws than combinations: the table fills first
    ((6, 8, 5, 7), FEW, 2 * 4 * 50 + 100 + 4 * 50 + 50),  # 750 draws of 1,680: encoded as drawn
])
def test_code_table_gives_the_same_scores_bit_for_bit(sizes: tuple[int, ...], counts: dict[str, Any],
                                                      drawn: int) -> None:
    plain, cached = Recorder(sizes), Recorder(sizes)
    first = evaluate(truth(sizes), plain, seed=5, **counts)
    second = evaluate(truth(sizes), cached, seed=5, deterministic=True, **counts)
    assert second["scores"] == first["scores"]
    assert without_counts(second["details"]) == without_counts(first["details"])
    # without the table every draw is encoded; with it each combination at most once
    assert first["details"]["images_encoded"] == plain.count() == drawn
    assert second["details"]["images_encoded"] == cached.count() == cached.distinct()
    grid = int(np.prod(sizes))
    if drawn >= grid:
        assert cached.count() == grid < drawn / 7
    else:
        assert cached.count() == plain.distinct() < drawn  # exactly the combinations drawn


def test_table_encodes_only_what_is_missing_and_gathers_in_order() -> None:
    recorder = Recorder()
    table = CodeTable(truth(), recorder, chunk=7)
    levels = truth().sample_factors(50, np.random.default_rng(0))
    np.testing.assert_array_equal(table(levels), recorder(levels))
    recorder.rows.clear()
    again = np.concatenate([levels[::-1], truth().sample_factors(30, np.random.default_rng(1))])
    np.testing.assert_array_equal(table(again), Recorder()(again))
    new = {tuple(r) for r in again[50:]} - {tuple(r) for r in levels}
    assert recorder.count() == len(new)  # the rows seen before were not encoded again
    assert table.drawn == 130 and table.encoded == len({tuple(r) for r in again})


def test_flat_index_is_the_shapes_image_index() -> None:
    table = CodeTable(ground_truth("shapes"), Recorder())
    index = np.array([0, 1, 33, 4095, 737_279])
    np.testing.assert_array_equal(table.index(shapes.levels_of(index)), index)


def test_a_table_too_large_for_memory_is_not_used() -> None:
    grid = ground_truth("shapes")
    assert grid is not None
    assert table_fits(grid, 10) and not table_fits(grid, 1000)  # 59 MB; 5.9 GB


@pytest.fixture(scope="module")
def shapes_model() -> Any:
    import torch

    from latentlab.models.presets import kind_config
    from latentlab.models.registry import build

    torch.manual_seed(0)
    config = kind_config("beta-vae-conv", in_shape=(1, 64, 64), out_activation="sigmoid", latent_dim=4,
                         channels=(4, 8, 8))
    return build(config).eval()


@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")  # 40 codes, 32 positions
def test_run_on_shapes_scores_as_without_the_table(shapes_model: Any) -> None:
    import torch

    from latentlab.runs import as_run

    counts: dict[str, Any] = {"batch_size": 8, "num_train": 40, "num_eval": 20, "num_variance_estimate": 200}
    threads = torch.get_num_threads()
    cached = disentanglement(shapes_model, "shapes", seed=1, **counts)
    plain = evaluate(ground_truth("shapes"), encoder_of(as_run(shapes_model)), seed=1,
                     **counts)
    for name, value in plain["scores"].items():
        assert cached["scores"][name] == pytest.approx(value, abs=1e-12), name
    drawn = plain["details"]["images_encoded"]
    assert drawn == 2 * 8 * 60 + 200 + 8 * 60 + 60
    assert cached["details"]["images_encoded"] <= drawn
    assert torch.get_num_threads() == threads  # encoding on worker threads left the caller's count as it was


def test_threaded_encoder_gives_each_image_the_same_code(shapes_model: Any) -> None:
    import torch

    from latentlab.runs import as_run

    images = shapes.render_shapes(shapes.levels_of(np.arange(0, 737_280, 997)))  # 740 images
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        threaded = encoder_of(as_run(shapes_model), batch=100)(images)  # 8 batches on 2 threads
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        serial = encoder_of(as_run(shapes_model), batch=740)(images)
    finally:
        torch.set_num_threads(threads)
    assert threaded.shape == (740, 4) and threaded.dtype == np.float64
    np.testing.assert_allclose(threaded, serial, rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")
def test_cli_says_how_many_images_it_encoded(shapes_model: Any, tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from latentlab.cli.app import app
    from latentlab.models.registry import save_model

    save_model(shapes_model, tmp_path / "run")
    out = tmp_path / "scores.json"
    args = ["disentanglement", str(tmp_path / "run"), "--data", "shapes", "--out", str(out), "--quiet",
            "--num-train", "30", "--num-eval", "20", "--batch-size", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    encoded = saved["details"]["images_encoded"]
    assert 0 < encoded <= 2 * 4 * 50 + 30 + 4 * 50 + 50  # at most the draws (the CLI estimates variances on 30)
    assert f"{encoded:,} images encoded;" in " ".join(result.output.split())
