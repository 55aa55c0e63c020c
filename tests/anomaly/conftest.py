"""Fixtures for the anomaly tests: small image sets, labels, and a tiny MNIST-style IDX folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def faces_images() -> np.ndarray:
    """48 generated faces (uint8 NHWC, 64x64x3), the kind of image the tiny runs were trained on."""
    from latentlab.data import load_source

    return load_source("faces:48:7").images


@pytest.fixture(scope="module")
def mixed_set(faces_images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): 48 faces (0) followed by 16 uniform-noise images (1)."""
    noise = np.random.default_rng(3).integers(0, 256, size=(16, *faces_images.shape[1:]), dtype=np.uint8)
    images = np.concatenate([faces_images, noise])
    return images, np.r_[np.zeros(48, np.int64), np.ones(16, np.int64)]


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = 2051 if array.ndim == 3 else 2049
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fp:
        fp.write(head + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def digits_idx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's 8x8 digits (classes 0-2 only) as MNIST-style IDX files: train 3/4, test 1/4."""
    from latentlab.data import load_source

    d = load_source("digits")
    keep = np.flatnonzero(d.labels < 3)
    images, labels = d.images[keep, :, :, 0], d.labels[keep]
    folder = tmp_path_factory.mktemp("digits_idx")
    cut = len(keep) * 3 // 4
    for prefix, rows in (("train", slice(0, cut)), ("t10k", slice(cut, None))):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[rows])
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels[rows])
    return folder
