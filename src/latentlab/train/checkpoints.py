"""Checkpoints that survive a kill at any moment.

A checkpoint is a folder ``checkpoint/ckpt-<step>/`` holding ``model.safetensors``,
``optimizer.safetensors`` + ``optimizer.json`` (the optimizer state as tensors and JSON: nothing
pickled) and ``state.json``. It becomes *the* checkpoint only when ``checkpoint/latest.json``
is atomically rewritten to name it, after every file in it is on disk; older folders are removed
afterwards. A kill before the pointer moves leaves the previous checkpoint in force.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentlab.errors import LatentlabError
from latentlab.io import atomic_write, read_json, write_json
from latentlab.models.registry import load_weights, save_weights

POINTER = "latest.json"


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and plain JSON."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{name}"] = value.detach().to("cpu").contiguous()
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


def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any], best: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a complete checkpoint for ``state['step']`` and make it the one in force."""
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / f"ckpt-{int(state['step']):09d}"
    if ckpt.exists():
        shutil.rmtree(ckpt)
    ckpt.mkdir()
    save_weights(model, ckpt / "model.safetensors")
    tensors, meta = optimizer_to_files(optimizer)
    atomic_write(ckpt / "optimizer.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    write_json(ckpt / "optimizer.json", meta)
    if best is not None:
        atomic_write(ckpt / "best.safetensors", lambda tmp: save_file(best, str(tmp)))
    write_json(ckpt / "state.json", state)
    write_json(folder / POINTER, {"checkpoint": ckpt.name})
    for old in folder.glob("ckpt-*"):
        if old.name != ckpt.name:
            shutil.rmtree(old, ignore_errors=True)
    return ckpt


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = folder / POINTER
    if not pointer.is_file():
        return None
    name = read_json(pointer, "checkpoint pointer").get("checkpoint", "")
    if not isinstance(name, str) or not re.fullmatch(r"ckpt-\d+", name) or not (folder / name).is_dir():
        raise LatentlabError(f"{pointer}: names no checkpoint folder; delete it to start over")
    return folder / name


def load_checkpoint(ckpt: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    best: torch.nn.Module | None = None) -> dict[str, Any]:
    """Restore model and optimizer in place from ``ckpt``; returns the trainer state."""
    load_weights(model, ckpt / "model.safetensors")
    try:
        tensors = load_file(str(ckpt / "optimizer.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LatentlabError(f"{ckpt / 'optimizer.safetensors'}: not a readable safetensors file ({exc})") from None
    optimizer_from_files(optimizer, tensors, read_json(ckpt / "optimizer.json", "optimizer state"))
    if best is not None and (ckpt / "best.safetensors").is_file():
        load_weights(best, ckpt / "best.safetensors")
    state = read_json(ckpt / "state.json", "trainer state")
    if not isinstance(state, dict):
        raise LatentlabError(f"{ckpt / 'state.json'}: expected an object")
    return state
