"""A read-only place, a full disk, a file where a folder should be: one clear line, earlier files intact.

Tests run as root here, so a folder with mode 0o555 is still writable; the failures are made
real where the kernel makes them (``/sys`` refuses new folders, a path through a regular file
is not a folder) and simulated where it cannot (ENOSPC / EROFS / EDQUOT raised from the rename
or the temporary file that every write goes through).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.errors import LatentlabError
from latentlab.io import is_temporary, write_json, write_text

TINY_TRAIN = ["train", "--data", "faces:48", "--resize", "8", "--model", "fcn", "--hidden", "8", "--latent-dim",
              "2", "--epochs", "2", "--batch-size", "16", "--checkpoint-every", "2", "--quiet"]


def _invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fail_with(monkeypatch: pytest.MonkeyPatch, code: int, after: int = 0) -> None:
    """Every ``os.replace`` after the first ``after`` ones fails with ``code``."""
    real, calls = os.replace, [0]

    def replace(src: object, dst: object) -> None:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(code, os.strerror(code), str(dst))
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)


def test_run_folder_under_sys_is_refused() -> None:
    """/sys takes no new folders, even from root."""
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs mounted here")
    code, text = _invoke(*TINY_TRAIN, "--out", "/sys/latentlab-test/run")
    assert code == 2
    assert "/sys/latentlab-test/run: cannot create the run folder" in text
    assert not Path("/sys/latentlab-test").exists()


def test_run_folder_inside_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    code, text = _invoke(*TINY_TRAIN, "--out", blocker / "run")
    assert code == 2
    assert f"{blocker / 'run'}: cannot create the run folder (Not a directory)" in text
    assert blocker.read_text() == "a file, not a folder\n"


@pytest.mark.parametrize(("code", "reason"), [(errno.ENOSPC, "no space left on the device"),
                                              (errno.EROFS, "the file system is read-only"),
                                              (errno.EDQUOT, "disk quota exceeded")])
def test_a_failing_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int,
                                             reason: str) -> None:
    path = tmp_path / "report.json"
    write_json(path, {"version": 1})
    _fail_with(monkeypatch, code)
    with pytest.raises(LatentlabError) as info:
        write_json(path, {"version": 2})
    assert str(info.value) == f"{path}: cannot write ({reason}); earlier files were left as they were"
    assert path.read_text() == '{\n  "version": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left behind


def test_read_only_file_system_when_creating_the_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def refusing_open(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: object) -> int:
        if flags & os.O_CREAT and is_temporary(Path(os.fsdecode(path))):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    write_text(tmp_path / "a.txt", "old")
    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(LatentlabError, match=r"a\.txt: cannot write \(the file system is read-only\)"):
        write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "old"


def test_disk_fills_up_during_training_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC mid-training: one line, exit 2; what was written stays readable; after space frees, resume."""
    out = tmp_path / "run"
    _fail_with(monkeypatch, errno.ENOSPC, after=8)  # config.json and the first checkpoint get through
    code, text = _invoke(*TINY_TRAIN, "--out", out)
    assert code == 2
    assert "cannot write (no space left on the device); earlier files were left as they were" in text
    assert (out / "config.json").is_file() and not (out / "COMPLETE").exists()
    assert not [p for p in out.rglob("*") if is_temporary(p)]
    before = _snapshot(out)
    monkeypatch.undo()
    code, text = _invoke("train", "--resume", "--quiet", "--out", out)
    assert code == 0, text
    assert (out / "COMPLETE").is_file()
    assert _snapshot(out)["config.json"] == before["config.json"]


def test_cli_figure_on_a_full_disk_keeps_the_old_figure(tiny_run: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    figure = tmp_path / "recon.png"
    code, text = _invoke("reconstruct", run, "--index", "0,1", "--out", figure)
    assert code == 0, text
    first = figure.read_bytes()
    _fail_with(monkeypatch, errno.ENOSPC)
    code, text = _invoke("reconstruct", run, "--index", "2,3", "--out", figure, "--overwrite")
    assert code == 2
    assert f"{figure}: cannot write (no space left on the device)" in text
    assert figure.read_bytes() == first
    assert _snapshot(run) == _snapshot(tiny_run)
