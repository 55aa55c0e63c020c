"""Named sets: the cache is used without network, downloads are verified, offline fails clearly.

No test touches the internet: downloads come from ``file://`` mirrors in tmp_path (urllib's
real download path) or from an unreachable address.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from latentlab.data import download, load_source
from latentlab.errors import LatentlabError

UNREACHABLE = ("http://127.0.0.1:9/",)
MNIST_FILES = [f.name for pair in download.DATASETS["mnist"].files.values() for f in pair]


@pytest.fixture
def offline(monkeypatch) -> None:
    """Every mirror points at a closed local port: any download attempt fails fast."""
    for name in download.MIRRORS:
        monkeypatch.setitem(download.MIRRORS, name, UNREACHABLE)


def _link_mnist(shared_data: Path, folder: Path, names: list[str] = MNIST_FILES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(shared_data / "mnist" / name)


def test_cached_files_need_no_network(shared_data, tmp_path, offline) -> None:
    _link_mnist(shared_data, tmp_path / "mnist")
    train = load_source("mnist", cache_dir=tmp_path)
    assert train.images.shape == (60000, 28, 28, 1) and train.spec == "mnist"
    assert train.label_names == [str(i) for i in range(10)]
    test = load_source("mnist#test", cache_dir=tmp_path)
    assert test.images.shape == (10000, 28, 28, 1)


def test_cache_dir_from_environment(shared_data, tmp_path, monkeypatch, offline) -> None:
    test_files = [n for n in MNIST_FILES if n.startswith("t10k")]
    _link_mnist(shared_data, tmp_path / "env" / "mnist", test_files)  # only the test split is cached
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "env"))
    assert download.cache_root() == tmp_path / "env"
    assert len(load_source("mnist#test")) == 10000


def test_cache_root_default(monkeypatch) -> None:
    monkeypatch.delenv("LATENTLAB_CACHE", raising=False)
    assert download.cache_root() == Path.home() / ".cache" / "latentlab"
    assert download.cache_root(Path("/x")) == Path("/x")


def test_download_from_a_mirror_is_verified_and_cached(shared_data, tmp_path, monkeypatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in MNIST_FILES:
        shutil.copy(shared_data / "mnist" / name, mirror / name)
    monkeypatch.setitem(download.MIRRORS, "mnist", (*UNREACHABLE, mirror.as_uri() + "/"))
    data = load_source("mnist#test", cache_dir=tmp_path / "cache")
    assert data.images.shape == (10000, 28, 28, 1)
    cached = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert cached == sorted(MNIST_FILES)  # all four, so the other split needs no network later

    (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"corrupt")
    assert len(load_source("mnist#test", cache_dir=tmp_path / "cache")) == 10000  # fetched again


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    fake = gzip.compress(np.zeros(16, np.uint8).tobytes())
    for name in MNIST_FILES:
        (mirror / name).write_bytes(fake)
    monkeypatch.setitem(download.MIRRORS, "mnist", (mirror.as_uri() + "/",))
    with pytest.raises(LatentlabError, match="checksum mismatch"):
        load_source("mnist", cache_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache" / "mnist").iterdir())  # nothing half-written is kept


@pytest.mark.parametrize("spec", ["mnist", "fashion-mnist#test"])
def test_offline_error_says_how_to_use_local_files(tmp_path, offline, spec) -> None:
    with pytest.raises(LatentlabError) as info:
        load_source(spec, cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "download of" in message and "failed" in message
    assert "idx:DIR" in message and "127.0.0.1:9" in message


def test_unknown_split(tmp_path, offline) -> None:
    with pytest.raises(LatentlabError, match="unknown split 'valid'"):
        load_source("mnist#valid", cache_dir=tmp_path)
