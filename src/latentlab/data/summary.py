"""What a data source holds (``latentlab data SPEC``) and its conversion to the course's ``.npy``.

:func:`summarize` reads a source as every command does (:func:`latentlab.data.sources.load_source`:
decoded image files go through the decoded-set cache) and reports count, image shape, dtype,
value range and mean (over every pixel, read in chunks), label counts and the range of known
factors. A tar of JPEGs is summarised from its listing and image headers, with value range and
mean from a sample of decoded images (:func:`tar_summary`), unless every pixel is asked for.
:func:`sample_grid` tiles a few images into one picture.
:func:`write_npy` writes any source as uint8 (N, H, W, C) ``.npy`` in chunks through a temporary
file renamed at the end, calling ``progress(done, total)`` after each chunk. :func:`convert` reads a
spec and writes it so, never holding the whole set in memory: image files are decoded into a
memory-mapped file (the decoded-set cache's, or with the cache off one beside the target that
becomes the target).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

__all__ = ["DataSummary", "convert", "npy_target", "sample_grid", "summarize", "write_npy"]

CHUNK = 1024  # images read at a time


@dataclass
class DataSummary:
    spec: str
    count: int
    shape: tuple[int, int, int]  # (H, W, C) as stored
    dtype: str
    value_range: tuple[int, int]
    mean: list[float]  # per channel, 0..255
    labels: dict[str, int] = field(default_factory=dict)  # label name -> images
    factors: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # name -> (min, mean, max)
    sampled: int | None = None  # value range and mean from this many images (None: from all of them)


def _chunks(n: int, size: int = CHUNK) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def summarize_set(data: ImageSet) -> DataSummary:
    """The summary of a loaded set (every pixel is read once, a chunk at a time)."""
    images = data.images
    n, h, w, c = images.shape
    lo, hi, total = 255, 0, np.zeros(c, dtype=np.float64)
    for part in _chunks(n):
        block = np.asarray(images[part])
        lo, hi = min(lo, int(block.min())), max(hi, int(block.max()))
        total += block.sum(axis=0, dtype=np.uint32).reshape(-1, c).sum(0, dtype=np.float64)  # contiguous adds: fast
    mean = (total / (n * h * w)).tolist()
    labels: dict[str, int] = {}
    if data.labels is not None:
        counts = Counter(data.labels.tolist())
        names = data.label_names or []
        labels = {(names[k] if 0 <= k < len(names) else str(k)): v for k, v in sorted(counts.items())}
    factors = {k: (float(v.min()), float(v.mean()), float(v.max())) for k, v in data.factors.items()}
    return DataSummary(data.spec, n, (h, w, c), str(images.dtype), (lo, hi), mean, labels, factors)


def summarize(spec: str, *, headers: bool = True) -> tuple[DataSummary, ImageSet]:
    """The summary of the source ``spec`` and the set it was made from (for :func:`sample_grid`).

    With ``headers``, a tar of images (``tar:``, ``celeba:`` tar) is summarised from its headers
    and a sample (:func:`tar_summary`): seconds, where decoding all of it takes tens."""
    from latentlab.data.sources import load_source

    if headers:
        quick = tar_summary(spec)
        if quick is not None:
            return quick
    data = load_source(spec)
    return summarize_set(data), data


def sample_grid(data: ImageSet, n: int = 64, seed: int = 0) -> np.ndarray:
    """Up to ``n`` images (drawn without replacement, in index order) tiled 8 wide: (rows*(H+1)-1,
    cols*(W+1)-1, 3) uint8 with white lines between them."""
    if n < 1:
        raise LatentlabError(f"--n {n}: expected a positive number of sample images")
    count = min(n, len(data))
    rows = np.sort(np.random.default_rng(seed).choice(len(data), size=count, replace=False))
    tiles = np.asarray(data.images[rows])
    if tiles.shape[-1] == 1:
        tiles = np.repeat(tiles, 3, axis=-1)
    cols = min(8, count)
    grid_rows = -(-count // cols)
    _, h, w, _ = tiles.shape
    out = np.full((grid_rows * (h + 1) - 1, cols * (w + 1) - 1, 3), 255, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, col = divmod(k, cols)
        out[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = tile
    return out


def npy_target(text: str) -> Path:
    """``npy:PATH`` (or a PATH ending in .npy) -> PATH."""
    path = text[4:] if text.startswith("npy:") else text
    if not path or not path.lower().endswith(".npy"):
        raise LatentlabError(f"--to {text}: expected npy:PATH with PATH ending in .npy")
    return Path(path).expanduser()


def write_npy(data: ImageSet, path: str | os.PathLike[str], *, resize: tuple[int, int] | None = None,
              progress: Callable[[int, int], None] | None = None) -> Path:
    """``data`` as a uint8 (N, H, W, C) ``.npy`` at ``path`` (``resize``: each chunk resized to
    (height, width) as :func:`latentlab.data.batches.resize_uint8` does); atomic."""
    from latentlab.data.batches import resize_uint8
    from latentlab.io import atomic_path

    n, h, w, c = data.images.shape
    if resize is not None:
        h, w = resize
    with atomic_path(Path(path)) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, h, w, c))
        for part in _chunks(n):
            block = np.asarray(data.images[part])
            if resize is not None and block.shape[1:3] != resize:
                block = resize_uint8(block, resize)
            out[part] = block
            if progress is not None:
                progress(part.stop, n)
        out.flush()
        del out
    return Path(path)


def convert(spec: str, path: str | os.PathLike[str], *, resize: tuple[int, int] | None = None,
            progress: Callable[[int, int], None] | None = None) -> tuple[DataSummary, ImageSet]:
    """``spec`` written as a uint8 (N, H, W, C) ``.npy`` at ``path`` (:func:`write_npy`: atomic,
    ``resize`` per chunk, ``progress`` while writing); returns the source's summary and set.

    Memory stays bounded. Image files (``folder:``, ``tar:``, ``celeba:``) are read as every
    command reads them, decoded into the decoded-set cache's memory-mapped file; with the cache
    off (``LATENTLAB_NO_CACHE=1``) they are decoded into a file beside ``path``, which becomes
    ``path`` when no ``resize`` changes the size (one pass, nothing else written)."""
    from latentlab.data.cache import cache_enabled
    from latentlab.data.decode import decoding_into, held_in
    from latentlab.data.sources import DECODED, load_source, parse_spec
    from latentlab.io import atomic_path

    target = Path(path)
    if parse_spec(spec).kind not in DECODED or cache_enabled():
        summary, data = summarize(spec, headers=False)
        write_npy(data, target, resize=resize, progress=progress)
        return summary, data
    with _scratch_beside(target) as scratch:
        with decoding_into(scratch):
            data = load_source(spec)
        summary = summarize_set(data)
        if held_in(data.images, scratch) and resize in (None, data.images.shape[1:3]):
            with atomic_path(target) as tmp:
                os.replace(scratch, tmp)  # the decoded file is the output
        else:
            write_npy(data, target, resize=resize, progress=progress)
    return summary, data


@contextlib.contextmanager
def _scratch_beside(path: Path) -> Iterator[Path]:
    """An empty temporary file beside ``path`` (the same file system: it can be renamed onto it),
    removed afterwards unless it was renamed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".decoding.tmp")
    except OSError as exc:
        raise LatentlabError(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


# ---------------------------------------------------------------- a tar of JPEGs, from its headers

SAMPLE = 256  # images decoded for the value range of a header-only summary


def tar_summary(spec: str, sample: int = SAMPLE, seed: int = 0) -> tuple[DataSummary, ImageSet] | None:
    """The summary of a ``tar:`` source or a ``celeba:`` tar without decoding every image: count,
    labels and each image's size (after the source's default geometry) from the archive listing
    and the image headers; value range and mean from ``sample`` images decoded as the source
    decodes them (the returned set holds those). None for other sources."""
    import io

    from PIL import Image

    from latentlab.data import celeba, readers
    from latentlab.data.decode import _GRAY_MODES, Geometry, Item, decode_images, labels_from_groups
    from latentlab.data.sources import parse_spec

    parsed = parse_spec(spec)
    path = parsed.path
    is_tar = path.is_file() and path.name.lower().endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))
    if parsed.kind not in ("tar", "celeba") or not is_tar:
        return None
    geometry: Geometry | None = None
    prefix = (parsed.fragment or "").strip("/").removeprefix("./")
    if parsed.kind == "celeba":
        prefix = f"Datasets/{celeba.SUBSET_FOLDERS[celeba.split_name(parsed.fragment, spec)]}"
        geometry = celeba.DEFAULT_GEOMETRY
    with readers._reading_tar(spec):  # the reader's own listing and errors
        members = readers._tar_images(path, spec, prefix)
        order = sorted(members, key=lambda m: Path(m).parts)  # the rows read_tar gives them
        rows = {m: i for i, m in enumerate(order)}
        labels, names = labels_from_groups([members[m] for m in order], spec)
        picked = set(np.random.default_rng(seed).choice(len(order), size=min(sample, len(order)), replace=False))
        sizes: list[tuple[int, int]] = [(0, 0)] * len(order)
        gray = np.zeros(len(order), dtype=bool)
        kept: dict[int, Item] = {}
        for item in readers._tar_stream(path, rows):
            assert isinstance(item.source, bytes)
            i = rows[item.name]
            try:
                with Image.open(io.BytesIO(item.source)) as img:  # the header only
                    w, h = img.size
                    gray[i] = img.mode in _GRAY_MODES
            except (OSError, ValueError) as exc:
                raise LatentlabError(f"{spec}: {item.name} is not a readable image ({exc})") from None
            sizes[i] = geometry.out_size(w, h, f"{spec}: {item.name}: ") if geometry else (h, w)
            if i in picked:
                kept[i] = item
    distinct = sorted(set(sizes))
    if len(distinct) > 1:
        raise LatentlabError(f"{spec}: images of {len(distinct)} sizes (e.g. {distinct[0]} and {distinct[-1]}, "
                             "H x W); a model needs one size: give the input rule a resize (--resize 64)")
    chosen = sorted(kept)
    pixels = decode_images([kept[i] for i in chosen], spec, geometry=geometry)
    if not gray.all() and pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    drawn = ImageSet(images=pixels, labels=None if labels is None else labels[chosen], label_names=names,
                     spec=spec)
    found = summarize_set(drawn)
    h, w = distinct[0]
    found.count, found.shape = len(order), (h, w, 1 if gray.all() else 3)
    found.sampled = len(chosen)
    if labels is not None:
        counts = Counter(labels.tolist())
        found.labels = {(names or [])[k]: v for k, v in sorted(counts.items())}
    return found, drawn
