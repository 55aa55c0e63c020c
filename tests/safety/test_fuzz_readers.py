"""Fuzzing every data reader: any file either loads as an ImageSet or raises LatentlabError.

Each reader gets 10,000 generated files. Inputs are built the way real files are (a valid
``.npy``, ``.npz``, IDX, PNG/JPEG/BMP or tar written from a small random array), then corrupted:
header fields replaced (huge or negative shapes, odd dtypes, wrong magic numbers, dims), bytes
overwritten, cut short or appended; plus plain random bytes. Anything other than a loaded set
or a one-line LatentlabError (a numpy, PIL, zip or tar exception leaking out, a MemoryError,
a hang) fails the test with the input that caused it.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import tarfile
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from latentlab.data import readers
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LATENTLAB_FUZZ_EXAMPLES", "10000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
MAX_SECONDS = 2.0  # a tiny file is read in milliseconds; only a real hang (or a huge allocation) is this slow


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder in memory where there is one (/dev/shm): 10,000 small files a test, quickly."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    folder = Path(tempfile.mkdtemp(prefix="latentlab-fuzz-", dir=base))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _check(read: Callable[[], ImageSet]) -> None:
    """Loads, or raises a one-line LatentlabError; retried twice when slow, so a busy machine passes."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        message = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "skipped non-image files" and PIL's own warnings
                data = read()
        except LatentlabError as error:
            message = str(error)
        if message is None:
            assert isinstance(data, ImageSet) and len(data) > 0
        else:
            assert message and "\n" not in message
        best = min(best, time.perf_counter() - start)
        if best < MAX_SECONDS:
            return
    raise AssertionError(f"a read took {best:.2f} s, expected under {MAX_SECONDS} s")


# ---- corruption ---------------------------------------------------------------------------------
# Strategies are built once and drawn from fixed pools: 10,000 examples per reader stay fast.

EXTREMES = [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 10**9, 65535, 65536, 2**31]
EDITS = st.binary(max_size=12)  # up to three 4-byte edits (op, position high, position low, value): one draw
RANDOM_BYTES = st.binary(max_size=300)


def corrupt(data: bytes, edits: bytes) -> bytes:
    """``data`` with bytes overwritten, a 32-bit field set to an extreme, cut short or grown."""
    out = bytearray(data)
    for i in range(0, len(edits) - 3, 4):
        op, where, value = edits[i] % 6, int.from_bytes(edits[i + 1:i + 3], "big"), edits[i + 3]
        pos = where % max(len(out), 1)
        if op <= 1 and out:
            out[pos] = value
        elif op == 2 and len(out) >= 4:  # a size or dimension field replaced by an extreme value
            out[pos:pos + 4] = EXTREMES[value % len(EXTREMES)].to_bytes(4, "big" if value & 128 else "little")
        elif op == 3:
            del out[pos:]
        elif op == 4:
            out += bytes([value]) * (1 + where % 16)
        elif op == 5:
            out[pos:pos] = bytes([value]) * (1 + where % 8)
    return bytes(out)


def mutated(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Mostly corrupted valid files, sometimes plain random bytes."""
    return st.one_of(st.tuples(valid, EDITS).map(lambda t: corrupt(*t)), RANDOM_BYTES)


# ---- npy ----------------------------------------------------------------------------------------

def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _arrays() -> list[np.ndarray]:
    """Small arrays shaped like real image files, or nearly: wrong ranks, dtypes, values."""
    rng = np.random.default_rng(0)
    out = []
    for shape in [(2, 3, 4, 3), (1, 2, 2, 1), (3, 2, 2), (2, 2, 2, 2), (4,), (1, 2, 3, 4, 3)]:
        for dtype in ["u1", "f4", "i2", "?", "f8", ">u2"]:
            for special in [None, 256, -1, 0.5, np.nan, np.inf]:
                arr = rng.integers(0, 256, shape).astype(np.float64)
                if special is not None:
                    arr.flat[0] = special
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")  # NaN -> int: whatever numpy makes of it
                    out.append(arr.astype(dtype))
    return out


ARRAYS = [npy_bytes(a) for a in _arrays()]
DTYPES = ["|u1", "<f4", "<f8", ">i2", "<i8", "|b1", "<f2", ">u4", "<c8", "|O", "<U3", "|S2", "|V4", "<M8[s]",
          "[('a', '<i4')]", "bogus", "<u1", "(2,)u1"]
SHAPES = st.one_of(st.lists(st.integers(0, 5), max_size=5),
                   st.lists(st.sampled_from([0, 1, 3, 64, 10**6, 10**12, 2**62, 2**63, -1]), min_size=1, max_size=5))


def npy_header(shape: list[int], descr: str, variant: int, version: int, payload: bytes) -> bytes:
    """A hand-made .npy header: any shape, dtype and format version, then some payload bytes."""
    d = descr if descr.startswith("[") else repr(descr)
    header = f"{{'descr': {d}, 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    header = [header, header.replace("'shape'", "'shap'"), header[:-3], header + "x", "[" * 200][variant]
    text = header.encode("latin1") + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + payload


NPY_HEADERS = st.builds(npy_header, SHAPES, st.sampled_from(DTYPES), st.integers(0, 4), st.integers(1, 3),
                        st.binary(max_size=64))
NPY_FILES = mutated(st.one_of(st.sampled_from(ARRAYS), NPY_HEADERS))


def test_fuzz_npy(scratch: Path) -> None:
    seen: list[int] = []
    path = scratch / "x.npy"

    @FUZZ
    @given(NPY_FILES)
    def one(data: bytes) -> None:
        seen.append(1)
        path.write_bytes(data)
        _check(lambda: readers.read_npy(path, "npy:x.npy"))

    one()
    assert len(seen) >= EXAMPLES


# ---- npz ----------------------------------------------------------------------------------------

LABELS = [npy_bytes(np.array(v, dtype=np.int64)) for v in ([0, 1], [0, 1, 2], [-1, 0], [], [5, 5, 5, 5])]
NAMES_ARRAYS = [npy_bytes(np.array(v, dtype="<U5")) for v in (["a", "b"], ["smile"], [])]
MEMBERS = st.lists(st.tuples(st.sampled_from(["x", "images", "y", "labels", "label_names", "other"]),
                             st.one_of(st.sampled_from(ARRAYS + LABELS + NAMES_ARRAYS), NPY_HEADERS)),
                   min_size=1, max_size=3, unique_by=lambda t: t[0])


def npz_file(members: list[tuple[str, bytes]], deflate: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(f"{name}.npy", data)
    return buf.getvalue()


NPZ_FILES = mutated(st.builds(npz_file, MEMBERS, st.booleans()))


def test_fuzz_npz(scratch: Path) -> None:
    seen: list[int] = []
    path = scratch / "x.npz"

    @FUZZ
    @given(NPZ_FILES, st.sampled_from([None, "x", "images", "y", "nope"]))
    def one(data: bytes, key: str | None) -> None:
        seen.append(1)
        path.write_bytes(data)
        _check(lambda: readers.read_npz(path, "npz:x.npz", key=key))

    one()
    assert len(seen) >= EXAMPLES


# ---- IDX ----------------------------------------------------------------------------------------

DIMS = st.one_of(st.lists(st.integers(0, 4), min_size=3, max_size=3),
                 st.lists(st.sampled_from([0, 1, 28, 10**4, 2**31 - 1, 2**32 - 1]), min_size=3, max_size=3),
                 st.lists(st.integers(0, 4), max_size=4))


def idx_file(magic: int, dims: list[int], fill: int, gz: bool) -> bytes:
    """An IDX file: magic, dims (maybe huge, maybe not matching the magic), data; maybe gzip'd."""
    count = int(np.prod(dims, dtype=object)) if dims else 0
    body = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes([fill]) * min(count, 64)
    return gzip.compress(body, mtime=0) if gz else body


MAGICS = st.sampled_from([0x803, 0x803, 0x801, 0x802, 0xD03, 0x804, 0])
IDX_IMAGES = mutated(st.builds(idx_file, MAGICS, DIMS, st.integers(0, 255), st.booleans()))
IDX_LABELS = st.one_of(st.none(), mutated(st.builds(
    idx_file, st.sampled_from([0x801, 0x803]), st.lists(st.integers(0, 5), min_size=1, max_size=1),
    st.integers(0, 255), st.booleans())))


def test_fuzz_idx(scratch: Path) -> None:
    seen: list[int] = []
    images, labels = scratch / "train-images-idx3-ubyte", scratch / "train-labels-idx1-ubyte"

    @FUZZ
    @given(IDX_IMAGES, IDX_LABELS)
    def one(image_bytes: bytes, label_bytes: bytes | None) -> None:
        seen.append(1)
        images.write_bytes(image_bytes)
        if label_bytes is None:
            labels.unlink(missing_ok=True)
        else:
            labels.write_bytes(label_bytes)
        _check(lambda: readers.read_idx(images, "idx:train-images-idx3-ubyte"))

    one()
    assert len(seen) >= EXAMPLES


# ---- images: folder and tar ---------------------------------------------------------------------

def _encoded_images() -> list[bytes]:
    """Small PNG / JPEG / BMP / GIF files in many modes and sizes (corruption may make them claim more)."""
    out = []
    for fmt, modes in (("PNG", ["RGB", "L", "RGBA", "P", "1", "I;16", "LA"]), ("JPEG", ["RGB", "L", "CMYK"]),
                       ("BMP", ["RGB", "L", "1"]), ("GIF", ["P"])):
        for mode in modes:
            for size in ((1, 1), (3, 2), (5, 4)):
                buf = io.BytesIO()
                Image.new(mode, size).save(buf, format=fmt)
                out.append(buf.getvalue())
    return out


IMAGES = mutated(st.sampled_from(_encoded_images()))
NAMES = ["a.png", "b.jpg", "c.bmp", "d.jpeg", "sub/e.png", "sub/f.png", "other/g.jpg", "notes.txt", ".hidden.png"]
TREES = st.lists(st.tuples(st.sampled_from(NAMES), IMAGES), min_size=1, max_size=3, unique_by=lambda t: t[0])
RESIZES = st.sampled_from([None, None, (4, 4), (1, 7)])


def test_fuzz_folder(scratch: Path) -> None:
    seen: list[int] = []
    root = scratch / "images"

    @FUZZ
    @given(TREES, RESIZES)
    def one(files: list[tuple[str, bytes]], resize: tuple[int, int] | None) -> None:
        seen.append(1)
        shutil.rmtree(root, ignore_errors=True)
        for name, data in files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        _check(lambda: readers.read_folder(root, "folder:images", resize=resize))

    one()
    assert len(seen) >= EXAMPLES


def tar_file(files: list[tuple[str, bytes]], prefix: str, gz: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in files:
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TARS = mutated(st.builds(tar_file, TREES, st.sampled_from(["", "top/", "./"]), st.booleans()))


def test_fuzz_tar(scratch: Path) -> None:
    seen: list[int] = []
    path = scratch / "x.tar"

    @FUZZ
    @given(TARS, st.sampled_from([None, "top", "sub"]), RESIZES)
    def one(data: bytes, folder: str | None, resize: tuple[int, int] | None) -> None:
        seen.append(1)
        path.write_bytes(data)
        _check(lambda: readers.read_tar(path, "tar:x.tar", folder=folder, resize=resize))

    one()
    assert len(seen) >= EXAMPLES
