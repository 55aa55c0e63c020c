"""CelebA's aligned face images (Liu et al., ICCV 2015) with their published splits.

``celeba:PATH[#train|valid|test]`` (default ``train``) reads either

* the set as published: a folder holding ``img_align_celeba/`` (or the images themselves), or
  the zip ``img_align_celeba.zip``, with ``list_eval_partition.txt`` beside it (or in ``Eval/``):
  0 = train, 1 = valid, 2 = test; ``identity_CelebA.txt`` there, if present, gives the labels;
* the layout of the CelebA subset in ``../shared/data/celeba_subset``: a tar (or its unpacked
  folder) of ``Datasets/{train,validation,test}_dataset/celeb_<k>/<id>.jpg``, one folder per
  person (the labels).

The usual 64x64 preparation, a centred 140x140 crop resized to 64x64, is this source's default
input rule (:data:`DEFAULT_GEOMETRY`); it is applied while decoding. CelebA is never
downloaded: its hosts do not allow automated download, so a missing path says where to get it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from latentlab.data import readers
from latentlab.data.decode import IMAGE_SUFFIXES, Geometry, Item, decode_images
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

__all__ = ["DEFAULT_GEOMETRY", "SPLITS", "read_celeba"]

DEFAULT_GEOMETRY = Geometry(center_crop=140, resize=(64, 64))
SPLITS = {"train": 0, "valid": 1, "test": 2}
SUBSET_FOLDERS = {"train": "train_dataset", "valid": "validation_dataset", "test": "test_dataset"}
PARTITION = "list_eval_partition.txt"
IDENTITY = "identity_CelebA.txt"
WHERE = ("get img_align_celeba (folder or zip) and Eval/list_eval_partition.txt from "
         "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (not downloaded automatically: its hosts "
         "do not allow it)")


def split_name(fragment: str | None, spec: str) -> str:
    name = {"validation": "valid", "val": "valid"}.get(fragment or "train", fragment or "train")
    if name not in SPLITS:
        raise LatentlabError(f"data spec '{spec}': split '{fragment}' does not exist; expected one of "
                             f"{', '.join(SPLITS)}")
    return name


def inputs_of(path: Path) -> list[Path]:
    """The files a CelebA source reads (for the cache key): the archive, or the partition file and
    the image folder."""
    path = _subset_tar(path)
    if path.is_file():
        return [path, *[p for p in (_find(path.parent, PARTITION), _find(path.parent, IDENTITY)) if p]]
    if (path / "Datasets").is_dir():
        return [path / "Datasets"]
    return [p for p in (_find(path, PARTITION), _find(path, IDENTITY), _image_folder(path)) if p]


def read_celeba(path: Path, spec: str, split: str | None, geometry: Geometry | None) -> ImageSet:
    """The images of one split, cut and sized by ``geometry`` (default: :data:`DEFAULT_GEOMETRY`)."""
    name = split_name(split, spec)
    geometry = geometry or DEFAULT_GEOMETRY
    if not path.exists():
        raise LatentlabError(f"data spec '{spec}': {path} not found; {WHERE}")
    path = _subset_tar(path)
    lowered = path.name.lower()
    if path.is_file() and lowered.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return readers.read_tar(path, spec, folder=f"Datasets/{SUBSET_FOLDERS[name]}", geometry=geometry)
    if path.is_dir() and (path / "Datasets").is_dir():
        return readers.read_folder(path / "Datasets" / SUBSET_FOLDERS[name], spec, geometry=geometry)
    folder = path.parent if path.is_file() else path
    partition = _find(folder, PARTITION)
    if partition is None:
        raise LatentlabError(f"data spec '{spec}': no {PARTITION} in {folder} or {folder / 'Eval'}; {WHERE}")
    files = [f for f, s in _read_pairs(partition, spec) if s == str(SPLITS[name])]
    if not files:
        raise LatentlabError(f"data spec '{spec}': {partition} lists no images of split '{name}'")
    labels, names = _identities(folder, files, spec)
    if path.is_file() and lowered.endswith(".zip"):
        images = _decode_zip(path, files, spec, geometry)
    elif path.is_file():
        raise LatentlabError(f"data spec '{spec}': {path.name} is not a folder, zip or tar of CelebA images")
    else:
        images = _decode_folder(path, files, spec, geometry)
    return ImageSet(images=images, labels=labels, label_names=names, spec=spec)


def _subset_tar(path: Path) -> Path:
    """A folder that holds the subset's tar and no published layout (``../shared/data/celeba_subset``)
    stands for that tar; anything else is itself."""
    if not path.is_dir() or (path / "Datasets").is_dir() or _find(path, PARTITION) is not None:
        return path
    tars = sorted(path.glob("*.tar"))
    return tars[0] if len(tars) == 1 else path


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / "Eval" / name, folder / "Anno" / name, folder.parent / name):
        if candidate.is_file():
            return candidate
    return None


def _image_folder(path: Path) -> Path | None:
    for candidate in (path / "img_align_celeba", path / "img_align_celeba" / "img_align_celeba", path):
        if candidate.is_dir() and any(candidate.glob("*.jpg")):
            return candidate
    return None


def _read_pairs(path: Path, spec: str) -> list[tuple[str, str]]:
    """'<file> <value>' lines."""
    pairs = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LatentlabError(f"data spec '{spec}': cannot read {path} ({exc.strerror})") from None
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise LatentlabError(f"data spec '{spec}': {path.name} line {number}: expected '<file> <value>'")
        pairs.append((parts[0], parts[1]))
    return pairs


def _identities(folder: Path, files: list[str], spec: str) -> tuple[np.ndarray | None, list[str] | None]:
    """Labels: the person of each image (identity_CelebA.txt), when the file is there."""
    path = _find(folder, IDENTITY)
    if path is None:
        return None, None
    identity = dict(_read_pairs(path, spec))
    if any(f not in identity for f in files):
        return None, None
    names = sorted({identity[f] for f in files}, key=lambda v: (len(v), v))
    ids = {v: i for i, v in enumerate(names)}
    return np.array([ids[identity[f]] for f in files], dtype=np.int64), names


def _decode_folder(path: Path, files: list[str], spec: str, geometry: Geometry) -> np.ndarray:
    images = _image_folder(path)
    if images is None:
        raise LatentlabError(f"data spec '{spec}': no img_align_celeba folder of JPEGs in {path}; {WHERE}")
    missing = [f for f in files[:1000] if not (images / f).is_file()]
    if missing:
        raise LatentlabError(f"data spec '{spec}': {images / missing[0]} is missing "
                             f"({len(missing)} of the first {min(len(files), 1000)} listed); {WHERE}")
    return decode_images([Item(f, images / f) for f in files], spec, geometry=geometry)


def _decode_zip(path: Path, files: list[str], spec: str, geometry: Geometry) -> np.ndarray:
    try:
        with zipfile.ZipFile(path) as zf:
            members = {Path(m).name: m for m in zf.namelist() if m.lower().endswith(IMAGE_SUFFIXES)}
            missing = [f for f in files if f not in members]
            if missing:
                raise LatentlabError(f"data spec '{spec}': {path.name} lacks {missing[0]} "
                                     f"({len(missing)} listed images missing); {WHERE}")

            def stream() -> Iterator[Item]:
                for f in files:
                    yield Item(f, zf.read(members[f]))

            return decode_images(stream(), spec, geometry=geometry, count=len(files))
    except (zipfile.BadZipFile, OSError) as exc:
        raise LatentlabError(f"data spec '{spec}': cannot read {path.name} as a zip ({exc})") from None
