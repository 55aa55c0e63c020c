"""``latentlab data SPEC``: the summary, the sample grid, conversion to .npy, and bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.data.sources import load_source
from latentlab.data.summary import sample_grid, summarize_set

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_summary_of_an_npy_file_is_exact(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(3, 201, size=(10, 8, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    result = invoke("data", f"npy:{tmp_path / 'x.npy'}")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "images 10" in text and "8 x 6 x 3" in text and "uint8" in text
    assert f"value range {images.min()}..{images.max()}" in text
    means = images.reshape(-1, 3).mean(0)
    assert ", ".join(f"{m:.1f}" for m in means) in text
    assert "labels none" in text


def test_labels_and_factors_are_counted() -> None:
    data = load_source("faces:40")
    summary = summarize_set(data)
    assert summary.count == 40 and summary.shape == (64, 64, 3)
    assert set(summary.factors) == set(data.factors)
    for name, (lo, mean, hi) in summary.factors.items():
        assert lo == pytest.approx(data.factors[name].min()) and hi == pytest.approx(data.factors[name].max())
        assert lo <= mean <= hi
    digits = summarize_set(load_source("digits"))
    assert sum(digits.labels.values()) == digits.count and set(digits.labels) == {str(i) for i in range(10)}


def test_grid_is_written_and_its_path_printed(tmp_path) -> None:
    out = tmp_path / "grid.png"
    result = invoke("data", "faces:20", "--out", out, "--n", "10")
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    with Image.open(out) as img:
        assert img.size == (8 * 65 - 1, 2 * 65 - 1)  # 10 images, 8 per row
    again = invoke("data", "faces:20", "--out", out)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_grid_tiles_are_the_images() -> None:
    data = load_source("faces:3")
    grid = sample_grid(data, n=3)
    assert grid.shape == (64, 3 * 65 - 1, 3)
    np.testing.assert_array_equal(grid[:, 65:129], data.images[1])


def test_to_npy_converts_and_refuses_to_replace(tmp_path) -> None:
    target = tmp_path / "faces.npy"
    result = invoke("data", "faces:30", "--to", f"npy:{target}")
    assert result.exit_code == 0, result.output
    written = np.load(target)
    np.testing.assert_array_equal(written, load_source("faces:30").images)
    before = target.read_bytes()
    refused = invoke("data", "faces:31", "--to", f"npy:{target}")
    assert refused.exit_code == 2 and "--overwrite" in refused.output and "Traceback" not in refused.output
    assert target.read_bytes() == before  # nothing already written is damaged
    resized = invoke("data", "faces:31", "--to", f"npy:{target}", "--resize", "32", "--overwrite")
    assert resized.exit_code == 0, resized.output
    assert np.load(target, mmap_mode="r").shape == (31, 32, 32, 3)
    assert load_source(f"npy:{target}").images.shape == (31, 32, 32, 3)  # the course's format reads back


def test_grayscale_source_converts_with_one_channel(tmp_path) -> None:
    target = tmp_path / "digits.npy"
    assert invoke("data", "digits", "--to", target).exit_code == 0
    assert np.load(target).shape == (1797, 8, 8, 1)


def _tar_of_images(path, sizes, seed=0):
    import io
    import tarfile

    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w") as tf:
        for k, (h, w) in enumerate(sizes):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
            info = tarfile.TarInfo(f"set/{'cat' if k % 3 else 'dog'}/{k:03d}.png")
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))


def test_tar_summary_from_headers_matches_the_decoded_set(tmp_path) -> None:
    from latentlab.data.summary import summarize, tar_summary

    _tar_of_images(tmp_path / "x.tar", [(12, 10)] * 9)
    spec = f"tar:{tmp_path / 'x.tar'}#set"
    quick, drawn = tar_summary(spec, sample=4)
    exact, decoded = summarize(spec, headers=False)
    assert quick.sampled == 4 and len(drawn) == 4 and exact.sampled is None and len(decoded) == 9
    assert (quick.count, quick.shape, quick.labels) == (exact.count, exact.shape, exact.labels) == (
        9, (12, 10, 3), {"cat": 6, "dog": 3})
    whole, _ = tar_summary(spec, sample=100)  # every image drawn: the same numbers as decoding all
    assert whole.value_range == exact.value_range and whole.mean == pytest.approx(exact.mean)
    result = invoke("data", spec)
    assert result.exit_code == 0 and "from 9 sampled images" in " ".join(result.output.split())


def test_tar_of_mixed_sizes_is_one_line(tmp_path) -> None:
    _tar_of_images(tmp_path / "x.tar", [(12, 10), (8, 8)])
    result = invoke("data", f"tar:{tmp_path / 'x.tar'}")
    assert result.exit_code == 2 and "2 sizes" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "needle"), [
    (("nosuch:thing",), "unknown data spec"),
    (("faces:10", "--to", "out.png"), "expected npy:PATH"),
    (("npy:/nonexistent/x.npy",), "file not found"),
])
def test_bad_input_is_one_line(args, needle, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("data", *args)
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.output.split()) and "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("form", ["celeba:{}#train", "tar:{}"])
def test_celeba_tar_summary_under_10_seconds(form, shared_data, tmp_path) -> None:
    tar = shared_data / "celeba_subset" / "celeba_aligned_6000img_200id.tar"
    spec = form.format(tar)
    started = time.perf_counter()  # from the archive's headers and a sample: no cache needed
    result = invoke("data", spec)
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    if spec.startswith("celeba"):
        assert "images 4,800" in text and "64 x 64 x 3" in text and "200 classes" in text
    else:
        assert "images 6,000" in text and "218 x 178 x 3" in text
    assert seconds < 10, f"{spec}: summary took {seconds:.1f} s"
