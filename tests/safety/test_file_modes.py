"""Files written atomically get the mode any new file gets, ``0o666 & ~umask``: not the 0600 of mkstemp
or of the temporary safetensors makes for itself.

Every writer of ``latentlab.io`` and every file of a checkpoint is checked under three umasks,
set in this process and restored in a ``finally``; the last test runs ``latentlab train`` in a
child process started with umask 027 and checks every file and folder of the run.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from latentlab.io import atomic_write, save_figure, write_bytes, write_json, write_text
from latentlab.models.registry import save_weights
from latentlab.train.checkpoints import save_checkpoint


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_take_the_mode_from_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    fig = Figure()
    fig.subplots().plot([0, 1])
    with umask(mask):
        write_bytes(tmp_path / "a.bin", b"\x00\x01")
        write_text(tmp_path / "a.txt", "text\n")
        write_json(tmp_path / "a.json", {"a": 1})
        atomic_write(tmp_path / "a.npy", lambda tmp: tmp.write_bytes(_npy(np.zeros(3))))
        save_figure(fig, tmp_path / "a.png")
        save_weights(model, tmp_path / "model.safetensors")
        save_checkpoint(tmp_path / "checkpoint", model, optimizer, {"step": 1},
                        best={k: v.detach().clone() for k, v in model.state_dict().items()})
        write_text(tmp_path / "a.txt", "rewritten\n")  # replacing a file: the new one's mode, too
    files = {name: m for name, m in _modes(tmp_path).items() if (tmp_path / name).is_file()}
    assert len(files) == 12  # 6 files here, the pointer, 5 in the checkpoint folder
    assert files == dict.fromkeys(files, mode)


@pytest.mark.slow
def test_a_trained_run_folder_follows_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", "faces:48", "--resize", "8", "--model", "fcn", "--hidden", "8", "--latent-dim", "2",
            "--epochs", "2", "--batch-size", "16", "--checkpoint-every", "2", "--quiet", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "latentlab.cli.app", *args], env=env, capture_output=True,
                            text=True, timeout=600, preexec_fn=lambda: os.umask(0o027))
    assert result.returncode == 0, result.stderr
    modes = _modes(out)
    assert {"model.safetensors", "config.json", "checkpoint/latest.json"} <= set(modes)
    expected = {name: 0o750 if (out / name).is_dir() else 0o640 for name in modes}
    assert modes == expected
