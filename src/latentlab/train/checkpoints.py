"""Checkpoints that survive a kill at any moment.

A checkpoint is a folder ``checkpoint/ckpt-<step>/`` holding ``model.safetensors``,
``optimizer.safetensors`` + ``optimizer.json`` (the optimizer state as tensors and JSON: nothing
pickled, so loading one runs no code) and ``state.json`` (the trainer state: step, history, the
schedule's and the moving average's counters); with ``--ema``, ``ema.safetensors`` (the averaged
weights); once validated, ``best.safetensors``. It becomes *the* checkpoint only when
``checkpoint/latest.json`` is atomically rewritten to name it, after every file in it is on disk;
older folders are removed afterwards. A kill before the pointer moves leaves the previous
checkpoint in force; what the killed save left behind (a half-filled folder, temporary files)
is removed when the run is resumed. Weights that are no longer finite are never saved, so the
checkpoint in force is always a good one.

A damaged pointer (not JSON, not ``{"checkpoint": "ckpt-<step>"}``, or naming a folder that is
missing, incomplete or unreadable) does not stop a resume: the newest intact checkpoint is used
instead, with a warning. Only when none is intact does the damaged pointer stay an error.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from latentlab.errors import LatentlabError
from latentlab.io import atomic_path, atomic_write, read_json, remove_temporaries, write_json
from latentlab.models.registry import load_weights

POINTER = "latest.json"
_NAME = re.compile(r"ckpt-\d+")
_NOT_AN_OBJECT = 'not a {"checkpoint": "ckpt-<step>"} object'
_FILES = ("model.safetensors", "optimizer.safetensors", "optimizer.json", "state.json")
_OPTIONAL = ("ema.safetensors", "best.safetensors")
EMA_FILE = "ema.safetensors"


def optimizer_to_files(optimizer: torch.optim.Optimizer, copy: bool = False,
                       ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and plain JSON; ``copy``: the
    tensors are copies, not views of the live state."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{name}"] = value.detach().to("cpu", copy=copy).contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_files(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _first_non_finite(model: torch.nn.Module) -> str | None:
    for name, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


Best = dict[str, torch.Tensor] | str | None  # tensors, CURRENT, PREVIOUS or None (no best yet)
CURRENT = "current"  # the best weights are this checkpoint's validated ones: best.safetensors links
# ema.safetensors when the checkpoint has one (validation uses the average), else model.safetensors
PREVIOUS = "previous"  # unchanged since the checkpoint in force: link its best.safetensors


def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any], best: Best = None, ema: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a complete checkpoint for ``state['step']`` and make it the one in force.

    Refuses (LatentlabError, nothing written) when a weight is NaN or infinite: the loss may
    still have been finite at the step whose update overflowed. ``best`` is the best weights as
    tensors, or :data:`CURRENT` / :data:`PREVIOUS` to link the file that already holds them;
    ``ema`` the moving average of the weights (``--ema``).
    """
    check_finite(model, int(state["step"]))
    tensors, meta = optimizer_to_files(optimizer)
    return write_checkpoint(folder, _weights(model), tensors, meta, state, best, ema)


def check_finite(model: torch.nn.Module, step: int) -> None:
    bad = _first_non_finite(model)
    if bad is not None:
        raise LatentlabError(
            f"training diverged: weight '{bad}' is no longer finite after step {step}; the last good "
            "checkpoint was kept; try a lower --lr")


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def write_checkpoint(folder: Path, weights: dict[str, torch.Tensor], optimizer_tensors: dict[str, torch.Tensor],
                     optimizer_meta: dict[str, Any], state: dict[str, Any], best: Best = None,
                     ema: dict[str, torch.Tensor] | None = None) -> Path:
    """Write checkpoint files from tensors, then move ``latest.json`` to it and remove older ones.

    No byte is written twice for the same weights: an unchanged best is a hard link to the file
    that holds it (this checkpoint's model.safetensors, or the previous checkpoint's best), not a
    copy; a file system without hard links gets a copy."""
    step = int(state["step"])
    folder.mkdir(parents=True, exist_ok=True)
    previous = _in_force(folder, warn=False) if best == PREVIOUS else None
    ckpt = folder / f"ckpt-{step:09d}"
    if ckpt.exists() and _in_force(folder, warn=False) != ckpt.name:  # left by a killed save: start it again
        shutil.rmtree(ckpt)
    ckpt.mkdir(exist_ok=True)  # the one in force is rewritten file by file, each atomically
    atomic_write(ckpt / "model.safetensors", lambda tmp: save_file(weights, str(tmp)))
    atomic_write(ckpt / "optimizer.safetensors", lambda tmp: save_file(optimizer_tensors, str(tmp)))
    write_json(ckpt / "optimizer.json", optimizer_meta)
    if ema is not None:
        atomic_write(ckpt / EMA_FILE, lambda tmp: save_file(ema, str(tmp)))
    if best == CURRENT:
        _link(ckpt / (EMA_FILE if ema is not None else "model.safetensors"), ckpt / "best.safetensors")
    elif best == PREVIOUS:
        source = folder / previous / "best.safetensors" if previous else None
        if source is not None and source.is_file() and source != ckpt / "best.safetensors":
            _link(source, ckpt / "best.safetensors")
    elif isinstance(best, dict):
        atomic_write(ckpt / "best.safetensors", lambda tmp: save_file(best, str(tmp)))
    write_json(ckpt / "state.json", state)
    write_json(folder / POINTER, {"checkpoint": ckpt.name})
    for old in folder.glob("ckpt-*"):
        if old.name != ckpt.name:
            shutil.rmtree(old, ignore_errors=True)
    return ckpt


def _link(source: Path, target: Path) -> None:
    """``target`` becomes another name of ``source``'s bytes (atomically: a link beside, renamed)."""
    if target.is_file() and os.path.samefile(source, target):
        return  # already: and renaming a link onto its own file would do nothing, leaving the link beside
    try:
        with atomic_path(target) as tmp:
            tmp.unlink()
            os.link(source, tmp)
    except (OSError, LatentlabError):  # no hard links here: copy
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def save_final_weights(model: torch.nn.Module, path: Path, folder: Path) -> Path:
    """``model``'s weights as the safetensors file ``path``. When the checkpoint in force under
    ``folder`` already holds these exact bytes (the final or the best weights, just written
    there), ``path`` becomes a hard link to that file, not a second copy of it."""
    from safetensors.torch import save

    data = save(_weights(model))
    ckpt = _in_force(folder, warn=False) if folder.is_dir() else None
    if ckpt is not None:
        for name in ("best.safetensors", "model.safetensors", EMA_FILE):
            source = folder / ckpt / name
            if source.is_file() and source.stat().st_size == len(data) and source.read_bytes() == data:
                _link(source, path)
                return path
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


class CheckpointWriter:
    """Saves checkpoints on a background thread, so training goes on while they are written.

    :meth:`save` copies the weights and optimizer state (the training thread's only cost: about
    0.2 s for fcn-1024's 25 M parameters, against 1-2 s to write and fsync 300 MB) and hands the
    copies to one writer thread; the next save, and :meth:`wait`, first wait for the previous
    write and raise its error. A checkpoint becomes the one in force only when its files are on
    disk (:func:`write_checkpoint`), so a kill while one is written leaves the previous in force.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any],
             best: Best = None, ema: dict[str, torch.Tensor] | None = None) -> None:
        """``ema``: the averaged weights, already copies (``EMA.state_dict``)."""
        self.wait()
        check_finite(model, int(state["step"]))
        weights = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
        tensors, meta = optimizer_to_files(optimizer, copy=True)
        if isinstance(best, dict):
            best = {k: v.clone() for k, v in best.items()}
        args = (self.folder, weights, tensors, copy.deepcopy(meta), copy.deepcopy(state), best, ema)
        self._thread = threading.Thread(target=self._run, args=args, name="latentlab-checkpoint")
        self._thread.start()

    def _run(self, *args: Any) -> None:
        try:
            write_checkpoint(*args)
        except BaseException as exc:  # noqa: BLE001 (handed to the training thread by wait())
            self._error = exc

    def wait(self, raise_error: bool = True) -> None:
        """Block until the last checkpoint is written; raise what its writing raised (unless
        ``raise_error`` is False: training is already stopping for another reason)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None and raise_error:
            raise error


def _in_force(folder: Path, warn: bool = True) -> str | None:
    """The checkpoint folder in force: the one ``latest.json`` names, or None when there is no
    pointer yet. A damaged pointer gives way to the newest intact checkpoint (with a warning when
    ``warn``); with none intact, it is the one-line error it always was -- or, when it names a
    folder that exists, that folder, so that loading it says which file is wrong."""
    pointer = folder / POINTER
    if not pointer.is_file():
        return None
    name, why = _read_pointer(pointer)
    if name is not None:
        problem = _problem(folder / name)
        if problem is None:
            return name
        why = f"names {name}, whose {problem}"
    fallback = _newest_intact(folder, skip=name)
    if fallback is not None:
        if warn:
            warnings.warn(f"{pointer}: {why}; resuming from the newest intact checkpoint {folder / fallback} "
                          "instead", stacklevel=3)
        return fallback
    if name is None and why != _NOT_AN_OBJECT:  # not JSON at all
        raise LatentlabError(f"{pointer}: {why}")
    if name is None or not (folder / name).is_dir():
        raise LatentlabError(f"{pointer}: names no checkpoint folder; delete it to start over")
    return name


def _read_pointer(pointer: Path) -> tuple[str | None, str]:
    """The folder name in ``latest.json``, or None and what is wrong with the file."""
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError, UnicodeDecodeError
        return None, f"not a valid checkpoint pointer ({type(exc).__name__})"
    name = data.get("checkpoint") if isinstance(data, dict) else None
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return None, _NOT_AN_OBJECT
    return name, ""


def _problem(ckpt: Path) -> str | None:
    """What keeps ``ckpt`` from being resumed (a file missing or unreadable), or None if it is intact.
    Safetensors files are checked by their header and size, JSON files by parsing."""
    if not ckpt.is_dir():
        return "folder is missing"
    optional = [name for name in _OPTIONAL if (ckpt / name).exists()]
    for name in (*_FILES, *optional):
        path = ckpt / name
        if not path.is_file():
            return f"{name} is missing"
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), "pt"):  # reads the header; a wrong length is an error
                    pass
            elif not isinstance(json.loads(path.read_text(encoding="utf-8")), dict):
                return f"{name} is not a JSON object"
        except (SafetensorError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return f"{name} is unreadable ({reason})"
    return None


def _newest_intact(folder: Path, skip: str | None = None) -> str | None:
    """The intact ``ckpt-<step>`` folder with the highest step, other than ``skip``."""
    names = [p.name for p in folder.glob("ckpt-*") if _NAME.fullmatch(p.name) and p.name != skip]
    for name in sorted(names, key=lambda n: int(n.removeprefix("ckpt-")), reverse=True):
        if _problem(folder / name) is None:
            return name
    return None


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint in force (None if there is none yet; see :func:`_in_force` for a damaged
    pointer), after removing what a kill left behind: temporary files, and the other checkpoint
    folders (half-written ones, or ones a damaged pointer named)."""
    name = _in_force(folder)
    if folder.is_dir():
        remove_temporaries(folder)
        for other in folder.glob("ckpt-*"):
            if other.name != name:
                shutil.rmtree(other, ignore_errors=True)
    if name is None:
        return None
    remove_temporaries(folder / name)
    return folder / name


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; anything else (a pickle, a torch.save file) is a one-line error."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LatentlabError(f"{path}: not a readable safetensors file ({reason})") from None


def load_checkpoint(ckpt: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    best: torch.nn.Module | None = None) -> dict[str, Any]:
    """Restore model and optimizer in place from ``ckpt``; returns the trainer state."""
    load_weights(model, ckpt / "model.safetensors")
    tensors = load_tensors(ckpt / "optimizer.safetensors")
    meta = read_json(ckpt / "optimizer.json", "optimizer state")
    try:
        optimizer_from_files(optimizer, tensors, meta)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise LatentlabError(f"{ckpt}: optimizer state does not fit this model and optimizer "
                             f"({type(exc).__name__}: {exc})") from None
    if best is not None and (ckpt / "best.safetensors").is_file():
        load_weights(best, ckpt / "best.safetensors")
    state = read_json(ckpt / "state.json", "trainer state")
    if not isinstance(state, dict):
        raise LatentlabError(f"{ckpt / 'state.json'}: expected an object")
    return state
