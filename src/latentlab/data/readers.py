"""Readers: one file format each -> :class:`ImageSet` (uint8, (N, H, W, C)).

* ``read_npy``    NumPy ``.npy``, memory-mapped; the header is checked against the file size first.
* ``read_npz``    NumPy ``.npz`` with ``x``/``images`` (or a named key) and optional ``y``/``labels``.
* ``read_idx``    MNIST-style IDX files (``.gz`` or plain): a folder of the four files, or one file.
* ``read_folder`` PNG/JPEG/BMP files; sub-folders are labels.
* ``read_tar``    images inside a (compressed) tar; the first directory below FOLDER is the label.

Images in folders and tars are decoded by :mod:`latentlab.data.decode` (size checks first).
``name`` is how errors refer to the input (the data spec as the user wrote it); every error is
one :class:`LatentlabError` line naming the file and what was expected.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from latentlab.data import decode
from latentlab.data.decode import IMAGE_SUFFIXES, Item, decode_images, labels_from_groups
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

__all__ = ["Item", "decode_images", "read_folder", "read_idx", "read_idx_file", "read_npy", "read_npz", "read_tar"]

NPY_EXPECTED = "uint8 array of shape (N, H, W, 3), (N, H, W, 1) or (N, H, W)"


# ---------------------------------------------------------------------------- npy / npz

def _require_file(path: Path, name: str) -> None:
    if not path.exists():
        raise LatentlabError(f"{name}: file not found")
    if not path.is_file():
        raise LatentlabError(f"{name}: is not a file")


NPY_VERSIONS = ((1, 0), (2, 0), (3, 0))  # the .npy format versions numpy writes and reads
NPY_MAX_HEADER = 10_000  # bytes; numpy's own default limit (``max_header_size``)


def _npy_header_error(name: str, why: str) -> LatentlabError:
    return LatentlabError(f"{name}: not a NumPy .npy array ({why}); expected {NPY_EXPECTED}")


_NUMPY_REASONS = ("Cannot parse header", "Header is not a dictionary", "Header does not contain the correct keys",
                  "shape is not valid", "fortran_order is not a valid bool", "descr is not a valid dtype descriptor")


def _numpy_reason(error: ValueError) -> str:
    """numpy's own reason, first line, shortened ('shape is not valid: (2, 3.0)'); 'unreadable
    header' for the ValueErrors it lets through from ``ast`` or ``np.dtype`` (their text names no field)."""
    why = str(error).split("\n")[0]
    if not why.startswith(_NUMPY_REASONS):
        return "unreadable header"
    why = why[0].lower() + why[1:]  # 'Cannot parse header: ...' -> 'cannot parse header: ...'
    return why if len(why) <= 80 else why[:77] + "..."


def _parse_npy_header(header: bytes, version: tuple[int, int], name: str) -> tuple[tuple[int, ...], np.dtype]:
    """The length field and header dict of a .npy file -> (shape, dtype).

    numpy.lib.format parses it (a Python literal, never evaluated as code) and checks its keys,
    shape, fortran_order and descr; refused here too are shapes numpy accepts but cannot index.
    """
    if version == (3, 0):
        try:
            header[4:].decode("utf-8")
        except UnicodeDecodeError:
            raise _npy_header_error(name, "header is not UTF-8 text") from None
    # numpy's public readers are for versions 1.0 and 2.0; 3.0 is 2.0 with a UTF-8 header, which
    # 2.0's Latin-1 reading only changes in non-ASCII field names (structured dtypes, refused later)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, _, dtype = read(io.BytesIO(header), max_header_size=NPY_MAX_HEADER)
    except ValueError as e:  # numpy's error for every malformed header
        raise _npy_header_error(name, _numpy_reason(e)) from None
    # descr_to_dtype lets KeyError, IndexError, ... through on odd descrs; deep nesting: RecursionError
    except Exception:  # noqa: BLE001 (numpy's other errors on hostile headers, listed above)
        raise _npy_header_error(name, "unreadable header") from None
    if not all(type(s) is int and s >= 0 for s in shape) \
            or math.prod(max(s, 1) for s in shape) > np.iinfo(np.intp).max:  # sizes numpy cannot even index
        raise _npy_header_error(name, f"bad shape {shape!r} in the header")
    return shape, dtype


def _read_npy_header(fp: IO[bytes], data_bytes: int, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Read and validate a .npy header (format versions 1-3) from ``fp``, which holds ``data_bytes``.

    Its length is checked before it is read (numpy reads all it declares, then checks), and the
    shape it declares is checked against the bytes left in the file before numpy allocates
    anything: a 100-byte file claiming 10^12 elements fails here, at once.
    """
    start = fp.tell()
    try:
        version = np.lib.format.read_magic(fp)
    except ValueError:
        raise _npy_header_error(name, "no .npy magic number") from None
    if version not in NPY_VERSIONS:
        raise _npy_header_error(name, f"format version {version[0]}.{version[1]}; expected 1.0, 2.0 or 3.0")
    width = 2 if version == (1, 0) else 4  # bytes of the little-endian header length
    size_field = fp.read(width)
    if len(size_field) != width:
        raise _npy_header_error(name, "truncated header")
    length = int.from_bytes(size_field, "little")
    if length > NPY_MAX_HEADER:
        raise _npy_header_error(name, f"header of {length} bytes, over the {NPY_MAX_HEADER} limit")
    raw = fp.read(length)
    if len(raw) != length:
        raise _npy_header_error(name, "truncated header")
    shape, dtype = _parse_npy_header(size_field + raw, version, name)
    if dtype.hasobject:
        raise LatentlabError(f"{name}: holds Python objects (pickle), refused; expected {NPY_EXPECTED}")
    payload = data_bytes - (fp.tell() - start)
    needed = math.prod(shape) * dtype.itemsize
    if needed > payload:
        raise LatentlabError(
            f"{name}: header declares shape {shape} {dtype} ({needed} bytes) but the file holds only "
            f"{payload} bytes of data; the file is truncated or corrupt")
    return shape, dtype


def _check_images_header(shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    """Refuse wrong ranks / dtypes before any data is read."""
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
        raise LatentlabError(f"{name}: array has shape {shape}; expected {NPY_EXPECTED}")
    if dtype.kind not in "uif" and dtype != np.bool_:
        raise LatentlabError(f"{name}: array has dtype {dtype}; expected {NPY_EXPECTED}")


def as_uint8_images(arr: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W[, C]) array -> uint8 (N, H, W, C); a memmap stays a memmap when already uint8.

    Integer or float arrays whose values are all whole numbers in 0..255 are converted (copied).
    """
    _check_images_header(arr.shape, arr.dtype, name)
    if arr.ndim == 3:
        arr = arr[..., None]  # (N, H, W, 1); a view, so a memmap stays mapped
    if arr.dtype == np.uint8:
        return arr
    values = np.asarray(arr)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise LatentlabError(f"{name}: holds NaN or infinite values; expected {NPY_EXPECTED}")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise LatentlabError(
            f"{name}: {values.dtype} values outside 0..255 (min {values.min()}, max {values.max()}); "
            f"expected {NPY_EXPECTED}")
    if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        raise LatentlabError(
            f"{name}: float values that are not whole numbers 0..255 (e.g. images scaled to [0, 1]); "
            f"expected {NPY_EXPECTED}")
    return values.astype(np.uint8)


def read_npy(path: Path, name: str) -> ImageSet:
    """Memory-map a .npy file of images; its header is validated against the file size first."""
    _require_file(path, name)
    with open(path, "rb") as fp:
        shape, dtype = _read_npy_header(fp, path.stat().st_size, name)
    _check_images_header(shape, dtype, name)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise LatentlabError(f"{name}: cannot read the .npy file ({e}); expected {NPY_EXPECTED}") from None
    return ImageSet(images=as_uint8_images(arr, name), spec=name)


def _as_labels(arr: np.ndarray, n: int, name: str) -> np.ndarray:
    if arr.ndim != 1 or len(arr) != n or arr.dtype.kind not in "iub":
        raise LatentlabError(
            f"{name}: labels have shape {arr.shape} {arr.dtype}; expected {n} integers (one per image)")
    if len(arr) and arr.min() < 0:
        raise LatentlabError(f"{name}: negative label {arr.min()}; expected class ids 0, 1, 2, ...")
    return arr.astype(np.int64)


MAX_DEFLATE_RATIO = 1100  # deflate cannot compress better than ~1032:1
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
               NotImplementedError,  # an unknown compression method or zip feature
               RuntimeError)  # an encrypted member


def _npz_members(zf: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """The ``.npy`` members by key, after checking each one's declared size and header."""
    members = {i.filename.removesuffix(".npy"): i for i in zf.infolist() if i.filename.endswith(".npy")}
    for key, info in members.items():
        what = f"{name} array '{key}'"
        if info.flag_bits & 0x1:
            raise LatentlabError(f"{what}: is encrypted; expected a plain .npz as numpy.savez writes it")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise LatentlabError(f"{what}: zip compression method {info.compress_type}; expected stored or "
                                 "deflate (numpy.savez / savez_compressed)")
        ratio = MAX_DEFLATE_RATIO if info.compress_type == zipfile.ZIP_DEFLATED else 1
        if info.file_size > info.compress_size * ratio:
            raise LatentlabError(f"{what}: declares {info.file_size} bytes but holds {info.compress_size} "
                                 "compressed bytes; the archive is corrupt")
        with zf.open(info) as fp:  # the header, before numpy allocates anything
            _read_npy_header(fp, info.file_size, what)
    return members


def _npz_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def read_npz(path: Path, name: str, key: str | None = None) -> ImageSet:
    """Images from ``key`` (default ``x`` or ``images``), labels from ``y`` / ``labels`` if present.

    An optional string array ``label_names`` names the classes; an optional (N, K) array
    ``factors`` with K strings ``factor_names`` gives known factor columns (``ImageSet.factors``).
    """
    _require_file(path, name)
    try:
        with zipfile.ZipFile(path) as zf:
            members = _npz_members(zf, name)
            image_key = key or next((k for k in ("x", "images") if k in members), None)
            if image_key not in members:
                wanted = f"key '{key}'" if key else "array 'x' or 'images'"
                raise LatentlabError(f"{name}: has no {wanted}; it holds {sorted(members)}")
            images = as_uint8_images(_npz_array(zf, members[image_key]), f"{name} array '{image_key}'")
            label_key = next((k for k in ("y", "labels") if k in members and k != image_key), None)
            labels = None if label_key is None else \
                _as_labels(_npz_array(zf, members[label_key]), len(images), name)
            names = None
            if "label_names" in members:
                names = [str(s) for s in _npz_array(zf, members["label_names"]).ravel()]
                if labels is not None and len(names) <= labels.max():
                    raise LatentlabError(
                        f"{name}: {len(names)} label_names for class ids up to {labels.max()}")
            elif labels is not None:
                names = [str(i) for i in range(int(labels.max()) + 1)]
            factors = _npz_factors(zf, members, len(images), name)
    except (ValueError, *_ZIP_ERRORS) as e:
        raise LatentlabError(f"{name}: not a NumPy .npz archive, or a damaged one ({e})") from None
    return ImageSet(images=images, labels=labels, label_names=names, factors=factors, spec=name)


def _npz_factors(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], n: int, name: str) -> dict[str, np.ndarray]:
    """Named factor columns: ``factors`` (N, K) numbers and ``factor_names`` (K,) strings."""
    if "factors" not in members:
        return {}
    values = _npz_array(zf, members["factors"])
    names = [str(s) for s in _npz_array(zf, members["factor_names"]).ravel()] if "factor_names" in members else []
    if values.ndim != 2 or len(values) != n or len(names) != values.shape[1] or values.dtype.kind not in "biuf":
        raise LatentlabError(f"{name}: expected 'factors' of numbers of shape ({n}, K) and K 'factor_names', "
                             f"got {values.dtype} {values.shape} and {len(names)} names")
    return {k: values[:, j].astype(np.float64) for j, k in enumerate(names)}


# ---------------------------------------------------------------------------- IDX (MNIST)

IDX_IMAGES, IDX_LABELS = 2051, 2049


def read_idx_file(path: Path, name: str, magic: int) -> np.ndarray:
    """One IDX file (gz or plain) -> uint8 array of its declared dims; checks magic and size."""
    _require_file(path, name)
    with open(path, "rb") as fp:
        gz = fp.read(2) == b"\x1f\x8b"
    what = "IDX images file (magic 2051)" if magic == IDX_IMAGES else "IDX labels file (magic 2049)"
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fp:
            head = fp.read(4)
            if len(head) < 4 or int.from_bytes(head, "big") != magic:
                found = int.from_bytes(head, "big") if len(head) == 4 else "none"
                raise LatentlabError(f"{name}: {path.name} has magic number {found}; expected an {what}")
            raw_dims = fp.read(4 * head[3])
            dims = [int.from_bytes(raw_dims[i:i + 4], "big") for i in range(0, len(raw_dims), 4)]
            if len(raw_dims) != 4 * head[3] or 0 in dims:
                raise LatentlabError(f"{name}: {path.name} declares dims {dims}; expected {head[3]} "
                                     "non-zero sizes")
            count = math.prod(dims)
            limit = path.stat().st_size * (MAX_DEFLATE_RATIO if gz else 1)
            if count > limit:
                raise LatentlabError(
                    f"{name}: {path.name} declares dims {dims} ({count} bytes) but is only "
                    f"{path.stat().st_size} bytes; truncated or corrupt")
            data = fp.read(count)
            extra = fp.read(1)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise LatentlabError(f"{name}: cannot read {path.name} ({e}); truncated or corrupt .gz?") from None
    if len(data) != count or extra:
        raise LatentlabError(
            f"{name}: {path.name} declares dims {dims} ({count} bytes of data) but holds "
            f"{len(data)}{'+' if extra else ''} bytes; truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _find_idx(folder: Path, split: str, kind: str) -> Path | None:
    prefix = "train" if split == "train" else "t10k"
    ndim = 3 if kind == "images" else 1
    for stem in (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"):
        for suffix in ("", ".gz"):
            if (folder / (stem + suffix)).is_file():
                return folder / (stem + suffix)
    return None


def read_idx(path: Path, name: str, split: str = "train") -> ImageSet:
    """``idx:DIR`` (the four MNIST files; ``split`` 'train' or 'test') or ``idx:FILE`` (one images file).

    For a single images file, labels are read from the matching ``*labels-idx1*`` file beside it
    when there is one.
    """
    if split not in ("train", "test"):
        raise LatentlabError(f"{name}: unknown split '{split}'; expected #train or #test")
    if not path.exists():
        raise LatentlabError(f"{name}: file not found")
    if path.is_dir():
        images_path = _find_idx(path, split, "images")
        if images_path is None:
            prefix = "train" if split == "train" else "t10k"
            raise LatentlabError(
                f"{name}: no {prefix}-images-idx3-ubyte[.gz] in {path}; expected the MNIST IDX files")
        labels_path = _find_idx(path, split, "labels")
    else:
        images_path = path
        sibling = path.with_name(path.name.replace("images", "labels").replace("idx3", "idx1"))
        labels_path = sibling if sibling != path and sibling.is_file() else None
    images = read_idx_file(images_path, name, IDX_IMAGES)
    if images.ndim != 3:
        raise LatentlabError(f"{name}: {images_path.name} has dims {images.shape}; expected N x H x W")
    labels = names = None
    if labels_path is not None:
        raw = read_idx_file(labels_path, name, IDX_LABELS)
        labels = _as_labels(raw, len(images), f"{name} ({labels_path.name})")
        names = [str(i) for i in range(int(labels.max()) + 1)]
    return ImageSet(images=images[..., None], labels=labels, label_names=names, spec=name)


# ---------------------------------------------------------------------------- folder / tar of images

def _warn_skipped(name: str, skipped: list[str]) -> None:
    if skipped:
        more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        warnings.warn(f"{name}: skipped {len(skipped)} non-image file(s): {skipped[0]}{more}", stacklevel=3)


def read_folder(path: Path, name: str, resize: tuple[int, int] | None = None, *,
                geometry: decode.Geometry | None = None) -> ImageSet:
    """PNG/JPEG/BMP files in ``path``; each sub-folder (with everything below it) is one label.
    ``geometry`` (or ``resize`` alone) cuts and sizes each image while it is decoded."""
    if not path.exists():
        raise LatentlabError(f"{name}: folder not found")
    if not path.is_dir():
        raise LatentlabError(f"{name}: is not a folder")
    items: list[Item] = []
    groups: list[str | None] = []
    skipped: list[str] = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden files such as .DS_Store
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(str(rel))
            continue
        items.append(Item(str(rel), file))
        groups.append(rel.parts[0] if len(rel.parts) > 1 else None)
    if not items:
        others = f"; skipped {len(skipped)} other file(s) such as {skipped[0]}" if skipped else ""
        raise LatentlabError(f"{name}: no images found (expected {', '.join(IMAGE_SUFFIXES)} files){others}")
    _warn_skipped(name, skipped)
    labels, names = labels_from_groups(groups, name)
    images = decode_images(items, name, resize, geometry=geometry)
    return ImageSet(images=images, labels=labels, label_names=names, spec=name)


def read_tar(path: Path, name: str, folder: str | None = None,
             resize: tuple[int, int] | None = None, *, geometry: decode.Geometry | None = None) -> ImageSet:
    """Images inside a tar (plain, gz, bz2 or xz), optionally only those under ``folder``, in
    the order of their names. ``geometry`` (or ``resize`` alone) cuts and sizes each image while
    it is decoded.

    Two passes over the archive: the first lists the members (for a plain tar it only reads
    headers), the second streams their bytes to the decoders, so only a few files are held at
    a time and the set is held at its decoded size, not the files'.
    """
    _require_file(path, name)
    prefix = (folder or "").strip("/").removeprefix("./")
    with _reading_tar(name):
        members = _tar_images(path, name, prefix)
        order = sorted(members, key=lambda m: Path(m).parts)  # as read_folder orders its files
        rows = {m: i for i, m in enumerate(order)}
        labels, names = labels_from_groups([members[m] for m in order], name)
        images = decode_images(_tar_stream(path, rows), name, resize, geometry=geometry, count=len(rows), rows=rows)
    return ImageSet(images=images, labels=labels, label_names=names, spec=name)


@contextlib.contextmanager
def _reading_tar(name: str) -> Iterator[None]:
    """tarfile's and the decompressors' errors as one line naming the archive."""
    try:
        yield
    except tarfile.ReadError as e:  # tarfile lists every decompressor it tried: too long for one line
        reason = "not a tar file, plain or compressed" if "could not be opened" in str(e) else str(e)
        raise LatentlabError(f"{name}: cannot read as a tar archive ({reason}); expected a .tar, .tar.gz, "
                             ".tar.bz2 or .tar.xz of images") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise LatentlabError(
            f"{name}: cannot read as a tar archive ({e}); expected a .tar or .tar.gz") from None


def _tar_images(path: Path, name: str, prefix: str) -> dict[str, str | None]:
    """Image members under ``prefix``: path -> label group (first folder below ``prefix``, or None)."""
    found: dict[str, str | None] = {}
    skipped: list[str] = []
    top_dirs: set[str] = set()
    with tarfile.open(path, "r:*") as tf:
        for member in tf:  # streaming: works for compressed tars without seeking
            member_path = member.name.removeprefix("./")
            top_dirs.add(member_path.split("/")[0])
            if not member.isfile() or (prefix and not member_path.startswith(prefix + "/")):
                continue
            rel = member_path[len(prefix) + 1:] if prefix else member_path
            parts = rel.split("/")
            if any(p.startswith(".") for p in parts):
                continue
            if Path(rel).suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(rel)
                continue
            if member.size > decode.MAX_IMAGE_FILE_BYTES:
                raise LatentlabError(f"{name}: {member_path} is {member.size} bytes; "
                                     f"expected an image file of at most {decode.MAX_IMAGE_FILE_BYTES} bytes")
            found[member_path] = parts[0] if len(parts) > 1 else None
            tf.members.clear()  # type: ignore[attr-defined]  # tarfile keeps every header read: ~5 MB for 6,600
    if not found:
        where = f" under '{prefix}'" if prefix else ""
        raise LatentlabError(f"{name}: no images found{where}; top-level entries: {sorted(top_dirs)[:5]}")
    _warn_skipped(name, skipped)
    return found


def _tar_stream(path: Path, wanted: dict[str, int]) -> Iterator[Item]:
    """The bytes of the ``wanted`` members, one at a time, in the archive's order."""
    with tarfile.open(path, "r:*") as tf:
        for member in tf:
            member_path = member.name.removeprefix("./")
            if member.isfile() and member_path in wanted:
                fobj = tf.extractfile(member)
                yield Item(member_path, fobj.read() if fobj else b"")
            tf.members.clear()  # type: ignore[attr-defined]  # streaming: no header is needed again
