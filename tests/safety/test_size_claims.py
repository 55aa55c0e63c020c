"""Readers check declared sizes against the file before allocating: tiny files claiming 10^12 fail at once.

Each file here is about 100 bytes but its header (npy shape, npz member, IDX dims, PNG / JPEG /
BMP width and height, tar member size) claims far more. The reader must answer with one
LatentlabError naming the claim, without allocating what the header asks for: the call runs
under a tracemalloc budget of a few megabytes (numpy's allocations are traced).
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentlab.data import decode, load_source, readers
from latentlab.errors import LatentlabError

TERA = 10**12


def _fails_small(call: Callable[[], object]) -> str:
    """The LatentlabError message of ``call``, which must stay under 8 MB of traced allocations."""
    tracemalloc.start()
    try:
        with pytest.raises(LatentlabError) as info:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"allocated {peak} bytes before failing"
    message = str(info.value)
    assert "\n" not in message
    return message


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _png(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height RGB pixels, with a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + \
        chunk(b"IEND", b"")


def test_npy_claiming_a_terabyte(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    path.write_bytes(_npy_header((10**6, 1000, 1000, 1)) + b"\0" * 20)
    assert path.stat().st_size <= 200
    message = _fails_small(lambda: load_source(f"npy:{path}"))
    assert f"{TERA} bytes" in message and "truncated or corrupt" in message


def test_npy_shape_numpy_cannot_index(tmp_path: Path) -> None:
    """Zero elements, but a dimension of 2^63: found by the fuzz test (numpy raised OverflowError)."""
    path = tmp_path / "odd.npy"
    path.write_bytes(_npy_header((0, 0, 2**63)))
    assert "bad shape (0, 0, 9223372036854775808)" in _fails_small(lambda: load_source(f"npy:{path}"))


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_npy_header_claiming_4_gigabytes(tmp_path: Path, kind: str) -> None:
    """A format 2.0 header length of 2^32 - 1: refused before it is read (numpy reads, then checks)."""
    data = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{}" * 40
    path = tmp_path / f"huge.{kind}"
    if kind == "npy":
        path.write_bytes(data)
    else:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("x.npy", data)
    assert "header of 4294967295 bytes, over the 10000 limit" in _fails_small(lambda: load_source(f"{kind}:{path}"))


def test_npz_member_claiming_a_terabyte(tmp_path: Path) -> None:
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", _npy_header((10**6, 1000, 1000, 1)) + b"\0" * 20)
    message = _fails_small(lambda: load_source(f"npz:{path}"))
    assert f"{TERA} bytes" in message


def test_npz_member_whose_zip_entry_lies_about_its_size(tmp_path: Path) -> None:
    """A zip entry declaring more uncompressed bytes than deflate can make of its data: a zip bomb."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", _npy_header((2, 2, 2, 1)) + b"\0" * 8)
    data = bytearray(path.read_bytes())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # local and central entries: uncompressed size field
        start = data.index(header)
        offset = start + (22 if header == b"PK\x03\x04" else 24)
        data[offset:offset + 4] = struct.pack("<I", 2**31)
    path.write_bytes(bytes(data))
    assert "declares 2147483648 bytes" in _fails_small(lambda: load_source(f"npz:{path}"))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_claiming_a_terabyte(tmp_path: Path, gz: bool) -> None:
    body = struct.pack(">IIII", 2051, 10**4, 10**4, 10**4) + b"\0" * 84
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(body) if gz else body)
    message = _fails_small(lambda: load_source(f"idx:{path}"))
    assert f"declares dims [10000, 10000, 10000] ({TERA} bytes)" in message


def test_idx_with_a_zero_dimension(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(struct.pack(">IIII", 2051, 0, 2**32 - 1, 2**32 - 1))
    assert "expected 3 non-zero sizes" in _fails_small(lambda: load_source(f"idx:{path}"))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("width", "height", "expected"), [
    (10**6, 10**6, "twice the 89,478,485 pixel limit"),  # 10^12 pixels: a decompression bomb
    (10_000, 10_000, "declares 10000x10000 pixels, over the 89,478,485 pixel limit"),
    (5000, 5000, "declares 5000x5000 pixels but is only"),  # under PIL's limit, but not in 80 bytes
])
def test_png_claiming_more_pixels_than_its_file_holds(tmp_path: Path, width: int, height: int,
                                                      expected: str) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(_png(width, height))
    assert expected in _fails_small(lambda: load_source(f"folder:{tmp_path / 'images'}"))


def test_jpeg_claiming_65535_squared_pixels(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[sof + 5:sof + 9] = struct.pack(">HH", 65535, 65535)
    path = tmp_path / "a.jpg"
    path.write_bytes(bytes(data))
    message = _fails_small(lambda: readers.read_folder(tmp_path, "folder:x"))
    assert "a.jpg declares more than twice the 89,478,485 pixel limit" in message


def test_tar_member_claiming_a_huge_image(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = _png(10**6, 10**6)
        info = tarfile.TarInfo("faces/a.png")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (tmp_path / "x.tar").write_bytes(buf.getvalue())
    assert "faces/a.png declares more than twice" in _fails_small(lambda: load_source(f"tar:{tmp_path / 'x.tar'}"))


def test_a_file_named_png_that_is_another_format_is_not_decoded(tmp_path: Path) -> None:
    """Only the PNG, JPEG and BMP decoders run, whatever the name: a TIFF called .png is refused."""
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png", format="TIFF")
    assert "is not a readable image" in _fails_small(lambda: readers.read_folder(tmp_path, "folder:x"))


def test_images_too_large_for_memory_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many images whose decoded size exceeds the machine's memory fail before the array is made."""
    for i in range(3):
        Image.new("RGB", (40, 30)).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(decode, "physical_memory", lambda: 10_000)  # pretend a 10 kB machine
    message = _fails_small(lambda: readers.read_folder(tmp_path, "folder:x"))
    assert "3 images of 30x40 pixels need" in message and "--resize" in message
