"""Image files -> pixels: PNG / JPEG / BMP decoding for the folder and tar readers (and web uploads).

Sizes are checked before anything is allocated: the width x height a header declares against
PIL's decompression-bomb limit and against what the file's bytes can hold, and the whole set
against the machine's memory. Only the PNG, JPEG and BMP decoders ever see a file, whatever its
name says. Decoding runs in a thread pool (PIL releases the GIL).
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from latentlab.errors import LatentlabError

__all__ = ["IMAGE_SUFFIXES", "Item", "decode_images", "labels_from_groups", "physical_memory"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")  # only these decoders ever see a file, whatever its name says
MAX_IMAGE_PIXELS = 89_478_485  # PIL's own decompression-bomb warning limit (Image.MAX_IMAGE_PIXELS)
MAX_PIXELS_PER_BYTE = 8 * 1100  # 1 bit per pixel at deflate's best ratio (~1032:1); JPEG/BMP pack less
MAX_IMAGE_FILE_BYTES = 512 << 20  # one image file (a tar member is read into memory whole)
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


class Item(NamedTuple):
    """One image to decode: ``name`` for messages, ``source`` a path or the file's bytes."""

    name: str
    source: Path | bytes


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


def _decode(item: Item, name: str, resize: tuple[int, int] | None) -> tuple[np.ndarray, bool]:
    """-> (pixels (H, W) for grayscale or (H, W, 3), is_gray). JPEGs decode at reduced scale via draft."""
    if isinstance(item.source, Path):
        source: Path | io.BytesIO = item.source
        nbytes = item.source.stat().st_size
    else:
        source, nbytes = io.BytesIO(item.source), len(item.source)
    try:
        with Image.open(source, formats=IMAGE_FORMATS) as file:
            _check_declared_size(file, nbytes, item, name)
            if resize is not None and file.format == "JPEG":
                file.draft(file.mode, (resize[1], resize[0]))  # DCT scaling: decode >= the target size only
            gray = file.mode in _GRAY_MODES
            img = file.convert("L" if gray else "RGB")  # RGBA / P / CMYK -> RGB, LA / 1 -> L
            if resize is not None and img.size != (resize[1], resize[0]):
                img = img.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
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


def decode_images(items: list[Item], name: str, resize: tuple[int, int] | None = None) -> np.ndarray:
    """Decode images into one uint8 array (N, H, W, C) with a thread pool (PIL releases the GIL).

    All grayscale -> C=1; otherwise grayscale images are repeated to RGB. Without ``resize`` all
    images must share one size; with it each is resized (height, width) while decoding.
    """
    first, first_gray = _decode(items[0], name, resize)
    h, w = first.shape[:2]
    _check_fits_in_memory(len(items), h, w, name)
    out = np.empty((len(items), h, w, 3), dtype=np.uint8)  # (N, H, W, 3)
    gray = np.zeros(len(items), dtype=bool)

    def work(i: int) -> None:
        pixels, is_gray = (first, first_gray) if i == 0 else _decode(items[i], name, resize)
        if pixels.shape[:2] != (h, w):
            raise LatentlabError(
                f"{name}: images of different sizes: {items[0].name} is {h}x{w}, {items[i].name} is "
                f"{pixels.shape[0]}x{pixels.shape[1]} (HxW); give a resize (e.g. --resize 64) to load them")
        out[i] = pixels[..., None] if is_gray else pixels
        gray[i] = is_gray

    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1, len(items)))
    try:
        for _ in pool.map(work, range(len(items))):
            pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on the first error, skip the rest
    return out[..., :1].copy() if gray.all() else out
