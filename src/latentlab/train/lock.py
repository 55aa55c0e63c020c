"""One writer per run folder: an exclusive ``flock`` on ``<run folder>/.lock``.

Two ``latentlab train`` processes on the same ``--out`` would interleave checkpoints, metrics and
weights. Each takes :class:`RunLock` first; the second is refused with a one-line
:class:`LatentlabError` instead of waiting. The kernel drops an ``flock`` when the last file
descriptor of it closes, however the process ends (exit, exception, SIGKILL), so a killed run
leaves no stale lock and can be resumed at once.

The ``.lock`` file is empty and stays in the folder after release: deleting it would let a
process that has it open hold a lock on a file that no longer has that name, while a third
creates a new ``.lock`` and locks that, both "holding" it. So code that empties or tests a run
folder must leave :data:`LOCK_NAME` alone.

Limits of ``flock``: it is advisory (it stops only processes that take the lock); if the holder
is killed, children it forked while holding it (e.g. DataLoader workers) keep it until they exit
too (they notice a dead parent within seconds); on NFS, Linux emulates it with byte-range locks,
which work on NFSv4 but not on every server.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from latentlab.errors import LatentlabError

LOCK_NAME = ".lock"


class RunLock:
    """Hold ``folder/.lock`` exclusively, as a context manager or by :meth:`acquire` / :meth:`release`.

    The lock belongs to this object: a second ``RunLock`` on the same folder is refused even in
    the same process.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock (creating the folder, with parents, if missing) or raise LatentlabError."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: this RunLock is already held")
        if self.folder.exists() and not self.folder.is_dir():
            raise LatentlabError(f"{self.folder}: exists and is not a folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the same message as runs.prepare_out_dir
            raise LatentlabError(f"{self.folder}: cannot create the run folder ({exc.strerror})") from None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # not inherited by exec'd children
        except OSError as exc:
            raise LatentlabError(f"{self.path}: cannot open the run folder's lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LatentlabError(
                f"{self.folder}: another latentlab process is writing this run folder "
                f"(lock {self.folder}/{LOCK_NAME}); wait for it or choose another --out") from None
        except OSError as exc:  # e.g. ENOLCK on a file system without locks
            os.close(fd)
            raise LatentlabError(f"{self.path}: cannot lock the run folder ({exc.strerror})") from None
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the lock go (nothing happens if it is not held); the ``.lock`` file stays."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)  # also for forked children that share the descriptor
            finally:
                os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunLock({str(self.folder)!r}, held={self.held})"
