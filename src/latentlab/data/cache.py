"""Decoded image sets, cached once as memory-mapped uint8 arrays.

Decoding a JPEG set (the CelebA subset: 4,800 files for its train split) costs seconds to
minutes each time; the decoded set at the model's size is small. So the first command that
decodes a ``folder:``, ``tar:`` or ``celeba:`` source under a given geometry writes
``<cache>/prepared/<key>.npy`` (the uint8 (N, H, W, C) array) and ``<key>.json`` (labels, shape
and a BLAKE2b checksum of the array file); later commands memory-map it after checking it.

The key is a SHA-256 of what the pixels depend on: the source kind, its resolved path and
fragment, the geometry applied while decoding, this format's version, and the size and
modification time of every file read (for a folder: of each image file in it). A changed file
gives a new key. A cold set is decoded straight into the entry's array file
(:func:`latentlab.data.decode.decoding_into`), so it is never held in memory as a whole. A cache
entry whose array does not match its checksum, shape or size is never used: it is decoded again
and rewritten, with a warning. ``LATENTLAB_NO_CACHE=1`` (the CLI's ``--no-cache``) skips the
cache; ``<cache>`` is ``$LATENTLAB_CACHE`` or ``~/.cache/latentlab``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

__all__ = ["CACHE_VERSION", "cache_enabled", "cached", "files_fingerprint"]

CACHE_VERSION = 1
CHUNK = 8 << 20  # bytes hashed at a time


def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir``, else ``$LATENTLAB_CACHE``, else ``~/.cache/latentlab``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("LATENTLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "latentlab"


def cache_enabled() -> bool:
    return os.environ.get("LATENTLAB_NO_CACHE", "").lower() not in ("1", "true", "yes")


def files_fingerprint(path: Path) -> list[tuple[str, int, int]]:
    """(relative name, size, mtime_ns) of ``path`` (a file) or of every file below it (a folder)."""
    if path.is_file():
        st = path.stat()
        return [(path.name, st.st_size, st.st_mtime_ns)]
    out = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        st = file.stat()
        out.append((str(file.relative_to(path)), st.st_size, st.st_mtime_ns))
    return out


def _checksum(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fp:
        while block := fp.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _key(parts: dict[str, Any], inputs: list[Path]) -> str:
    document = {"version": CACHE_VERSION, **parts, "files": [files_fingerprint(p) for p in inputs]}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _read(array_path: Path, meta_path: Path, spec: str) -> ImageSet:
    """The cached set, memory-mapped; ValueError naming what is wrong when it is damaged."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable index ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION:
        raise ValueError("unknown index format")
    if _checksum(array_path) != meta.get("checksum"):
        raise ValueError("checksum mismatch")
    try:
        images = np.load(array_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable array ({exc})") from None
    if images.dtype != np.uint8 or list(images.shape) != meta.get("shape"):
        raise ValueError(f"array of {images.dtype} {images.shape}, index says uint8 {meta.get('shape')}")
    labels = meta.get("labels")
    return ImageSet(images=images, labels=None if labels is None else np.asarray(labels, dtype=np.int64),
                    label_names=meta.get("label_names"), spec=spec)


def _write_meta(data: ImageSet, array_path: Path, meta_path: Path) -> None:
    from latentlab.io import write_json

    write_json(meta_path, {"version": CACHE_VERSION, "spec": data.spec, "shape": list(data.images.shape),
                           "checksum": _checksum(array_path),
                           "labels": None if data.labels is None else data.labels.tolist(),
                           "label_names": data.label_names})


def cached(parts: dict[str, Any], inputs: list[Path], spec: str, decode: Callable[[], ImageSet],
           cache_dir: Path | None = None) -> ImageSet:
    """``decode()``'s set, from the cache when an intact entry for ``parts`` and the current state
    of the ``inputs`` files exists, else decoded and stored (best effort: a cache that cannot be
    written only warns)."""
    if not cache_enabled():
        return decode()
    folder = cache_root(cache_dir) / "prepared"
    key = _key(parts, inputs)
    array_path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    if array_path.is_file() and meta_path.is_file():
        try:
            return _read(array_path, meta_path, spec)
        except ValueError as why:
            warnings.warn(f"{array_path}: cached decoded images of {spec} are damaged ({why}); "
                          "decoding them again", stacklevel=3)
    try:
        _decode_stored(decode, array_path, meta_path)
    except _NotStoredError as why:
        warnings.warn(f"{folder}: cannot cache the decoded images of {spec} ({why.reason})", stacklevel=3)
        return why.data if why.data is not None else decode()
    return _read(array_path, meta_path, spec)  # memory-mapped: the decoded copy is released


class _NotStoredError(Exception):
    """The cache entry could not be written; ``data``: the set when it was decoded before that."""

    def __init__(self, reason: Exception, data: ImageSet | None) -> None:
        self.reason, self.data = reason, data


def _decode_stored(decode: Callable[[], ImageSet], array_path: Path, meta_path: Path) -> None:
    """``decode()`` into ``array_path`` (through a temporary renamed at the end), then its index.
    The source's own errors go through; the cache's become :class:`_NotStoredError`."""
    from latentlab.data.decode import decoding_into, held_in
    from latentlab.io import atomic_path

    stack = contextlib.ExitStack()
    try:
        tmp = stack.enter_context(atomic_path(array_path))
    except (OSError, LatentlabError) as exc:
        raise _NotStoredError(exc, None) from None
    data = None
    try:
        with stack:
            with decoding_into(tmp):
                data = decode()
            if not held_in(data.images, tmp):  # decoded in memory (no room for the file there)
                with open(tmp, "wb") as fp:
                    np.lib.format.write_array(fp, np.ascontiguousarray(data.images), allow_pickle=False)
        _write_meta(data, array_path, meta_path)
    except (OSError, LatentlabError) as exc:
        if data is None:
            raise  # decoding failed: the source's error
        raise _NotStoredError(exc, data) from None
