"""The files a command is about to write: an existing one is refused before any work is done,
unless the caller passes ``overwrite`` (the CLI's ``--overwrite``). One message for all of them:
``PATH: exists; pass --overwrite to replace it``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from latentlab.errors import LatentlabError


def refuse_existing(paths: Iterable[str | Path], overwrite: bool = False) -> None:
    """Raise for the first of ``paths`` that is a folder, or that exists when not ``overwrite``."""
    for path in map(Path, paths):
        if path.is_dir():
            raise LatentlabError(f"{path}: is a folder; expected a file name")
        if path.exists() and not overwrite:
            raise LatentlabError(f"{path}: exists; pass --overwrite to replace it")


def refuse_full_folder(path: str | Path, overwrite: bool = False) -> None:
    """Raise when ``path`` is a file, or a folder with something in it when not ``overwrite``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LatentlabError(f"{path}: exists and is not a folder")
    if not overwrite and path.is_dir() and any(path.iterdir()):
        raise LatentlabError(f"{path}: folder exists and is not empty; pass --overwrite to replace it")

