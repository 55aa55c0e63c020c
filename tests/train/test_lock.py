"""RunLock: one process at a time writes a run folder; a dead holder (even SIGKILLed) frees it.

Holders are forked child processes (flock is per open file, so a lock taken by another process is
the real case; forking skips a fresh interpreter's second of imports). Each child reports one line
(``held`` or ``refused: MESSAGE``) and keeps what it got until the test lets it go.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from latentlab.errors import LatentlabError
from latentlab.train.lock import LOCK_NAME, RunLock

_FORK = multiprocessing.get_context("fork")


def _hold(folder: Path, conn: Connection) -> None:
    try:
        RunLock(folder).acquire()
    except LatentlabError as exc:
        conn.send(f"refused: {exc}")
    else:
        conn.send("held")
    conn.recv()  # hold until the test sends anything


class Holder:
    def __init__(self, folder: Path) -> None:
        self.conn, child = _FORK.Pipe()
        self.proc: BaseProcess = _FORK.Process(target=_hold, args=(folder, child), daemon=True)
        self.proc.start()

    def said(self) -> str:
        assert self.conn.poll(60), "the child did not answer"
        return str(self.conn.recv())

    def stop(self) -> None:
        self.conn.send("go")
        self.proc.join(60)
        assert self.proc.exitcode == 0


def _refusal(folder: Path) -> str:
    return (f"{folder}: another latentlab process is writing this run folder (lock {folder}/{LOCK_NAME}); "
            "wait for it or choose another --out")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Holder]:
    """A child process holding the lock on ``tmp_path / 'run'``."""
    holder = Holder(tmp_path / "run")
    assert holder.said() == "held"
    yield holder
    if holder.proc.is_alive():
        holder.proc.kill()
        holder.proc.join()


def test_a_held_lock_refuses_with_one_line_until_its_holder_exits(tmp_path: Path, holder: Holder) -> None:
    run = tmp_path / "run"
    with pytest.raises(LatentlabError) as info:
        RunLock(run).acquire()
    assert str(info.value) == _refusal(run)
    holder.stop()
    with RunLock(run) as lock:
        assert lock.held
    assert not lock.held


def test_a_sigkilled_holder_leaves_no_stale_lock(tmp_path: Path, holder: Holder) -> None:
    run = tmp_path / "run"
    with pytest.raises(LatentlabError, match="another latentlab process"):
        RunLock(run).acquire()
    assert holder.proc.pid is not None
    os.kill(holder.proc.pid, signal.SIGKILL)
    holder.proc.join(60)
    assert holder.proc.exitcode == -signal.SIGKILL
    assert (run / LOCK_NAME).is_file()  # the file stays; the lock went with the process
    with RunLock(run):
        pass


def test_of_processes_started_together_exactly_one_holds_it(tmp_path: Path) -> None:
    run = tmp_path / "a" / "b" / "run"  # made with its parents by whichever comes first
    holders = [Holder(run) for _ in range(4)]
    lines = [h.said() for h in holders]  # all answered while the winner still holds it
    for h in holders:
        h.stop()
    assert sorted(lines) == ["held"] + [f"refused: {_refusal(run)}"] * 3
    with RunLock(run):  # all gone: free again
        pass


def test_a_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    first = RunLock(tmp_path).acquire()
    with pytest.raises(LatentlabError, match="another latentlab process"):
        RunLock(tmp_path).acquire()
    first.release()
    first.release()  # a second release does nothing
    with RunLock(tmp_path):
        pass


def test_the_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    lock = RunLock(tmp_path)
    with pytest.raises(ValueError, match="boom"), lock:
        raise ValueError("boom")
    assert not lock.held
    with RunLock(tmp_path):
        pass


def test_acquiring_twice_is_a_programming_error(tmp_path: Path) -> None:
    with RunLock(tmp_path) as lock, pytest.raises(RuntimeError, match="already held"):
        lock.acquire()


def test_lock_file_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        with RunLock(tmp_path / "run"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "run" / LOCK_NAME).stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o750


def test_a_folder_that_cannot_be_one_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    with pytest.raises(LatentlabError, match=r"notes\.txt: exists and is not a folder$"):
        RunLock(tmp_path / "notes.txt").acquire()
    with pytest.raises(LatentlabError, match=r"notes\.txt/run: cannot create the run folder \(Not a directory\)$"):
        RunLock(tmp_path / "notes.txt" / "run").acquire()
