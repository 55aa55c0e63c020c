"""Every file the CLI writes goes through ``latentlab.io``: opened for writing only under a temporary name.

A Python audit hook sees every ``open`` (``builtins.open``, ``os.open``, and so numpy, PIL and
matplotlib writing to a path). While the commands below run, each file opened for writing inside
the test's folder must have the temporary name that ``latentlab.io.atomic_path`` makes
(``.NAME.XXXX.tmp``), later renamed into place; a direct write to a final name is a file a kill
could leave half-written. (safetensors writes from Rust, unseen by the hook: into a ``.tmpXXXXXX``
file of its own, renamed onto ``atomic_write``'s temporary.) The run folder's ``.lock`` is opened
for writing but never written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.io import is_temporary
from latentlab.train.lock import LOCK_NAME

pytestmark = pytest.mark.slow

_WATCH: list[tuple[Path, list[Path]]] = []  # (folder, writes seen) while a test watches; audit hooks stay forever
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _WATCH or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path, mode, flags = args
    writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
    if not writes:
        return
    folder, seen = _WATCH[-1]
    target = Path(os.fsdecode(path)).absolute()
    if folder in target.parents:
        seen.append(target)


sys.addaudithook(_audit)


@contextlib.contextmanager
def watching(folder: Path) -> Iterator[list[Path]]:
    """Collect the paths opened for writing below ``folder`` while the block runs."""
    seen: list[Path] = []
    _WATCH.append((folder.absolute(), seen))
    try:
        yield seen
    finally:
        _WATCH.pop()


def test_cli_commands_write_only_through_temporary_names(tiny_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    out = tmp_path / "out"
    out.mkdir()
    commands = [
        ["train", "--data", "faces:48", "--resize", "8", "--model", "fcn", "--hidden", "8", "--latent-dim", "2",
         "--epochs", "2", "--batch-size", "16", "--checkpoint-every", "2", "--quiet", "--out", out / "new"],
        ["reconstruct", run, "--out", out / "recon.png"],
        ["edit", run, "--edit", "z[0]*=3", "--out", out / "edit.png"],
        ["traverse", run, "--top", "2", "--steps", "3", "--gif", out / "gifs", "--limit", "64",
         "--out", out / "traverse.png"],
        ["interpolate", run, "--from", "0", "--to", "1", "--steps", "3", "--out", out / "interp.png"],
        ["sample", run, "--n", "4", "--limit", "64", "--out", out / "samples.png"],
        ["latent-map", run, "--limit", "64", "--out", out / "map.png"],
        ["attribute", run, "--where", "label==1", "--limit", "64", "--out", out / "attr.png"],
        ["score", run, "--data", "faces:16:5", "--score", "mse", "--quiet", "--out", out / "prediction.csv"],
        ["evaluate", run, "--data", "faces:32:5", "--labels", "label==1", "--fit-limit", "64", "--quiet",
         "--out-dir", out / "eval"],
        ["report", run, "--out", out / "report.html"],
        ["summary", run, "--diagram", out / "arch.png"],
    ]
    with watching(tmp_path) as writes:
        (tmp_path / "control.txt").write_text("a direct write")  # the hook does see one
        assert writes == [(tmp_path / "control.txt").absolute()]
        writes.clear()
        for args in commands:
            result = CliRunner().invoke(app, [str(a) for a in args])
            assert result.exit_code == 0, f"{args[0]}: {result.output}"
    final = [p for p in out.rglob("*") if p.is_file()]
    assert len(final) >= 12 and writes  # the commands wrote, and the hook saw them
    # the run folder's lock file is opened for writing but never written: nothing in it can be half done
    direct = sorted({str(p.relative_to(tmp_path)) for p in writes if not is_temporary(p) and p.name != LOCK_NAME})
    assert direct == [], f"written directly, not through latentlab.io: {direct}"
    assert not [p for p in tmp_path.rglob("*") if is_temporary(p)]
