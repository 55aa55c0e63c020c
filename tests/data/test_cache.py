"""The decoded-set cache: written once, memory-mapped after, rebuilt when damaged or stale."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentlab.data import readers
from latentlab.data.sources import load_source


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LATENTLAB_CACHE", str(folder))
    monkeypatch.delenv("LATENTLAB_NO_CACHE", raising=False)
    return folder


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Records each real decode of a folder."""
    calls: list[str] = []
    original = readers.read_folder

    def counting(*args, **kwargs):
        calls.append(str(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(readers, "read_folder", counting)
    return calls


def test_second_load_comes_from_the_cache_memory_mapped(cache, folder, decodes) -> None:
    first = load_source(f"folder:{folder}")
    second = load_source(f"folder:{folder}")
    assert len(decodes) == 1
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert second.label_names == ["a", "b"] and second.spec == f"folder:{folder}"
    assert len(list((cache / "prepared").glob("*.npy"))) == 1


def test_a_changed_file_or_geometry_is_a_new_entry(cache, folder, decodes) -> None:
    from latentlab.data.decode import Geometry

    load_source(f"folder:{folder}")
    load_source(f"folder:{folder}", geometry=Geometry(resize=(8, 8)))
    assert len(decodes) == 2
    path = folder / "a" / "0.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    changed = load_source(f"folder:{folder}")
    assert len(decodes) == 3 and changed.images[0].max() == 0


def test_a_damaged_entry_is_rebuilt_with_a_warning(cache, folder, decodes) -> None:
    good = np.array(load_source(f"folder:{folder}").images)
    [array] = (cache / "prepared").glob("*.npy")
    raw = bytearray(array.read_bytes())
    raw[-5] ^= 0xFF  # one pixel
    array.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="damaged"):
        again = load_source(f"folder:{folder}")
    assert len(decodes) == 2
    np.testing.assert_array_equal(again.images, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_source(f"folder:{folder}")  # rewritten: intact again
    assert len(decodes) == 2


def test_no_cache_writes_nothing(cache, folder, decodes, monkeypatch) -> None:
    monkeypatch.setenv("LATENTLAB_NO_CACHE", "1")
    load_source(f"folder:{folder}")
    load_source(f"folder:{folder}")
    assert len(decodes) == 2 and not (cache / "prepared").exists()


def test_the_cli_no_cache_flag(cache, folder, decodes, tmp_path) -> None:
    from typer.testing import CliRunner

    from latentlab.cli.app import app

    args = ["train", "--data", f"folder:{folder}", "--model", "fcn", "--hidden", "4", "--latent-dim", "2",
            "--epochs", "1", "--val-fraction", "0", "--quiet"]
    result = CliRunner().invoke(app, ["--no-cache", *args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert not (cache / "prepared").exists()
    assert os.environ.get("LATENTLAB_NO_CACHE") in (None, "")  # the flag does not leak into the process
