"""Named public sets (``mnist``, ``fashion-mnist``): download once, verify, cache, read.

The four official IDX ``.gz`` files are fetched with ``urllib`` into
``<cache>/<name>/`` (cache: the ``cache_dir`` argument, else ``$LATENTLAB_CACHE``, else
``~/.cache/latentlab``) and checked against the published md5 (and sha256 where one is
published). When the files of the requested split are already cached and intact, no network is
touched. Without a network the error says how to use a local copy (``idx:DIR``) instead.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from latentlab.data.cache import cache_root
from latentlab.data.imageset import ImageSet
from latentlab.data.readers import read_idx
from latentlab.errors import LatentlabError

__all__ = ["DATASETS", "MIRRORS", "cache_root", "ensure_files", "load_named"]

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class FileInfo:
    """One published file and its official checksums (sha256 None where none is published)."""

    name: str
    md5: str
    sha256: str | None = None


@dataclass(frozen=True)
class NamedSet:
    """A downloadable IDX set: its files per split and its class names."""

    files: dict[str, tuple[FileInfo, FileInfo]]  # split -> (images, labels)
    label_names: tuple[str, ...]


DATASETS: dict[str, NamedSet] = {
    "mnist": NamedSet(
        files={
            "train": (
                FileInfo("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                         "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
                FileInfo("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                         "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            ),
            "test": (
                FileInfo("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                         "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
                FileInfo("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                         "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
            ),
        },
        label_names=tuple(str(i) for i in range(10)),
    ),
    "fashion-mnist": NamedSet(
        files={
            "train": (
                FileInfo("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                FileInfo("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ),
            "test": (
                FileInfo("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                FileInfo("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
            ),
        },
        label_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}

# Base URLs tried in order (a file's URL is base + file name). Tests point these at an
# unreachable address to check the offline error.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}


def _intact(path: Path, info: FileInfo) -> bool:
    """Whether ``path`` exists and matches the official checksums."""
    if not path.is_file():
        return False
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest() == info.md5 and (info.sha256 is None or sha.hexdigest() == info.sha256)


def _fetch(url: str, dest: Path, info: FileInfo) -> None:
    """Download ``url`` to ``dest`` atomically, verifying the checksums; raises OSError / ValueError."""
    tmp = dest.with_name(dest.name + ".part")
    md5, sha = hashlib.md5(), hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(1 << 16), b""):
                md5.update(block)
                sha.update(block)
                out.write(block)
        if md5.hexdigest() != info.md5 or (info.sha256 is not None and sha.hexdigest() != info.sha256):
            raise ValueError(f"checksum mismatch (md5 {md5.hexdigest()}, expected {info.md5})")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_files(name: str, split: str = "train", cache_dir: Path | None = None) -> Path:
    """Make sure the files of ``split`` are in the cache (downloading all missing ones); -> folder."""
    dataset = DATASETS[name]
    folder = cache_root(cache_dir) / name
    if all(_intact(folder / f.name, f) for f in dataset.files[split]):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [f for pair in dataset.files.values() for f in pair]  # all four, so #test is ready too
    for info in wanted:
        dest = folder / info.name
        if _intact(dest, info):
            continue
        errors = []
        for base in MIRRORS[name]:
            url = base + info.name
            log.info("downloading %s", url)
            try:
                _fetch(url, dest, info)
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                errors.append(f"{url}: {getattr(e, 'reason', e)}")
        else:
            raise LatentlabError(
                f"{name}: download of {info.name} failed ({'; '.join(errors)}); without a network, put "
                f"the four IDX files in a folder and use --data idx:DIR, or copy them into {folder}")
    return folder


def load_named(name: str, split: str = "train", cache_dir: Path | None = None, spec: str = "") -> ImageSet:
    """``mnist`` / ``fashion-mnist`` (``split`` 'train' or 'test') as an ImageSet, from the cache."""
    spec = spec or name
    if name not in DATASETS:
        raise LatentlabError(f"{spec}: unknown named set; expected one of {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise LatentlabError(f"{spec}: unknown split '{split}'; expected #train or #test")
    folder = ensure_files(name, split, cache_dir)
    data = read_idx(folder, spec, split=split)
    data.label_names = list(DATASETS[name].label_names)
    return data
