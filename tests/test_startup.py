"""Start-up: the CLI answers ``--help`` without importing torch, and a one-device run trains
without Lightning Fabric (``latentlab.train.one_device``) to the same bits as Fabric.

How fast that is, is measured in ``benchmarks/startup.py``, not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from latentlab.data.batches import BatchSpec
from latentlab.losses import model_loss
from latentlab.models import ConvConfig, FCNVAEConfig, build
from latentlab.train.batches import ImageBatches
from latentlab.train.one_device import OneDevice
from latentlab.train.trainer import PRECISIONS, TrainConfig, Trainer, make_fabric

HEAVY = ("torch", "numpy", "lightning", "lightning_fabric", "matplotlib", "PIL", "safetensors")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], []])
def test_help_imports_no_library(argv: list[str]) -> None:
    code = ("import sys\nfrom latentlab.cli.app import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n"
            "    pass\nprint()\nprint(__import__('json').dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout
    assert "Usage" in out
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_training_a_plain_autoencoder_imports_no_scikit_learn_or_scipy(tmp_path) -> None:
    """scikit-learn and SciPy take about a second to import; a run that needs neither (a plain
    autoencoder: no collapse check, no metrics) must not pay for them."""
    code = ("import sys\nfrom latentlab.cli.app import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nprint()\nprint(__import__('json').dumps(sorted({m.split('.')[0] for m in "
            "sys.modules if m.split('.')[0] in ('sklearn', 'scipy')})))")
    argv = ["train", "--data", "faces:64", "--model", "fcn", "--hidden", "16", "--latent-dim", "2", "--epochs", "1",
            "--batch-size", "32", "--quiet", "--out", str(tmp_path / "run")]
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
    assert (tmp_path / "run" / "COMPLETE").is_file()


def test_package_names_still_load_on_first_use() -> None:
    code = ("import sys, latentlab\nassert 'torch' not in sys.modules\n"
            "from latentlab import open_run, Run, build, preset_config\n"
            "assert latentlab.load.__module__ == 'latentlab' and open_run is latentlab.open_run\n"
            "assert 'build' in dir(latentlab)\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    import latentlab

    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = latentlab.nonsense  # type: ignore[attr-defined]


def test_one_device_only_where_it_does_what_fabric_does(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "LOCAL_RANK", "LT_CLI_USED"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(make_fabric(TrainConfig()), OneDevice)
    assert isinstance(make_fabric(TrainConfig(precision="bf16-mixed")), OneDevice)
    for config in (TrainConfig(precision="64"), TrainConfig(devices=2), TrainConfig(strategy="ddp")):
        assert not isinstance(make_fabric(config), OneDevice), config
    monkeypatch.setenv("LOCAL_RANK", "0")  # started by a launcher: Fabric joins it
    assert not isinstance(make_fabric(TrainConfig()), OneDevice)


def _fit(config: object, precision: str, fabric: object) -> tuple[dict[str, torch.Tensor], list[float]]:
    torch.manual_seed(0)
    model = build(config)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(48, 16, 16, 3), dtype=np.uint8)
    batches = ImageBatches(images, np.arange(48), 16, BatchSpec(), seed=1)
    trainer = Trainer(TrainConfig(epochs=2, batch_size=16, precision=precision, val_fraction=0.0), fabric=fabric)
    state = trainer.fit(model, model_loss, batches, val=ImageBatches(images, np.arange(16), 16, BatchSpec(),
                                                                     shuffle=False))
    return model.state_dict(), [row["train_loss"] for row in state.history] + [row["val_loss"] for row in state.history]


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
@pytest.mark.parametrize("config", [FCNVAEConfig(in_shape=(3, 16, 16), hidden=(32,), latent_dim=4),
                                    ConvConfig(in_shape=(3, 16, 16), channels=(4, 8))], ids=["fcn-vae", "conv"])
def test_one_device_trains_to_fabrics_bits(config: object, precision: str) -> None:
    from lightning_fabric import Fabric

    fabric = Fabric(accelerator="cpu", devices=1, precision=PRECISIONS[precision])  # type: ignore[arg-type]
    ours, our_losses = _fit(config, precision, OneDevice("cpu", PRECISIONS[precision]))
    theirs, their_losses = _fit(config, precision, fabric)
    assert our_losses == their_losses
    assert ours.keys() == theirs.keys()
    for name, value in ours.items():
        assert torch.equal(value, theirs[name]), name


def test_one_device_clips_as_fabric_does() -> None:
    from lightning_fabric import Fabric

    norms = []
    for fabric in (OneDevice("cpu", "32-true"), Fabric(accelerator="cpu", devices=1)):
        torch.manual_seed(0)
        layer = torch.nn.Linear(8, 8)
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        module, optimizer = fabric.setup(layer, optimizer)
        fabric.backward(module(torch.randn(4, 8)).pow(2).sum())
        norms.append(fabric.clip_gradients(module, optimizer, max_norm=0.5, error_if_nonfinite=False))
        norms.append(layer.weight.grad.clone())
    torch.testing.assert_close(norms[0], norms[2], rtol=0, atol=0)
    torch.testing.assert_close(norms[1], norms[3], rtol=0, atol=0)
