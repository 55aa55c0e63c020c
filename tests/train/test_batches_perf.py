"""The fast paths of batch making and the training loop give the same results as the plain ones.

(Speed itself is measured in benchmarks/, never asserted here.)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from latentlab.data.batches import BatchSpec, to_model_input
from latentlab.errors import LatentlabError
from latentlab.losses import model_loss
from latentlab.models import ConvConfig, FCNConfig
from latentlab.models.registry import build
from latentlab.train.api import on_rank_zero
from latentlab.train.batches import ImageBatches, file_mapping
from latentlab.train.trainer import (
    Callback,
    TrainConfig,
    Trainer,
    seed_generators,
    set_memory_format,
)


def _images(n: int = 6, h: int = 16, w: int = 16, c: int = 3, seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    images[0, 0, 0, 0], images[0, 0, 1, 0] = 0, 255  # both ends of the range
    return images


def _plain(images: np.ndarray, lo: float, hi: float) -> torch.Tensor:
    """The definition: float NCHW, 0..255 mapped linearly onto [lo, hi]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).double() * ((hi - lo) / 255) + lo


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0), (-0.5, 3.0)])
def test_channels_last_batches_hold_the_same_values(value_range: tuple[float, float]) -> None:
    images = _images()
    spec = BatchSpec(value_range=value_range)
    x = to_model_input(images, spec)
    x_cl = to_model_input(images, spec, memory_format=torch.channels_last)
    assert x.is_contiguous() and x_cl.is_contiguous(memory_format=torch.channels_last)
    assert not x_cl.is_contiguous()  # really laid out (N, H, W, C)
    assert torch.equal(x, x_cl)
    torch.testing.assert_close(x.double(), _plain(images, *value_range), atol=1e-6, rtol=0)
    assert float(x.min()) >= value_range[0] and float(x.max()) <= value_range[1]


def test_readonly_memmap_rows_and_crops_in_both_layouts(tmp_path) -> None:
    images = _images(h=20, w=24)
    np.save(tmp_path / "a.npy", images)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    spec = BatchSpec(crop=(2, 3, 16, 16), center_crop=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "non-writable array" warning
        a = to_model_input(mm[1:4], spec)
        b = to_model_input(mm[1:4], spec, memory_format=torch.channels_last)
    expected = _plain(images[1:4, 4:16, 5:17], -1.0, 1.0)
    torch.testing.assert_close(a.double(), expected, atol=1e-6, rtol=0)
    assert torch.equal(a, b)


def test_float64_batches_are_scaled_in_float64() -> None:
    x = to_model_input(_images(), dtype=torch.float64)
    assert x.dtype == torch.float64
    torch.testing.assert_close(x, _plain(_images(), -1.0, 1.0), atol=1e-12, rtol=0)


def test_evaluation_shards_cover_every_row_once() -> None:
    images = _images(n=11)
    val = ImageBatches(images, np.arange(11), 2, BatchSpec(), shuffle=False, equal_shards=False)
    train = ImageBatches(images, np.arange(11), 2, BatchSpec())
    shards = [val.order(0, r, 3).tolist() for r in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(11))
    assert [val.num_batches(3, r) for r in range(3)] == [2, 2, 2]  # 4, 4, 3 rows
    equal = [train.order(5, r, 3) for r in range(3)]
    assert {len(s) for s in equal} == {3} and not set(equal[0]) & set(equal[1])
    assert train.num_batches(3) == 2


def test_seed_generators_matches_torch_manual_seed_on_cpu() -> None:
    torch.manual_seed(123)
    expected = torch.randn(5)
    torch.manual_seed(7)
    seed_generators(123, torch.device("cpu"))
    assert torch.equal(torch.randn(5), expected)


def test_training_reseeds_without_torch_manual_seed(monkeypatch) -> None:
    """torch.manual_seed formats stack traces for lazily seeded devices: ~2 ms a step."""
    calls = []
    monkeypatch.setattr(torch, "manual_seed", lambda seed: calls.append(seed))
    model = build(FCNConfig(in_shape=(1, 8, 8), hidden=(8,), latent_dim=2))
    images = _images(n=64, h=8, w=8, c=1)
    batches = ImageBatches(images, np.arange(64), 16, BatchSpec())
    Trainer(TrainConfig(epochs=1, batch_size=16)).fit(model, model_loss, batches)
    assert calls == []


class _Losses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step_end(self, trainer: Trainer, terms: dict[str, float], images: int) -> None:
        self.losses.append(terms["loss"])


def _fit_conv(memory_format: torch.memory_format, monkeypatch) -> tuple[torch.nn.Module, list[float]]:
    import latentlab.train.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "memory_format_for", lambda model: memory_format)
    torch.manual_seed(0)
    model = build(ConvConfig(in_shape=(3, 16, 16), channels=(4, 8)))
    losses = _Losses()
    batches = ImageBatches(_images(n=48), np.arange(48), 16, BatchSpec(), seed=1)
    Trainer(TrainConfig(epochs=2, batch_size=16), callbacks=[losses]).fit(model, model_loss, batches)
    return model, losses.losses


def test_channels_last_training_matches_and_hands_back_the_usual_layout(monkeypatch) -> None:
    model_cl, losses_cl = _fit_conv(torch.channels_last, monkeypatch)
    model, losses = _fit_conv(torch.contiguous_format, monkeypatch)
    assert all(p.is_contiguous() for p in model_cl.parameters())
    np.testing.assert_allclose(losses_cl, losses, rtol=1e-4)
    for (name, a), b in zip(model_cl.state_dict().items(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5, msg=name)


def test_set_memory_format_moves_optimizer_state_with_its_parameter() -> None:
    conv = torch.nn.Conv2d(2, 3, 3)
    optimizer = torch.optim.Adam(conv.parameters())
    conv(torch.randn(2, 2, 5, 5)).sum().backward()
    optimizer.step()
    before = {k: v.clone() for k, v in optimizer.state[conv.weight].items()}
    set_memory_format(conv, optimizer, torch.channels_last)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    for name, value in optimizer.state[conv.weight].items():
        assert torch.equal(value, before[name])  # same values, ...
        if value.shape == conv.weight.shape:  # ... laid out like the weight
            assert value.stride() == conv.weight.stride()


class _Fabric:
    """The two things on_rank_zero uses, for a rank of a 2-process run."""

    def __init__(self, rank: int, message: str | None) -> None:
        self.is_global_zero, self.world_size, self.message = rank == 0, 2, message

    def broadcast(self, obj: object, src: int = 0) -> object:
        return obj if self.is_global_zero else self.message


def test_an_error_on_rank_zero_stops_every_rank() -> None:
    def refuse() -> None:
        raise LatentlabError("run: folder exists")

    with pytest.raises(LatentlabError, match="folder exists"):
        on_rank_zero(_Fabric(0, None), refuse)
    ran: list[int] = []
    with pytest.raises(LatentlabError, match="folder exists"):  # rank 1 hears it from rank 0
        on_rank_zero(_Fabric(1, "run: folder exists"), lambda: ran.append(1))
    assert ran == []  # and never ran it itself
    on_rank_zero(_Fabric(1, None), lambda: ran.append(1))  # no error: nothing raised


def _rss_file_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:"))


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc/self/status (Linux)")
def test_an_epoch_over_a_memory_mapped_set_leaves_no_file_pages_mapped(tmp_path: Path) -> None:
    from latentlab.data.sources import load_source

    images = np.random.default_rng(0).integers(0, 256, size=(2000, 32, 32, 3), dtype=np.uint8)  # 6 MB
    np.save(tmp_path / "big.npy", images)
    data = load_source(f"npy:{tmp_path / 'big.npy'}")
    assert file_mapping(data.images) is not None
    assert file_mapping(images) is None and file_mapping(np.load(tmp_path / "big.npy", mmap_mode="r+")) is None
    batches = ImageBatches(data.images, np.arange(2000), 64, BatchSpec())
    before = _rss_file_kb()
    seen = [x for x, _ in batches.epoch(0)]
    assert _rss_file_kb() - before < 1024  # without the release: most of the 6 MB file
    order = batches.order(0)[:64]
    torch.testing.assert_close(seen[0], to_model_input(images[np.sort(order)]))  # pages re-read correctly
