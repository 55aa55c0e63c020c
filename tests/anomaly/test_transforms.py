"""The rotation classifier and its two scores (``transforms``, ``transform-features``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from latentlab.anomaly.transforms import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    TransformConfig,
    TransformNet,
    TransformTraining,
    attached,
    load_transforms,
    rotate,
    shift,
    train_for_run,
    train_transforms,
    transform_outputs,
)
from latentlab.data import BatchSpec
from latentlab.errors import LatentlabError

TINY = TransformTraining(epochs=10, batch_size=16, lr=5e-3, channels=(8, 16, 16), precision="32-true")


def test_the_classifier_adapts_to_the_image() -> None:
    square = TransformConfig((3, 64, 64))
    assert square.rotations == 4 and square.layers == (32, 64, 128, 256) and square.final_shape() == (256, 4, 4)
    small = TransformConfig((1, 8, 8), (4, 8, 16))
    assert small.layers == (4, 8) and small.final_shape() == (8, 2, 2)  # 8 -> 4 -> 2, then too small
    wide = TransformConfig((3, 32, 48), (4, 8))
    assert wide.rotations == 2  # a quarter turn would change the shape: 0 and 180 degrees only
    x = torch.randn(2, 3, 32, 48)
    assert rotate(x, 1, 2).shape == x.shape and torch.equal(rotate(rotate(x, 1, 2), 1, 2), x)
    assert TransformNet(wide)(x).shape == (2, 2)
    with pytest.raises(LatentlabError, match="cannot be halved"):
        TransformConfig((3, 3, 3))
    with pytest.raises(LatentlabError, match="shift 8: expected 0 to 7 pixels for 8x8 images"):
        TransformConfig((1, 8, 8), (4,), shift=8)
    with pytest.raises(LatentlabError, match="has no shift heads"):
        TransformNet(small).heads(torch.randn(1, 1, 8, 8))
    shifted = TransformNet(TransformConfig((3, 32, 48), (4, 8), shift=4))
    assert [a.shape for a in shifted.heads(x)] == [(2, 2), (2, 3), (2, 3)]


def test_shift_moves_each_image_its_own_way_and_reflects_the_border() -> None:
    x = torch.arange(2 * 1 * 6 * 8, dtype=torch.float32).reshape(2, 1, 6, 8)
    out = shift(x, torch.tensor([1, 0]), torch.tensor([0, -1]), 2)
    assert torch.equal(out[0, :, :, 2:], x[0, :, :, :-2])  # the first moved right by 2
    assert torch.equal(out[0, :, :, :2], x[0, :, :, 1:3].flip(-1))  # the left border reflected in
    assert torch.equal(out[1, :, :-2], x[1, :, 2:])  # the second moved up by 2
    assert torch.equal(shift(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), 2), x)
    assert torch.equal(shift(x, torch.tensor([1, 1]), torch.tensor([1, 1]), 0), x)


def test_settings_are_checked() -> None:
    with pytest.raises(LatentlabError, match="unknown transform-classifier setting.*epoch"):
        TransformTraining.from_dict({"epoch": 3})
    with pytest.raises(LatentlabError, match="expected positive epochs"):
        TransformTraining(epochs=0)
    with pytest.raises(LatentlabError, match="precision"):
        TransformTraining(precision="16-mixed")
    with pytest.raises(LatentlabError, match=r"shift 0.5: expected a fraction of the side in \[0, 0.5\)"):
        TransformTraining(shift=0.5)
    assert TransformTraining.from_dict({"channels": [4, 8]}).channels == (4, 8)


@pytest.fixture(scope="module")
def trained(faces_images: np.ndarray) -> TransformNet:
    return train_transforms(faces_images, BatchSpec(), TINY)


def test_the_same_seed_trains_the_same_classifier(faces_images: np.ndarray) -> None:
    small = TransformTraining(epochs=1, batch_size=16, channels=(4, 8), precision="32-true")
    first = train_transforms(faces_images[:32], BatchSpec(), small)
    torch.rand(100)  # the global generator moves on between the two
    second = train_transforms(faces_images[:32], BatchSpec(), small)
    other = train_transforms(faces_images[:32], BatchSpec(), TransformTraining(**{**small.__dict__, "seed": 1}))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, c) for a, c in zip(first.state_dict().values(), other.state_dict().values(),
                                                      strict=True))


def test_it_learns_which_way_is_up(trained: TransformNet, faces_images: np.ndarray) -> None:
    """After a few epochs on upright faces it is more surprised by upside-down ones."""
    from latentlab.data.rule import model_inputs

    x = model_inputs(BatchSpec(), faces_images)
    upright, _ = transform_outputs(trained, x)
    flipped, _ = transform_outputs(trained, x.flip(-2))
    assert upright.shape == (len(x),) and torch.isfinite(upright).all()
    assert flipped.mean() > 2 * upright.mean()
    _, layers = transform_outputs(trained, x, features=True)
    assert [a.shape[1] for a in layers] == [16, 32, 32]  # mean and std of each layer's channels


def test_the_features_average_an_image_and_its_mirror_image(trained: TransformNet, faces_images: np.ndarray) -> None:
    """The test-time flip: an image and its mirror image get the same features (not the same
    rotation surprise, which sees each as shown)."""
    from latentlab.anomaly.features import pool
    from latentlab.data.rule import model_inputs

    x = model_inputs(BatchSpec(), faces_images[:6])
    _, layers = transform_outputs(trained, x, features=True)
    _, mirrored = transform_outputs(trained, x.flip(-1), features=True)
    for a, b in zip(layers, mirrored, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    with torch.no_grad():
        first = pool(trained.body[:3](x))  # the first layer's statistics of the upright images alone
    assert not torch.allclose(layers[0], first, atol=1e-4)
    assert torch.allclose(layers[0], (first + pool(trained.body[:3](x.flip(-1)))) / 2, atol=1e-5)


def test_it_learns_which_way_an_image_was_shifted(trained: TransformNet, faces_images: np.ndarray) -> None:
    """The shift heads (an eighth of the side, 8 pixels at 64x64) tell the shifts apart far above
    chance (1/3 per head)."""
    from latentlab.data.rule import model_inputs

    assert trained.config.shift == round(0.125 * faces_images.shape[1])
    x = model_inputs(BatchSpec(), faces_images)
    dx, dy = torch.arange(len(x)) % 3 - 1, torch.arange(len(x)) // 3 % 3 - 1
    with torch.no_grad():
        _, by_x, by_y = trained.heads(shift(x, dx, dy, trained.config.shift))
    assert (by_x.argmax(1) == dx + 1).float().mean() > 0.6
    assert (by_y.argmax(1) == dy + 1).float().mean() > 0.6


def test_a_classifier_without_shift_heads_is_trained_and_loaded_as_before(tmp_path: Path,
                                                                           faces_images: np.ndarray) -> None:
    """shift 0 trains rotations only; a version-1 file (before the shift heads) still loads."""
    from latentlab.anomaly.transforms import save_transforms

    small = TransformTraining(epochs=1, batch_size=16, channels=(4, 8), precision="32-true", shift=0.0)
    net = train_transforms(faces_images[:32], BatchSpec(), small)
    assert net.config.shift == 0 and net.shift_x is None
    save_transforms(net, tmp_path)
    data = json.loads((tmp_path / CONFIG_FILE).read_text())
    del data["shift"]
    (tmp_path / CONFIG_FILE).write_text(json.dumps({**data, "version": 1}))
    loaded = load_transforms(tmp_path)
    assert loaded is not None and loaded.config.shift == 0
    x = torch.randn(3, 3, 64, 64)
    assert torch.allclose(transform_outputs(loaded, x)[0], transform_outputs(net, x)[0])


def test_a_run_stores_loads_and_scores_with_it(tmp_path: Path, faces_images: np.ndarray) -> None:
    from latentlab.anomaly.auto import candidate_specs, weights_hash
    from latentlab.anomaly.detector import ReconstructionDetector
    from latentlab.anomaly.scores import check_kind
    from latentlab.models import ConvConfig
    from latentlab.runs import open_run
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    config = ConvConfig(in_shape=(3, 64, 64), channels=(4, 8), latent_dim=4)
    train_run(config, "faces:60", BatchSpec(), TrainConfig(epochs=1, batch_size=16, val_fraction=0.2),
              tmp_path / "run", progress=False)
    run = open_run(tmp_path / "run")
    assert attached(run.model) is None
    with pytest.raises(LatentlabError, match="score 'transforms': this model has no transform classifier"):
        check_kind(run.model, "transforms")
    assert not any("transforms" in parts for parts, _ in candidate_specs(run.model))
    before = weights_hash(run)

    net = train_for_run(run, settings=TINY)
    assert (tmp_path / "run" / WEIGHTS_FILE).is_file()
    assert json.loads((tmp_path / "run" / CONFIG_FILE).read_text())["trained_on"] == 48  # not the 12 held out
    reopened = open_run(tmp_path / "run")
    found = attached(reopened.model)
    assert found is not None and found is not net
    x = reopened.inputs(faces_images[:8])
    assert torch.allclose(transform_outputs(found, x)[0], transform_outputs(net, x)[0], atol=1e-5)
    assert weights_hash(reopened) != before  # a stored auto choice is made again
    assert {"transforms", "transform-features"} <= {k for parts, _ in candidate_specs(reopened.model) for k in parts}

    for score in ("transforms", "transform-features"):
        det = ReconstructionDetector(reopened, score=score).fit(faces_images[:40], held_out=faces_images[40:])
        scores = det.decision_function(faces_images[:8])
        assert scores.shape == (8,) and np.isfinite(scores).all()
    both = ReconstructionDetector(reopened, score="combined", parts=("ssim", "transforms"), combine="max")
    assert both.fit(faces_images[:40]).decision_function(faces_images[:4]).shape == (4,)


def test_a_damaged_classifier_is_a_one_line_error(tmp_path: Path, trained: TransformNet) -> None:
    from latentlab.anomaly.transforms import save_transforms

    assert load_transforms(tmp_path) is None  # none stored: the run simply has none
    save_transforms(trained, tmp_path)
    assert load_transforms(tmp_path) is not None
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(LatentlabError, match="not a readable safetensors file"):
        load_transforms(tmp_path)
    data = json.loads((tmp_path / CONFIG_FILE).read_text())
    (tmp_path / CONFIG_FILE).write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(LatentlabError, match="version 99, expected 1 or 2"):
        load_transforms(tmp_path)
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"version": 1}))
    with pytest.raises(LatentlabError, match="expected 'version', 'in_shape' and 'channels'"):
        load_transforms(tmp_path)


def test_a_damaged_classifier_says_how_to_go_on_in_one_line(tmp_path: Path) -> None:
    """The CLI on a run whose classifier file is damaged: one line naming it and the fix, exit 2."""
    from typer.testing import CliRunner

    from latentlab.cli.app import app

    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", "faces:40", "--recipe", "anomaly", "--epochs", "1",
                                  "--out", str(tmp_path / "run"), "--quiet"])
    assert trained.exit_code == 0, trained.output
    (tmp_path / "run" / WEIGHTS_FILE).write_bytes(b"\0" * 64)
    result = runner.invoke(app, ["score", str(tmp_path / "run"), "--data", "faces:8", "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "transforms.safetensors: not a readable safetensors file" in result.output
    assert "train it again (latentlab train --resume" in result.output
    assert not (tmp_path / "s.csv").exists()
