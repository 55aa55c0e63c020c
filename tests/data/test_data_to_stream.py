"""Decoding image files reports its progress, and ``data --to npy:PATH`` writes what the loader
gives, bit for bit, without holding the set in memory (decoded into a memory-mapped file)."""

from __future__ import annotations

import io
import itertools
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.data.batches import resize_uint8
from latentlab.data.decode import decoding_into, held_in
from latentlab.data.sources import load_source
from latentlab.data.summary import convert
from latentlab.progress import TerminalBar, decode_bar, decode_progress

N = 20


def _image(rng: np.random.Generator, gray: bool) -> Image.Image:
    shape = (12, 10) if gray else (12, 10, 3)
    return Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """20 small images in two labelled sub-folders, PNG and JPEG."""
    root, rng = tmp_path / "images", np.random.default_rng(0)
    for k in range(N):
        sub = root / ("cat" if k % 3 else "dog")
        sub.mkdir(parents=True, exist_ok=True)
        _image(rng, gray=False).save(sub / f"{k:02d}.{'jpg' if k % 2 else 'png'}")
    return root


@pytest.fixture
def gray_folder(tmp_path: Path) -> Path:
    root, rng = tmp_path / "gray", np.random.default_rng(1)
    root.mkdir()
    for k in range(N):
        _image(rng, gray=True).save(root / f"{k:02d}.png")
    return root


@pytest.fixture
def tar(folder: Path, tmp_path: Path) -> Path:
    path = tmp_path / "images.tar"
    with tarfile.open(path, "w") as tf:
        for file in sorted(folder.rglob("*.*"), reverse=True):  # archive order differs from the rows' order
            tf.add(file, arcname=f"set/{file.relative_to(folder)}")
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LATENTLAB_NO_CACHE", raising=False)
    return tmp_path / "cache"


def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENTLAB_NO_CACHE", "1")


def _spec(kind: str, folder: Path, tar: Path) -> str:
    return f"folder:{folder}" if kind == "folder" else f"tar:{tar}#set"


# ---------------------------------------------------------------------------- progress

@pytest.mark.parametrize("kind", ["folder", "tar"])
def test_decoding_reports_increasing_counts_ending_at_the_total(kind, folder, tar, cache) -> None:
    calls: list[tuple[int, int]] = []
    with decode_progress(lambda done, total: calls.append((done, total))):
        data = load_source(_spec(kind, folder, tar))
    done = [d for d, _ in calls]
    assert {t for _, t in calls} == {N} and len(data) == N
    assert done[0] == 0 and done[-1] == N and len(done) > 2
    assert all(a < b for a, b in itertools.pairwise(done))
    calls.clear()
    with decode_progress(lambda done, total: calls.append((done, total))):
        load_source(_spec(kind, folder, tar))  # from the cache: nothing decoded, nothing reported
    assert calls == []


def test_library_calls_are_quiet_and_none_silences_an_outer_callback(folder, monkeypatch) -> None:
    _no_cache(monkeypatch)
    calls: list[int] = []
    with decode_progress(lambda done, total: calls.append(done)), decode_progress(None):
        load_source(f"folder:{folder}")
    assert calls == []
    with decode_bar():  # stderr is not a terminal under pytest: no bar, no callback installed
        assert not TerminalBar("decoding").enabled
        load_source(f"folder:{folder}")


def test_terminal_bar_opens_per_set_and_closes_at_the_total() -> None:
    bar = TerminalBar("decoding", enabled=True, min_total=3)
    bar(0, 3)
    assert bar._bar is not None
    bar(3, 3)
    assert bar._bar is None
    bar(3, 3)  # a finished set opens nothing
    bar(0, 2)  # nor does a set too small to wait for
    assert bar._bar is None
    bar(0, 5)
    assert bar._bar is not None
    bar.close()
    assert bar._bar is None


# ---------------------------------------------------------------------------- decoding into a file

def test_decoding_into_a_file_gives_the_same_pixels_memory_mapped(folder, gray_folder, tmp_path, monkeypatch) -> None:
    _no_cache(monkeypatch)
    for root, channels in ((folder, 3), (gray_folder, 1)):
        in_memory = load_source(f"folder:{root}")
        target = tmp_path / f"{root.name}.npy"
        with decoding_into(target):
            mapped = load_source(f"folder:{root}")
        assert held_in(mapped.images, target) and mapped.images.shape[-1] == channels
        np.testing.assert_array_equal(mapped.images, in_memory.images)
        np.testing.assert_array_equal(np.load(target), in_memory.images)  # a complete .npy
        assert mapped.label_names == in_memory.label_names == (["cat", "dog"] if channels == 3 else None)
        assert not list(tmp_path.glob("*.gray"))


def test_no_room_for_the_file_decodes_in_memory_with_a_warning(folder, tmp_path, monkeypatch) -> None:
    _no_cache(monkeypatch)
    expected = load_source(f"folder:{folder}").images
    full = shutil._ntuple_diskusage(10**9, 10**9, 0)  # type: ignore[attr-defined]
    monkeypatch.setattr(shutil, "disk_usage", lambda path: full)
    with pytest.warns(UserWarning, match="decoding them in memory"), decoding_into(tmp_path / "x.npy"):
        data = load_source(f"folder:{folder}")
    assert not held_in(data.images, tmp_path / "x.npy")
    np.testing.assert_array_equal(data.images, expected)


def test_a_cold_cache_entry_is_decoded_into_its_file(folder, cache, monkeypatch) -> None:
    first = load_source(f"folder:{folder}")
    [array] = (cache / "prepared").glob("*.npy")
    assert held_in(first.images, array) and not list((cache / "prepared").glob(".*.tmp"))
    _no_cache(monkeypatch)
    np.testing.assert_array_equal(first.images, load_source(f"folder:{folder}").images)


# ---------------------------------------------------------------------------- data --to npy:PATH

def _invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("cached", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("kind", ["folder", "tar"])
def test_to_npy_equals_the_loader_bit_for_bit(kind, cached, folder, tar, tmp_path, cache, monkeypatch) -> None:
    spec = _spec(kind, folder, tar)
    expected = np.array(load_source(spec).images)
    if not cached:
        _no_cache(monkeypatch)
    target = tmp_path / "out" / "x.npy"
    result = _invoke("data", spec, "--to", f"npy:{target}")
    assert result.exit_code == 0, result.output
    assert f"wrote {target} (uint8 {N} x 12 x 10 x 3)" in result.output.replace("\n", "")
    written = np.load(target)
    assert written.dtype == np.uint8 and written.shape == expected.shape
    np.testing.assert_array_equal(written, expected)
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.npy"]  # no temporary left
    resized = _invoke("data", spec, "--to", f"npy:{target}", "--resize", "6,5", "--overwrite")
    assert resized.exit_code == 0, resized.output
    np.testing.assert_array_equal(np.load(target), resize_uint8(expected, (6, 5)))
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.npy"]


def test_streamed_conversion_keeps_the_set_on_disk(folder, gray_folder, tmp_path, monkeypatch) -> None:
    _no_cache(monkeypatch)
    target = tmp_path / "x.npy"
    summary, data = convert(f"folder:{folder}", target)
    assert isinstance(data.images, np.memmap)  # decoded into the file that became the target: no copy in memory
    np.testing.assert_array_equal(np.load(target), load_source(f"folder:{folder}").images)
    assert summary.count == N and summary.labels == {"cat": 13, "dog": 7}
    gray_summary, gray = convert(f"folder:{gray_folder}", tmp_path / "g.npy")
    expected = load_source(f"folder:{gray_folder}").images
    assert gray_summary.shape == (12, 10, 1) and isinstance(gray.images, np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "g.npy"), expected)
    convert(f"folder:{gray_folder}", tmp_path / "g8.npy", resize=(8, 8))
    np.testing.assert_array_equal(np.load(tmp_path / "g8.npy"), resize_uint8(expected, (8, 8)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.npy", "g8.npy", "gray", "images", "x.npy"]


@pytest.mark.parametrize("cached", [True, False], ids=["cache", "no-cache"])
def test_an_existing_target_is_refused_and_left_intact(cached, folder, tmp_path, cache, monkeypatch) -> None:
    if not cached:
        _no_cache(monkeypatch)
    target = tmp_path / "x.npy"
    target.write_bytes(b"already here")
    result = _invoke("data", f"folder:{folder}", "--to", f"npy:{target}")
    assert result.exit_code == 2 and "--overwrite" in result.output and "Traceback" not in result.output
    assert str(target) in result.output.replace("\n", "")
    assert target.read_bytes() == b"already here"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["images", "x.npy"]


def test_a_bad_image_stops_the_conversion_and_leaves_nothing(folder, tmp_path, monkeypatch) -> None:
    _no_cache(monkeypatch)
    (folder / "cat" / "broken.png").write_bytes(b"not a png")
    target = tmp_path / "out" / "x.npy"
    result = _invoke("data", f"folder:{folder}", "--to", f"npy:{target}")
    assert result.exit_code == 2 and "broken.png" in result.output and "Traceback" not in result.output
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_tar_members_out_of_order_land_in_their_rows(tar, tmp_path, monkeypatch) -> None:
    _no_cache(monkeypatch)
    with tarfile.open(tar) as tf:
        member = tf.getmember("set/cat/01.jpg")
        with Image.open(io.BytesIO(tf.extractfile(member).read())) as img:  # type: ignore[union-attr]
            first_cat = np.asarray(img.convert("RGB"))
    convert(f"tar:{tar}#set", tmp_path / "x.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy")[0], first_cat)  # rows sorted by name: cat/01 first
