"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real MNIST, CelebA subset, ...) or skip: a fresh clone does not have it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available: {SHARED_DATA} does not exist")
    return SHARED_DATA


def _train_tiny(root: Path, model_config, n: int = 256, epochs: int = 3) -> Path:
    from latentlab.data import BatchSpec, load_source
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    data = load_source(f"faces:{n}")
    train_run(model_config, data, BatchSpec(), TrainConfig(epochs=epochs, batch_size=32, lr=2e-3, seed=0),
              root, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small fully connected AE (latent 4) trained briefly on faces:256; read-only for tests."""
    from latentlab.models import FCNConfig

    return _train_tiny(tmp_path_factory.mktemp("runs") / "fcn", FCNConfig(hidden=(64,), latent_dim=4))


@pytest.fixture(scope="session")
def tiny_vae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small fully connected VAE (latent 4) trained briefly on faces:256; read-only for tests."""
    from latentlab.models import FCNVAEConfig

    return _train_tiny(tmp_path_factory.mktemp("runs") / "vae", FCNVAEConfig(hidden=(64,), latent_dim=4))


@pytest.fixture(scope="session")
def tiny_2d_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small fully connected AE with a 2-element latent trained briefly on faces:256."""
    from latentlab.models import FCNConfig

    return _train_tiny(tmp_path_factory.mktemp("runs") / "fcn2d", FCNConfig(hidden=(64,), latent_dim=2))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded-set and download caches in a temporary folder, never the user's ~/.cache."""
    import os

    os.environ["LATENTLAB_CACHE"] = str(tmp_path_factory.mktemp("cache"))


# ---- a real browser: Debian's /usr/bin/chromium driven by Playwright (tests marked `browser`)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for one test module (skipped where Chromium or Playwright is missing)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
