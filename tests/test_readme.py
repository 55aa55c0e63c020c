"""Every ```python block of README.md runs as written (issue 11).

Each block is executed in a **fresh namespace**: the README's blocks are separate examples (the
detector, the model, the run handle) and a reader pastes any one of them alone, so each must
import and load everything it uses. Nothing is injected into the namespace; the only setup is
what the README itself assumes on disk, made in a temporary working folder:

* ``trainingset.npy`` / ``testingset.npy`` in the course format (N x 64 x 64 x 3 uint8), here cut
  from the generated ``faces`` set;
* ``runs/fcn``: a fully connected autoencoder on (3, 64, 64) input trained on
  ``npy:trainingset.npy``, as the README's ``latentlab train --data npy:trainingset.npy
  --preset hw8-fcn --out runs/fcn`` makes it (tiny widths and one epoch here, same shapes).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

# a fence line of exactly ```python, its body, the closing ``` (blocks in other languages are skipped)
BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the opening fence, source) of every ```python block, in order."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def block_id(block: tuple[int, str]) -> str:
    line, source = block
    first = next((s.strip() for s in source.splitlines() if s.strip()), "(empty)")
    return f"L{line}: {first}"


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 1, f"{README}: no ```python blocks found; the parametrized test below would pass vacuously"


def test_block_parser_finds_each_block_in_order() -> None:
    text = "x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\nc = 3\n```\n"
    assert python_blocks(text) == [(2, "a = 1\n"), (8, "b = 2\nc = 3\n")]


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder holding what the README's blocks refer to (see the module docstring)."""
    from latentlab.data import BatchSpec, load_source
    from latentlab.models import FCNConfig
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    root = tmp_path_factory.mktemp("readme")
    faces = load_source("faces:96").images  # (96, 64, 64, 3) uint8, the course's array layout
    np.save(root / "trainingset.npy", faces[:64])
    np.save(root / "testingset.npy", faces[64:])
    model = FCNConfig(in_shape=(3, 64, 64), hidden=(16,), latent_dim=3)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the run records the spec as given: "npy:trainingset.npy", as the README's run does
        train_run(model, "npy:trainingset.npy", BatchSpec(), TrainConfig(epochs=1, batch_size=32), "runs/fcn",
                  progress=False)
    return root


@pytest.mark.parametrize("block", BLOCKS, ids=[block_id(b) for b in BLOCKS])
def test_readme_block_runs(block: tuple[int, str], readme_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line, source = block
    monkeypatch.chdir(readme_dir)
    # padded so that a traceback names the README's own line numbers
    code = compile("\n" * line + source, str(README), "exec")
    exec(code, {"__name__": f"readme_block_{line}"})  # a raising block fails this test
