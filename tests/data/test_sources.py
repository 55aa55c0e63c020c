"""Data specs -> ImageSet: every reader on small generated files, every bad input, real data."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentlab.data import ImageSet, load_source
from latentlab.data.sources import parse_spec
from latentlab.errors import LatentlabError

CELEBA_TAR = "celeba_subset/celeba_aligned_6000img_200id.tar"


def _images(n: int = 5, h: int = 6, w: int = 7, c: int | None = 3, seed: int = 0) -> np.ndarray:
    shape = (n, h, w) if c is None else (n, h, w, c)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _error(spec: str, **kwargs) -> str:
    """The one-line message load_source raises for ``spec``."""
    with pytest.raises(LatentlabError) as info:
        load_source(spec, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _png(path: Path, size: tuple[int, int] = (6, 4), mode: str = "RGB", value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "1") else (value,) * len(mode)).save(path)


# ---------------------------------------------------------------------------- npy

def test_npy_is_memory_mapped(tmp_path) -> None:
    images = _images()
    np.save(tmp_path / "a.npy", images)
    data = load_source(f"npy:{tmp_path / 'a.npy'}", resize=(3, 3))  # npy: resize left to batches
    assert isinstance(data, ImageSet) and isinstance(data.images, np.memmap)
    assert data.images.shape == (5, 6, 7, 3) and np.array_equal(data.images, images)
    assert data.labels is None and data.spec == f"npy:{tmp_path / 'a.npy'}"


@pytest.mark.parametrize("c", [None, 1])
def test_npy_grayscale_gets_one_channel(tmp_path, c) -> None:
    np.save(tmp_path / "g.npy", _images(c=c))
    assert load_source(f"npy:{tmp_path / 'g.npy'}").images.shape == (5, 6, 7, 1)


def test_npy_whole_number_floats_are_converted(tmp_path) -> None:
    images = _images()
    np.save(tmp_path / "f.npy", images.astype(np.float32))
    np.save(tmp_path / "i.npy", images.astype(np.int64))
    for name in ("f.npy", "i.npy"):
        data = load_source(f"npy:{tmp_path / name}")
        assert data.images.dtype == np.uint8 and np.array_equal(data.images, images)


def test_npy_missing_file() -> None:
    assert _error("npy:/x/y.npy") == "npy:/x/y.npy: file not found"


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros((5, 6), np.uint8), "shape (5, 6); expected uint8 array of shape (N, H, W, 3)"),
    (np.zeros((5, 6, 7, 2), np.uint8), "shape (5, 6, 7, 2)"),
    (np.zeros((2, 6, 7, 3), np.complex64), "dtype complex64; expected uint8"),
    (np.full((2, 6, 7, 3), 300, np.int32), "values outside 0..255"),
    (np.full((2, 6, 7, 3), -1.0, np.float32), "values outside 0..255"),
    (np.full((2, 6, 7, 3), 0.5, np.float32), "not whole numbers"),
    (np.full((2, 6, 7, 3), np.nan, np.float32), "NaN"),
])
def test_npy_bad_arrays(tmp_path, array, message) -> None:
    np.save(tmp_path / "bad.npy", array)
    got = _error(f"npy:{tmp_path / 'bad.npy'}")
    assert got.startswith(f"npy:{tmp_path / 'bad.npy'}: ") and message in got


def test_npy_refuses_pickles_and_text(tmp_path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "pickle" in _error(f"npy:{tmp_path / 'obj.npy'}")
    (tmp_path / "text.npy").write_text("hello, not an array\n")
    assert "not a NumPy .npy array" in _error(f"npy:{tmp_path / 'text.npy'}")


def test_npy_huge_header_in_tiny_file_fails_at_once(tmp_path) -> None:
    buffer = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": (10**6, 1000, 1000, 3)}
    np.lib.format.write_array_header_1_0(buffer, header)
    (tmp_path / "huge.npy").write_bytes(buffer.getvalue() + b"\0" * 16)
    assert (tmp_path / "huge.npy").stat().st_size < 200
    assert "truncated or corrupt" in _error(f"npy:{tmp_path / 'huge.npy'}")


def _npy_with_header(text: str, version: int = 1, payload: bytes = b"") -> bytes:
    """A .npy file with a hand-written header dict (any text) in format ``version``."""
    raw = text.encode("utf-8" if version == 3 else "latin1") + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + len(raw).to_bytes(2 if version == 1 else 4, "little") + raw + payload


GOOD_DESCR = "'descr': '|u1', 'fortran_order': False"


@pytest.mark.parametrize(("data", "message"), [
    (b"\x93NUMPY\x09\x00" + b"\0" * 20, "(format version 9.0; expected 1.0, 2.0 or 3.0)"),
    (b"\x93NUMPY\x02\x00\x10", "(truncated header)"),
    (b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}", "(header of 4294967295 bytes, over the 10000 limit)"),
    (_npy_with_header("[1, 2]"), "(header is not a dictionary: [1, 2])"),
    (_npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shap': (1, 2, 2)}"),
     "(header does not contain the correct keys: ['descr', 'fortran_order', 'shap'])"),
    (_npy_with_header(f"{{{GOOD_DESCR}, 'shape': (1, 2.0, 2)}}"), "(shape is not valid: (1, 2.0, 2))"),
    (_npy_with_header(f"{{{GOOD_DESCR}, 'shape': (1, -2, 2)}}"), "(bad shape (1, -2, 2) in the header)"),
    (_npy_with_header(f"{{{GOOD_DESCR}, 'shape': (True, 2, 2)}}"), "(bad shape (True, 2, 2) in the header)"),
    (_npy_with_header("{'descr': '|u1', 'fortran_order': 1, 'shape': (1, 2, 2)}"),
     "(fortran_order is not a valid bool: 1)"),
    (_npy_with_header("{'descr': 'bogus', 'fortran_order': False, 'shape': (1, 2, 2)}"),
     "(descr is not a valid dtype descriptor: 'bogus')"),
    (_npy_with_header("{'descr': [('a',)], 'fortran_order': False, 'shape': (1, 2, 2)}"), "(unreadable header)"),
    (_npy_with_header("__import__('os').system('echo PWNED')"), "(unreadable header)"),  # parsed, never run
    (_npy_with_header("{'descr': '|u1'} x"), "(cannot parse header: "),
    (b"\x93NUMPY\x03\x00\x03\x00\x00\x00\xff\xfe\n", "(header is not UTF-8 text)"),
])
def test_npy_bad_headers_are_one_line_errors(tmp_path, data, message) -> None:
    """numpy.lib.format reads the header; its ValueErrors become one line naming the file."""
    (tmp_path / "bad.npy").write_bytes(data)
    got = _error(f"npy:{tmp_path / 'bad.npy'}")
    assert got.startswith(f"npy:{tmp_path / 'bad.npy'}: not a NumPy .npy array (") and message in got


def test_npy_headers_numpy_reads_are_read(tmp_path) -> None:
    """Format 3.0 (UTF-8 header) and a Python 2 header ('2L') load, as numpy.load reads them."""
    (tmp_path / "v3.npy").write_bytes(_npy_with_header(f"{{{GOOD_DESCR}, 'shape': (1, 2, 2), }}", 3, b"\1\2\3\4"))
    assert load_source(f"npy:{tmp_path / 'v3.npy'}").images.ravel().tolist() == [1, 2, 3, 4]
    (tmp_path / "py2.npy").write_bytes(_npy_with_header(f"{{{GOOD_DESCR}, 'shape': (1L, 2L, 2L), }}", 1, b"\1\2\3\4"))
    with pytest.warns(UserWarning, match="created on Python 2"):
        assert load_source(f"npy:{tmp_path / 'py2.npy'}").images.shape == (1, 2, 2, 1)


# ---------------------------------------------------------------------------- npz

def test_npz_images_labels_and_key(tmp_path) -> None:
    images, labels = _images(), np.array([0, 2, 1, 2, 0])
    np.savez(tmp_path / "a.npz", x=images, y=labels)
    data = load_source(f"npz:{tmp_path / 'a.npz'}")
    assert np.array_equal(data.images, images) and data.labels.tolist() == labels.tolist()
    assert data.labels.dtype == np.int64 and data.label_names == ["0", "1", "2"]
    np.savez_compressed(tmp_path / "b.npz", faces=images, labels=labels,
                        label_names=np.array(["cat", "dog", "owl"]))
    data = load_source(f"npz:{tmp_path / 'b.npz'}#faces", resize=(3, 4))
    assert data.images.shape == (5, 3, 4, 3) and data.label_names == ["cat", "dog", "owl"]


def test_npz_errors(tmp_path) -> None:
    np.savez(tmp_path / "a.npz", pixels=_images())
    assert "has no array 'x' or 'images'; it holds ['pixels']" in _error(f"npz:{tmp_path / 'a.npz'}")
    assert "has no key 'nope'" in _error(f"npz:{tmp_path / 'a.npz'}#nope")
    np.savez(tmp_path / "b.npz", x=_images(), y=np.zeros(3, np.int64))
    assert "labels have shape (3,) int64; expected 5 integers" in _error(f"npz:{tmp_path / 'b.npz'}")
    np.savez(tmp_path / "d.npz", x=_images(), y=np.arange(5), label_names=np.array(["a", "b"]))
    assert "2 label_names for class ids up to 4" in _error(f"npz:{tmp_path / 'd.npz'}")
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (10**6, 1000, 1000, 3)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("x.npy", buffer.getvalue() + b"\0" * 16)
    assert "truncated or corrupt" in _error(f"npz:{tmp_path / 'huge.npz'}")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    assert "not a NumPy .npz archive" in _error(f"npz:{tmp_path / 'c.npz'}")
    assert _error(f"npz:{tmp_path / 'none.npz'}").endswith("file not found")


# ---------------------------------------------------------------------------- idx

def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def _write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array, magic, nd in [("images", images, 2051, 3), ("labels", labels, 2049, 1)]:
        raw = _idx_bytes(array, magic)
        name = f"{prefix}-{kind}-idx{nd}-ubyte"
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_train_and_test(tmp_path, gz) -> None:
    train, test = _images(n=6, c=None), _images(n=3, c=None, seed=1)
    _write_idx(tmp_path, "train", train, np.arange(6) % 4, gz)
    _write_idx(tmp_path, "t10k", test, np.array([9, 0, 1]), gz)
    data = load_source(f"idx:{tmp_path}")
    assert data.images.shape == (6, 6, 7, 1) and np.array_equal(data.images[..., 0], train)
    assert data.labels.tolist() == [0, 1, 2, 3, 0, 1] and data.label_names == ["0", "1", "2", "3"]
    data = load_source(f"idx:{tmp_path}#test", resize=(3, 3))
    assert data.images.shape == (3, 3, 3, 1) and data.labels.tolist() == [9, 0, 1]
    assert parse_spec(str(tmp_path)).kind == "idx"  # a folder of IDX files is inferred


def test_idx_single_file(tmp_path) -> None:
    _write_idx(tmp_path, "train", _images(n=4, c=None), np.array([1, 1, 0, 1]), gz=True)
    data = load_source(f"idx:{tmp_path / 'train-images-idx3-ubyte.gz'}")
    assert data.images.shape == (4, 6, 7, 1) and data.labels.tolist() == [1, 1, 0, 1]
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    assert load_source(f"idx:{tmp_path / 'train-images-idx3-ubyte.gz'}").labels is None


def test_idx_errors(tmp_path) -> None:
    _write_idx(tmp_path / "ok", "train", _images(n=4, c=None), np.arange(4), gz=True)
    assert "no t10k-images-idx3-ubyte[.gz]" in _error(f"idx:{tmp_path / 'ok'}#test")
    assert "unknown split 'valid'" in _error(f"idx:{tmp_path / 'ok'}#valid")
    assert _error(f"idx:{tmp_path / 'missing'}").endswith("file not found")

    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(_idx_bytes(_images(n=2, c=None), 2049))
    assert "magic number 2049; expected an IDX images file (magic 2051)" in _error(f"idx:{bad}")

    short = tmp_path / "short-images-idx3-ubyte"
    short.write_bytes(_idx_bytes(_images(n=2, c=None), 2051)[:-10])
    assert "truncated or corrupt" in _error(f"idx:{short}")

    huge = tmp_path / "huge-images-idx3-ubyte"
    huge.write_bytes((2051).to_bytes(4, "big") + (10**9).to_bytes(4, "big") + (1000).to_bytes(4, "big") * 2)
    assert "declares dims [1000000000, 1000, 1000]" in _error(f"idx:{huge}")

    packed = gzip.compress(_idx_bytes(_images(n=50, c=None), 2051))
    cut = tmp_path / "cut-images-idx3-ubyte.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    message = _error(f"idx:{cut}")
    assert "cut-images-idx3-ubyte.gz" in message and "truncated" in message


# ---------------------------------------------------------------------------- folder

def test_folder_flat_and_labelled(tmp_path) -> None:
    for i in range(3):
        _png(tmp_path / "flat" / f"{i}.png", value=10 * i)
    data = load_source(f"folder:{tmp_path / 'flat'}")
    assert data.images.shape == (3, 4, 6, 3) and data.labels is None
    assert data.images[:, 0, 0, 0].tolist() == [0, 10, 20]

    _png(tmp_path / "lab" / "zebra" / "a.png")
    _png(tmp_path / "lab" / "ant" / "b.jpg")
    _png(tmp_path / "lab" / "ant" / "deeper" / "c.bmp")
    data = load_source(str(tmp_path / "lab"))  # an existing folder needs no prefix
    assert data.label_names == ["ant", "zebra"] and data.labels.tolist() == [0, 0, 1]


def test_folder_skips_non_images_with_a_warning(tmp_path) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    with pytest.warns(UserWarning, match=r"skipped 1 non-image file\(s\): notes.txt"):
        data = load_source(f"folder:{tmp_path}")
    assert len(data) == 1


def test_folder_channels(tmp_path) -> None:
    _png(tmp_path / "gray" / "a.png", mode="L")
    _png(tmp_path / "gray" / "b.png", mode="L", value=7)
    gray = load_source(f"folder:{tmp_path / 'gray'}")
    assert gray.images.shape == (2, 4, 6, 1) and gray.images[1, 0, 0, 0] == 7
    _png(tmp_path / "mixed" / "a.png", mode="L", value=50)
    _png(tmp_path / "mixed" / "b.png", mode="RGBA")
    mixed = load_source(f"folder:{tmp_path / 'mixed'}")
    assert mixed.images.shape == (2, 4, 6, 3) and mixed.images[0, 0, 0].tolist() == [50, 50, 50]


def test_folder_sizes_need_resize(tmp_path) -> None:
    _png(tmp_path / "a.png", size=(6, 4))
    _png(tmp_path / "b.png", size=(8, 8))
    message = _error(f"folder:{tmp_path}")
    assert "different sizes" in message and "4x6" in message and "8x8" in message
    assert load_source(f"folder:{tmp_path}", resize=(5, 5)).images.shape == (2, 5, 5, 3)


def test_folder_errors(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    assert "no images found" in _error(f"folder:{tmp_path / 'empty'}")
    assert _error(f"folder:{tmp_path / 'nope'}").endswith("folder not found")
    _png(tmp_path / "both" / "a.png")
    _png(tmp_path / "both" / "sub" / "b.png")
    assert "both directly inside and in sub-folders" in _error(f"folder:{tmp_path / 'both'}")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    assert "x.png is not a readable image" in _error(f"folder:{tmp_path / 'broken'}")


# ---------------------------------------------------------------------------- tar

def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> None:
    with tarfile.open(path, mode) as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))


def _jpeg_bytes(value: int, size: tuple[int, int] = (20, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (value, value, value)).save(out, format="JPEG")
    return out.getvalue()


def test_tar_folder_labels_and_resize(tmp_path) -> None:
    members = {f"Data/train/p{k}/{i}.jpg": _jpeg_bytes(40 * k) for k in range(3) for i in range(2)}
    members["Data/test/p0/x.jpg"] = _jpeg_bytes(0)
    members["Data/train/README"] = b"text"
    _tar(tmp_path / "a.tar.gz", members, "w:gz")
    with pytest.warns(UserWarning, match="skipped 1 non-image"):
        data = load_source(f"tar:{tmp_path / 'a.tar.gz'}#Data/train/", resize=(8, 6))
    assert data.images.shape == (6, 8, 6, 3)
    assert data.label_names == ["p0", "p1", "p2"] and data.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert abs(int(data.images[2, 4, 3, 0]) - 40) < 4
    with pytest.warns(UserWarning):
        whole = load_source(str(tmp_path / "a.tar.gz"))
    assert len(whole) == 7 and whole.label_names == ["Data"]


def test_tar_errors(tmp_path) -> None:
    _tar(tmp_path / "a.tar", {"Data/x/1.jpg": _jpeg_bytes(1)})
    assert "no images found under 'Other'; top-level entries: ['Data']" in _error(
        f"tar:{tmp_path / 'a.tar'}#Other")
    (tmp_path / "b.tar").write_text("just text, not a tar")
    assert "cannot read as a tar archive" in _error(f"tar:{tmp_path / 'b.tar'}")
    _tar(tmp_path / "c.tar.gz", {f"{i}.jpg": _jpeg_bytes(i) for i in range(20)}, "w:gz")
    raw = (tmp_path / "c.tar.gz").read_bytes()
    (tmp_path / "c.tar.gz").write_bytes(raw[: len(raw) // 2])
    assert "cannot read as a tar archive" in _error(f"tar:{tmp_path / 'c.tar.gz'}")
    assert _error(f"tar:{tmp_path / 'none.tar'}").endswith("file not found")


# ---------------------------------------------------------------------------- specs, digits, faces

def test_unknown_spec_message() -> None:
    assert _error("nonsense") == (
        "unknown data spec 'nonsense': expected one of npy:PATH, npz:PATH, idx:DIR, folder:DIR, "
        "tar:PATH[#FOLDER], celeba:PATH[#train|valid|test], digits, faces[:N[:SEED]], shapes[:N[:SEED]], "
        "mnist, fashion-mnist")


def test_parse_spec_and_inference(tmp_path) -> None:
    assert parse_spec("tar:/a/b.tar#Datasets/x") == parse_spec("tar:/a/b.tar#Datasets/x")
    parsed = parse_spec("tar:/a/b.tar#Datasets/x")
    assert (parsed.kind, parsed.target, parsed.fragment) == ("tar", "/a/b.tar", "Datasets/x")
    assert parse_spec("npy:/a/b#c.npy").target == "/a/b#c.npy"
    assert parse_spec("mnist#test").fragment == "test"
    assert parse_spec("fashion-mnist").kind == "fashion-mnist"
    np.save(tmp_path / "a.npy", _images())
    np.savez(tmp_path / "a.npz", x=_images())
    assert parse_spec(str(tmp_path / "a.npy")).kind == "npy"
    assert parse_spec(str(tmp_path / "a.npz")).kind == "npz"
    assert len(load_source(str(tmp_path / "a.npy"))) == 5


def test_digits() -> None:
    data = load_source("digits")
    assert data.images.shape == (1797, 8, 8, 1) and data.images.max() == 255
    assert sorted(set(data.labels.tolist())) == list(range(10))


def test_faces_specs() -> None:
    assert load_source("faces:10").images.shape == (10, 64, 64, 3)
    a, b = load_source("faces:10:5"), load_source("faces:10:5", resize=(32, 32))
    assert np.array_equal(a.images, load_source("faces:10:5").images) and b.images.shape == (10, 32, 32, 3)
    assert set(a.factors) >= {"hue", "mouth"} and a.label_names == ["neutral", "smiling"]
    assert load_source("faces:4", resize=(16, 24)).images.shape == (4, 16, 24, 3)
    assert "faces:N:SEED with N > 0" in _error("faces:zero")
    assert "faces:N:SEED with N > 0" in _error("faces:0")


def test_bad_resize() -> None:
    assert "resize (0, 4)" in _error("faces:2", resize=(0, 4))


# ---------------------------------------------------------------------------- real data

def test_real_mnist_idx(shared_data) -> None:
    train = load_source(f"idx:{shared_data / 'mnist'}")
    test = load_source(f"idx:{shared_data / 'mnist'}#test")
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    for data in (train, test):
        assert sorted(np.unique(data.labels).tolist()) == list(range(10))
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first MNIST labels


def test_real_celeba_tar_validation(shared_data) -> None:
    data = load_source(f"tar:{shared_data / CELEBA_TAR}#Datasets/validation_dataset", resize=(64, 64))
    assert data.images.shape == (600, 64, 64, 3) and data.labels is not None
    assert all(name.startswith("celeb_") for name in data.label_names)
    assert 40 < data.images.mean() < 220  # real photos, not blank


@pytest.mark.slow
def test_real_celeba_tar_train(shared_data) -> None:
    data = load_source(f"tar:{shared_data / CELEBA_TAR}#Datasets/train_dataset", resize=(64, 64))
    assert data.images.shape == (4800, 64, 64, 3) and len(data.label_names) == 200


def test_absolute_spec_makes_a_relative_path_absolute(tmp_path, monkeypatch) -> None:
    from latentlab.data.sources import absolute_spec

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "a.npy", _images())
    assert absolute_spec("npy:a.npy") == f"npy:{tmp_path / 'a.npy'}"
    assert absolute_spec("a.npy") == f"npy:{tmp_path / 'a.npy'}"  # the kind inferred, then written out
    assert absolute_spec("celeba:../faces#train") == f"celeba:{tmp_path.parent / 'faces'}#train"
    assert absolute_spec("tar:x.tar#Datasets/test") == f"tar:{tmp_path / 'x.tar'}#Datasets/test"
    for unchanged in (f"npy:{tmp_path / 'a.npy'}", "faces:60", "mnist#test", "digits", "no such thing"):
        assert absolute_spec(unchanged) == unchanged
