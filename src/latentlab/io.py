"""Crash-safe file writes: write to a temporary name in the same folder, flush, fsync, rename.

A reader never sees half a file: either the old version or the new one. Errors a user can
cause (read-only folder, full disk) become one-line :class:`LatentlabError` messages, and the
file that was there before stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from latentlab.errors import LatentlabError


def _explain(path: Path, exc: OSError) -> LatentlabError:
    reason = {
        errno.ENOSPC: "no space left on the device",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EDQUOT: "disk quota exceeded",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return LatentlabError(f"{path}: cannot write ({reason}); earlier files were left as they were")


def _create_temporary(path: Path) -> tuple[Path, int]:
    """Create an empty ``.NAME.XXXXXXXX.tmp`` beside ``path``; returns it and its permission bits.

    ``os.open(..., 0o666)`` lets the kernel apply the umask, as for any new file: ``0o666 & ~umask``
    (0644 under the usual 022; ``tempfile.mkstemp`` would give 0600). Nothing reads or changes the
    umask here: the ``os.umask(0)``-then-restore idiom briefly zeroes a process-wide setting, so a
    file another thread created in that instant would come out world-writable. A umask set after
    import is honoured, and so is a folder's default ACL.
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            return tmp, stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(path))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The final file has the mode a new file gets (``0o666 & ~umask``), whatever the writer did.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, mode = _create_temporary(path)
    except OSError as exc:
        raise _explain(path, exc) from None
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer may have closed it: flush to disk before renaming
            if stat.S_IMODE(os.fstat(f.fileno()).st_mode) != mode:  # it replaced it: safetensors
                os.fchmod(f.fileno(), mode)  # writes its own 0600 temporary and renames that onto ours
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _explain(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ours (8 hex characters; [a-z0-9_] also matches mkstemp's, from older versions), and the one
# safetensors' save_file makes beside the file it writes (Rust tempfile: ".tmp" + 6 characters)
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp|\.tmp[A-Za-z0-9]{6}")


def is_temporary(path: Path) -> bool:
    """A temporary name :func:`atomic_path` makes (``.NAME.XXXXXXXX.tmp``), or a writer inside it
    (safetensors: ``.tmpXXXXXX``)."""
    return _TEMPORARY.fullmatch(path.name) is not None


def remove_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder`` (not below it); returns them."""
    removed = [p for p in Path(folder).iterdir() if p.is_file() and is_temporary(p)]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise LatentlabError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LatentlabError(f"{path}: not a valid {what} ({exc.__class__.__name__})") from None


def save_figure(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format from the final name's extension)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs))
