"""Image files -> pixels: PNG / JPEG / BMP decoding for the folder and tar readers (and web uploads).

Sizes are checked before anything is allocated: the width x height a header declares against
PIL's decompression-bomb limit and against what the file's bytes can hold, and the whole set
against the machine's memory. Only the PNG, JPEG and BMP decoders ever see a file, whatever its
name says. Decoding runs in a thread pool (PIL releases the GIL), reporting its progress through
:func:`latentlab.progress.report_decode` (quiet unless a caller asks). Inside :func:`decoding_into`
the set is decoded straight into a memory-mapped ``.npy`` file instead of memory.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from latentlab.errors import LatentlabError
from latentlab.progress import report_decode

__all__ = ["IMAGE_SUFFIXES", "Geometry", "Item", "decode_images", "decoding_into", "held_in", "labels_from_groups",
           "physical_memory"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")  # only these decoders ever see a file, whatever its name says
MAX_IMAGE_PIXELS = 89_478_485  # PIL's own decompression-bomb warning limit (Image.MAX_IMAGE_PIXELS)
MAX_PIXELS_PER_BYTE = 8 * 1100  # 1 bit per pixel at deflate's best ratio (~1032:1); JPEG/BMP pack less
MAX_IMAGE_FILE_BYTES = 512 << 20  # one image file (a tar member is read into memory whole)
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
REPORT_EVERY = 64  # progress is reported every 1% of the set, or every 64 images when that is fewer
COPY_BYTES = 64 << 20  # bytes copied at a time when a decoded file is rewritten as grayscale


class Item(NamedTuple):
    """One image to decode: ``name`` for messages, ``source`` a path or the file's bytes."""

    name: str
    source: Path | bytes


@dataclass(frozen=True)
class Geometry:
    """The geometric part of an input rule, applied while an image file is decoded.

    ``crop`` (top, left, height, width) -> ``center_crop`` (side of a centred square) ->
    ``resize`` (height, width), with the same order and integer arithmetic as
    :func:`latentlab.data.batches.to_model_input` applies to stored arrays. Without ``resize``
    the cropped pixels are kept as they are; with it, the cropped box is resampled (bilinear,
    antialiased) straight to the target size, after a JPEG's DCT-domain downscaling (draft) to
    the smallest scale that still holds the box at the target size.
    """

    crop: tuple[int, int, int, int] | None = None
    center_crop: int | None = None
    resize: tuple[int, int] | None = None

    def box(self, width: int, height: int, where: str = "") -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the pixels kept from a ``width`` x ``height`` image;
        ``where`` ("name: ") starts the message when they do not fit."""
        left, top, w, h = 0, 0, width, height
        if self.crop is not None:
            ct, cl, ch, cw = self.crop
            if ct + ch > height or cl + cw > width:
                raise LatentlabError(
                    f"{where}crop {ct},{cl},{ch},{cw}: does not fit images of {height}x{width} "
                    f"(needs top+height <= {height} and left+width <= {width})")
            left, top, w, h = cl, ct, cw, ch
        if self.center_crop is not None:
            s = self.center_crop
            if s > min(h, w):
                raise LatentlabError(f"{where}center_crop {s}: larger than the {h}x{w} image it crops")
            left, top, w, h = left + (w - s) // 2, top + (h - s) // 2, s, s
        return left, top, left + w, top + h

    def out_size(self, width: int, height: int, where: str = "") -> tuple[int, int]:
        """(height, width) of the pixels this geometry makes of a ``width`` x ``height`` image."""
        left, top, right, bottom = self.box(width, height, where)  # raises when a crop does not fit
        return self.resize if self.resize is not None else (bottom - top, right - left)


def labels_from_groups(groups: list[str | None], name: str) -> tuple[np.ndarray | None, list[str] | None]:
    """Sub-folder name per image (None: directly in the root) -> (labels (N,) int64, sorted names)."""
    if all(g is None for g in groups):
        return None, None
    if any(g is None for g in groups):
        raise LatentlabError(
            f"{name}: has images both directly inside and in sub-folders; expected either only "
            "sub-folders (one per label) or no sub-folders (no labels)")
    present = [g for g in groups if g is not None]  # all of them, checked above
    names = sorted(set(present))
    ids = {g: i for i, g in enumerate(names)}
    return np.array([ids[g] for g in present], dtype=np.int64), names


def _check_declared_size(file: Image.Image, nbytes: int, item: Item, name: str) -> None:
    """Refuse an image whose header claims more pixels than its file can hold, before decoding."""
    w, h = file.size
    if w * h > MAX_IMAGE_PIXELS:
        raise LatentlabError(f"{name}: {item.name} declares {w}x{h} pixels, over the {MAX_IMAGE_PIXELS:,} "
                             "pixel limit for one image (a decompression bomb?)")
    if w * h > nbytes * MAX_PIXELS_PER_BYTE:
        raise LatentlabError(f"{name}: {item.name} declares {w}x{h} pixels but is only {nbytes} bytes; "
                             "truncated or corrupt")


def _decode(item: Item, name: str, geometry: Geometry | None) -> tuple[np.ndarray, bool]:
    """-> (pixels (H, W) for grayscale or (H, W, 3), is_gray), cut and sized as ``geometry`` says."""
    if isinstance(item.source, Path):
        source: Path | io.BytesIO = item.source
        nbytes = item.source.stat().st_size
    else:
        source, nbytes = io.BytesIO(item.source), len(item.source)
    what = f"{name}: {item.name}: "
    try:
        with Image.open(source, formats=IMAGE_FORMATS) as file:
            _check_declared_size(file, nbytes, item, name)
            width, height = file.size
            box = geometry.box(width, height, what) if geometry else (0, 0, width, height)
            out_h, out_w = geometry.out_size(width, height, what) if geometry else (height, width)
            scale = 1.0
            if file.format == "JPEG" and geometry is not None and geometry.resize is not None:
                bw, bh = box[2] - box[0], box[3] - box[1]
                want = (math.ceil(width * out_w / bw), math.ceil(height * out_h / bh))
                drafted = file.draft(file.mode, want)  # DCT scaling: decode at >= the target size only
                if drafted is not None:
                    scale = width / drafted[1][2]
            gray = file.mode in _GRAY_MODES
            img = file.convert("L" if gray else "RGB")  # RGBA / P / CMYK -> RGB, LA / 1 -> L
            if (out_w, out_h) != (box[2] - box[0], box[3] - box[1]) or scale != 1.0:
                scaled = tuple(v / scale for v in box)
                img = img.resize((out_w, out_h), Image.Resampling.BILINEAR, box=scaled)
            elif box != (0, 0, width, height):
                img = img.crop(box)
            return np.asarray(img), gray
    except LatentlabError:
        raise
    except Image.DecompressionBombError:  # PIL's own check at open, for claims over twice the limit
        raise LatentlabError(f"{name}: {item.name} declares more than twice the {MAX_IMAGE_PIXELS:,} pixel "
                             "limit for one image (a decompression bomb?)") from None
    except Exception as e:  # noqa: BLE001 (PIL's decoders raise OSError, ValueError, struct.error, ... on corrupt files)
        raise LatentlabError(f"{name}: {item.name} is not a readable image ({type(e).__name__}: {e})") from None


def physical_memory() -> int | None:
    """Bytes of RAM, or None where the platform does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _check_fits_in_memory(n: int, h: int, w: int, name: str) -> None:
    needed, memory = n * h * w * 3, physical_memory()
    if memory is not None and needed > memory:
        raise LatentlabError(f"{name}: {n} images of {h}x{w} pixels need {needed / 2**30:.1f} GiB, more than "
                             f"this machine's {memory / 2**30:.1f} GiB; give a smaller resize (e.g. --resize 64)")


# ---------------------------------------------------------------------------- decoding into a file

_into: ContextVar[Path | None] = ContextVar("latentlab_decode_into", default=None)


@contextlib.contextmanager
def decoding_into(path: str | os.PathLike[str]) -> Iterator[None]:
    """While inside (in this thread), the next set :func:`decode_images` decodes is written as a
    uint8 ``.npy`` at ``path`` and returned memory-mapped: memory stays bounded, whatever the
    set's size, and no second copy is made. The caller owns the file (and removes it). Where the
    file cannot be made (no space), the set is decoded in memory with a warning; :func:`held_in`
    tells which happened."""
    token = _into.set(Path(path))
    try:
        yield
    finally:
        _into.reset(token)


def held_in(images: np.ndarray, path: str | os.PathLike[str]) -> bool:
    """Whether ``images`` is the memory map of the ``.npy`` file at ``path``."""
    filename = getattr(images, "filename", None)
    return isinstance(images, np.memmap) and filename is not None \
        and Path(filename).resolve() == Path(path).resolve()


def _file_array(path: Path, shape: tuple[int, int, int, int]) -> np.ndarray:
    """A writable memory-mapped uint8 ``.npy`` of ``shape`` at ``path``, its blocks allocated now:
    a full disk fails here (OSError), not as a SIGBUS while pixels are written through the map."""
    needed = math.prod(shape) + 4096
    if shutil.disk_usage(path.parent).free < needed:
        raise OSError(errno.ENOSPC, f"{needed / 2**30:.2f} GiB needed, less free")
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    if hasattr(os, "posix_fallocate"):
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            # a file system without fallocate: the free-space check above is all there is
        finally:
            os.close(fd)
    return out


def _gray_file(out: np.ndarray, path: Path) -> np.ndarray:
    """The decoded file ``path`` (N, H, W, 3), whose channels are equal, rewritten as (N, H, W, 1)."""
    n, h, w, _ = out.shape
    gray_path = path.with_name(path.name + ".gray")
    try:
        gray = np.lib.format.open_memmap(gray_path, mode="w+", dtype=np.uint8, shape=(n, h, w, 1))
        step = max(1, COPY_BYTES // (h * w * 3))
        for start in range(0, n, step):
            gray[start:start + step] = out[start:start + step, ..., :1]
        gray.flush()
        del gray
        os.replace(gray_path, path)  # the old file stays mapped by ``out`` until it is dropped
    except BaseException:
        gray_path.unlink(missing_ok=True)
        raise
    mapped: np.ndarray = np.load(path, mmap_mode="r+")
    return mapped


def _allocate(n: int, h: int, w: int, name: str) -> tuple[np.ndarray, Path | None]:
    """(the (N, H, W, 3) array decode_images fills, the file holding it or None for memory)."""
    into = _into.get()
    if into is not None:
        _into.set(None)  # one set per file: a second decode in the same block goes to memory
        try:
            return _file_array(into, (n, h, w, 3)), into
        except OSError as exc:
            warnings.warn(f"{name}: cannot write the decoded images to {into} ({exc.strerror or exc}); "
                          "decoding them in memory", stacklevel=3)
    _check_fits_in_memory(n, h, w, name)
    return np.empty((n, h, w, 3), dtype=np.uint8), None


def _finish(out: np.ndarray, all_gray: bool, file: Path | None, name: str) -> np.ndarray:
    """The decoded (N, H, W, 3) array as (N, H, W, 1) when every image was grayscale."""
    if file is None or not isinstance(out, np.memmap):
        return out[..., :1].copy() if all_gray else out
    out.flush()
    if not all_gray:
        return out
    try:
        return _gray_file(out, file)
    except OSError as exc:
        warnings.warn(f"{name}: cannot rewrite {file} as grayscale ({exc.strerror or exc}); "
                      "keeping the images in memory", stacklevel=3)
        return np.array(out[..., :1])


def decode_images(items: Iterable[Item], name: str, resize: tuple[int, int] | None = None, *,
                  geometry: Geometry | None = None, count: int | None = None,
                  rows: dict[str, int] | None = None) -> np.ndarray:
    """Decode images into one uint8 array (N, H, W, C) with a thread pool (PIL releases the GIL).

    All grayscale -> C=1; otherwise grayscale images are repeated to RGB. ``geometry`` (or
    ``resize`` alone) cuts and sizes each image while it is decoded; without either, all images
    must share one size. ``items`` may be a stream (``count`` says how many, ``rows`` maps each
    item's name to its row when the stream's order is not the rows' order): at most a few files
    per thread are held at once, so a large archive is held at the decoded size only (or, inside
    :func:`decoding_into`, not held at all: the pixels go to a memory-mapped file).
    Progress: :func:`latentlab.progress.report_decode` (0 first, then every few images, n last).
    """
    if geometry is None and resize is not None:
        geometry = Geometry(resize=resize)
    stream = iter(items)
    n = len(items) if count is None and isinstance(items, list) else count
    if n is None:
        raise ValueError("decode_images: give count for a stream of items")
    report_decode(0, n)
    first_item = next(stream)
    first, first_gray = _decode(first_item, name, geometry)
    h, w = first.shape[:2]
    out, file = _allocate(n, h, w, name)  # (N, H, W, 3)
    gray = np.zeros(n, dtype=bool)

    def work(k: int, item: Item) -> None:
        pixels, is_gray = (first, first_gray) if k == 0 else _decode(item, name, geometry)
        i = k if rows is None else rows[item.name]
        if pixels.shape[:2] != (h, w):
            raise LatentlabError(
                f"{name}: images of different sizes: {first_item.name} is {h}x{w}, {item.name} is "
                f"{pixels.shape[0]}x{pixels.shape[1]} (HxW); give a resize (e.g. --resize 64) to load them")
        out[i] = pixels[..., None] if is_gray else pixels
        gray[i] = is_gray

    workers = min(8, os.cpu_count() or 1, n)
    pool = ThreadPoolExecutor(max_workers=workers)
    pending: list[Future[None]] = []
    seen = done = 1
    step = max(1, min(REPORT_EVERY, n // 100))

    def finished(future: Future[None]) -> None:
        nonlocal done
        future.result()
        done += 1
        if done % step == 0 and done < n:
            report_decode(done, n)

    try:
        work(0, first_item)
        for k, item in enumerate(stream, 1):
            if k >= n:
                raise LatentlabError(f"{name}: holds more images than the {n} counted; changed while read?")
            pending.append(pool.submit(work, k, item))
            seen += 1
            if len(pending) >= 4 * workers:  # bounded: the stream is not read ahead of the decoders
                finished(pending.pop(0))
        for future in pending:
            finished(future)
        if seen != n:
            raise LatentlabError(f"{name}: holds {seen} images, not the {n} counted; changed while read?")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on the first error, skip the rest
    report_decode(n, n)
    return _finish(out, bool(gray.all()), file, name)
