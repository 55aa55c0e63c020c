"""Data specs (the CLI's ``--data SPEC``) -> :class:`ImageSet`.

======================  ==============================================================
spec                    what
======================  ==============================================================
``npy:PATH``            N x H x W x 3 (or x 1, or N x H x W) uint8 array, memory-mapped
``npz:PATH[#KEY]``      array ``x`` / ``images`` (or KEY), labels ``y`` / ``labels``
``idx:DIR[#test]``      the four MNIST-style IDX files (gz or plain); ``idx:FILE`` too
``folder:DIR``          PNG/JPEG/BMP files; sub-folders are labels
``tar:PATH[#FOLDER]``   images in a (compressed) tar, only those under FOLDER if given
``digits``              scikit-learn's bundled 8x8 digits, scaled to 0..255
``faces[:N[:SEED]]``    generated cartoon faces with known factors (default 2000, seed 0)
``shapes[:N[:SEED]]``   a procedural dSprites, N of its 737,280 images (default 20000, seed 0)
``mnist[#test]``        downloaded once into the cache (also ``fashion-mnist``)
======================  ==============================================================

A spec without a prefix that names an existing path is read by its extension.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.data import readers
from latentlab.data.batches import resize_uint8
from latentlab.data.decode import Geometry
from latentlab.data.faces import make_faces
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

__all__ = ["ParsedSpec", "absolute_spec", "load_source", "parse_spec"]

PATH_KINDS = ("npy", "npz", "idx", "folder", "tar", "celeba")
DECODED = ("folder", "tar", "celeba")  # sources decoded from image files (cached once decoded)
NAMED_SETS = ("mnist", "fashion-mnist")
FACES_DEFAULT_N = 2000
EXPECTED = ("expected one of npy:PATH, npz:PATH, idx:DIR, folder:DIR, tar:PATH[#FOLDER], "
            "celeba:PATH[#train|valid|test], digits, "
            "faces[:N[:SEED]], shapes[:N[:SEED]], mnist, fashion-mnist")


@dataclass(frozen=True)
class ParsedSpec:
    """A data spec split into its parts: ``kind``, ``target`` (a path or a name), ``fragment``.

    For ``faces`` the target is ``"N:SEED"``; fragment is the part after ``#`` (npz key, idx
    split, tar folder, named-set split) or None.
    """

    kind: str
    target: str
    fragment: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.target).expanduser()


def _split_fragment(text: str) -> tuple[str, str | None]:
    base, sep, fragment = text.rpartition("#")
    return (base, fragment or None) if sep else (text, None)


def _infer_kind(path: Path) -> str | None:
    """Kind of an existing path by its extension (or, for a folder, by its contents)."""
    name = path.name.lower()
    if path.is_dir():
        has_idx = any(path.glob("*-images-idx3-ubyte*")) or any(path.glob("*-images.idx3-ubyte*"))
        return "idx" if has_idx else "folder"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    if "idx3-ubyte" in name:
        return "idx"
    return None


def parse_spec(spec: str) -> ParsedSpec:
    """Split a spec string; raises :class:`LatentlabError` for an unknown one."""
    text = spec.strip()
    prefix, sep, rest = text.partition(":")
    if sep and prefix in PATH_KINDS:
        if not rest:
            raise LatentlabError(f"data spec '{spec}': missing the path after '{prefix}:'")
        if prefix in ("npz", "idx", "tar", "celeba"):
            target, fragment = _split_fragment(rest)
            return ParsedSpec(prefix, target, fragment)
        return ParsedSpec(prefix, rest)
    if text == "digits":
        return ParsedSpec("digits", "")
    if prefix in ("faces", "shapes"):
        return ParsedSpec(prefix, rest)
    base, fragment = _split_fragment(text)
    if base in NAMED_SETS:
        return ParsedSpec(base, base, fragment)
    path = Path(text).expanduser()
    if text and path.exists():
        kind = _infer_kind(path)
        if kind is not None:
            return ParsedSpec(kind, text)
    raise LatentlabError(f"unknown data spec '{spec}': {EXPECTED}")


def absolute_spec(spec: str) -> str:
    """``spec`` with a relative path made absolute (``celeba:../data#train`` ->
    ``celeba:/abs/data#train``), so a run that records it can be used from any folder; other
    specs and unknown ones are returned as they are."""
    try:
        parsed = parse_spec(spec)
    except LatentlabError:
        return spec
    if parsed.kind not in PATH_KINDS or parsed.path.is_absolute():
        return spec
    fragment = f"#{parsed.fragment}" if parsed.fragment is not None else ""
    return f"{parsed.kind}:{os.path.abspath(parsed.path)}{fragment}"  # '..' folded, links kept


def _parse_faces(target: str, spec: str, kind: str = "faces", default_n: int = FACES_DEFAULT_N) -> tuple[int, int]:
    parts = target.split(":") if target else []
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(parts) > 2 or len(values) != len(parts) or (values and values[0] <= 0):
        raise LatentlabError(f"data spec '{spec}': expected {kind}, {kind}:N or {kind}:N:SEED with N > 0")
    n = values[0] if values else default_n
    seed = values[1] if len(values) > 1 else 0
    return n, seed


def _load_digits(spec: str) -> ImageSet:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]  # (N, 8, 8, 1)
    return ImageSet(images=images, labels=digits.target.astype(np.int64),
                    label_names=[str(i) for i in range(10)], spec=spec)


def _check_resize(resize: tuple[int, int] | None) -> tuple[int, int] | None:
    if resize is None:
        return None
    if len(resize) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in resize):
        raise LatentlabError(f"resize {resize!r}: expected two positive integers height,width")
    return (int(resize[0]), int(resize[1]))


def _decoded(parsed: ParsedSpec, spec: str, geometry: Geometry | None, cache_dir: Path | None) -> ImageSet:
    """A set decoded from image files (folder, tar, celeba), through the decoded-set cache."""
    from latentlab.data import celeba
    from latentlab.data.cache import cached

    kind, path = parsed.kind, parsed.path
    if not path.exists():
        if kind == "celeba":
            raise LatentlabError(f"data spec '{spec}': {path} not found; {celeba.WHERE}")
        raise LatentlabError(f"{spec}: {'folder' if kind == 'folder' else 'file'} not found")

    def decode() -> ImageSet:
        if kind == "folder":
            return readers.read_folder(path, spec, geometry=geometry)
        if kind == "tar":
            return readers.read_tar(path, spec, folder=parsed.fragment, geometry=geometry)
        return celeba.read_celeba(path, spec, parsed.fragment, geometry)

    if kind == "celeba":
        celeba.split_name(parsed.fragment, spec)  # a bad split: one line before anything is read
    inputs = celeba.inputs_of(path) if kind == "celeba" else [path]
    parts = {"kind": kind, "path": str(path.resolve()), "fragment": parsed.fragment,
             "geometry": None if geometry is None else dataclasses.asdict(geometry)}
    return cached(parts, inputs, spec, decode, cache_dir)


def load_source(spec: str, *, resize: tuple[int, int] | None = None, geometry: Geometry | None = None,
                cache_dir: Path | None = None) -> ImageSet:
    """Read the data a spec names into an :class:`ImageSet` (uint8, (N, H, W, C)).

    ``geometry`` cuts and sizes each image of a ``folder:`` or ``tar:`` source while it is
    decoded (the set stage of the input rule, :func:`latentlab.data.rule.load_prepared`; other
    sources refuse it). ``resize`` (height, width) resizes the set at load time for every source
    except ``npy``: an npy file stays memory-mapped at its stored size. ``cache_dir`` is where named sets
    (``mnist``, ``fashion-mnist``) are cached (default ``$LATENTLAB_CACHE`` or
    ``~/.cache/latentlab``).
    """
    parsed = parse_spec(spec)
    size = _check_resize(resize)
    kind, path = parsed.kind, parsed.path
    if geometry is not None and kind not in DECODED:
        raise ValueError(f"load_source: geometry applies to images decoded from files, not to {kind}")
    if kind == "npy":
        return readers.read_npy(path, spec)
    if kind in DECODED:
        return _decoded(parsed, spec, geometry or (Geometry(resize=size) if size else None), cache_dir)
    if kind == "npz":
        data = readers.read_npz(path, spec, key=parsed.fragment)
    elif kind == "idx":
        data = readers.read_idx(path, spec, split=parsed.fragment or "train")
    elif kind == "digits":
        data = _load_digits(spec)
    elif kind == "faces":
        n, seed = _parse_faces(parsed.target, spec)
        square = size is not None and size[0] == size[1]
        data = make_faces(n, seed=seed, size=size[0] if square and size else 64)
        data.spec = spec
    elif kind == "shapes":
        from latentlab.data.shapes import DEFAULT_N, make_shapes

        data = make_shapes(*_parse_faces(parsed.target, spec, "shapes", DEFAULT_N))
        data.spec = spec
    else:
        from latentlab.data.download import load_named

        data = load_named(kind, split=parsed.fragment or "train", cache_dir=cache_dir, spec=spec)
    if size is not None and data.images.shape[1:3] != size:
        data.images = resize_uint8(data.images, size)
    return data
