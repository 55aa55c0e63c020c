"""Fixtures for the web explorer tests: apps over the shared tiny runs (loaded once per session)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def web_app(tiny_run: Path):
    """The explorer over the tiny AE (latent 4, faces:256)."""
    from latentlab.web.app import create_app

    return create_app(tiny_run)


@pytest.fixture(scope="session")
def client(web_app: Any):
    from fastapi.testclient import TestClient

    with TestClient(web_app) as c:
        yield c


@pytest.fixture(scope="session")
def vae_client(tiny_vae_run: Path):
    from fastapi.testclient import TestClient

    from latentlab.web.app import create_app

    with TestClient(create_app(tiny_vae_run, factors=False)) as c:
        yield c


def _image_file(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def _read_png(data: bytes | str) -> np.ndarray:
    if isinstance(data, str):
        assert data.startswith("data:image/png;base64,"), data[:40]
        data = base64.b64decode(data.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="session")
def image_file():
    """uint8 pixels (H, W, C) or (H, W) -> the bytes of an image file ("PNG", "JPEG", "GIF")."""
    return _image_file


@pytest.fixture(scope="session")
def read_png():
    """PNG bytes or a PNG data URL -> uint8 pixels."""
    return _read_png


@pytest.fixture(scope="session")
def wide_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained fully connected AE with a 40-element latent (more than the page shows at first)."""
    import torch

    from latentlab.data import BatchSpec
    from latentlab.models import FCNConfig, build
    from latentlab.models.registry import save_model
    from latentlab.runs import rule_to_dict

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("runs") / "wide"
    save_model(build(FCNConfig(hidden=(), latent_dim=40)), folder,
               extra={"data": {"spec": "faces:64", "rule": rule_to_dict(BatchSpec())}})
    return folder
