"""A damaged ``checkpoint/latest.json`` gives way to the newest intact checkpoint, with a warning.

Damaged: not JSON (garbage, truncated, empty), not ``{"checkpoint": "ckpt-<step>"}``, or naming a
checkpoint folder that is gone, incomplete or unreadable. With no intact checkpoint at all, the
pointer stays the one-line error it was (or the folder it names, whose loading names the bad file).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from latentlab.errors import LatentlabError
from latentlab.train.checkpoints import POINTER, latest_checkpoint, load_checkpoint, save_checkpoint

OLD, NEW = "ckpt-000000001", "ckpt-000000002"


def _trained(value: float) -> tuple[torch.nn.Linear, torch.optim.Optimizer]:
    """A tiny model whose weights all equal ``value``, and an Adam that has taken one step (state tensors)."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return model, optimizer


def _save(folder: Path, step: int) -> None:
    save_checkpoint(folder, *_trained(float(step)), {"step": step})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """``ckpt-1`` and ``ckpt-2`` both intact, the pointer naming ``ckpt-2`` (as if a save had been
    interrupted before it removed the older folder)."""
    folder = tmp_path / "checkpoint"
    _save(folder, 1)
    kept = shutil.copytree(folder / OLD, tmp_path / "kept")
    _save(folder, 2)
    shutil.move(kept, folder / OLD)
    assert sorted(p.name for p in folder.iterdir()) == [OLD, NEW, POINTER]
    return folder


def _resume(folder: Path) -> tuple[str, int, float]:
    """What a resume loads: (checkpoint folder, its step, its weights' value)."""
    ckpt = latest_checkpoint(folder)
    assert ckpt is not None
    model, optimizer = _trained(0.0)
    state = load_checkpoint(ckpt, model, optimizer)
    return ckpt.name, state["step"], model.weight[0, 0].item()


def _garbage(folder: Path) -> None:
    (folder / POINTER).write_bytes(b"\x89\xfe\x00 not json at all \xff")


def _truncated(folder: Path) -> None:
    pointer = folder / POINTER
    pointer.write_bytes(pointer.read_bytes()[:9])


def _empty(folder: Path) -> None:
    (folder / POINTER).write_bytes(b"")


def _a_list(folder: Path) -> None:
    (folder / POINTER).write_text(f'["{NEW}"]')


def _a_number(folder: Path) -> None:
    (folder / POINTER).write_text('{"checkpoint": 2}')


def _a_path(folder: Path) -> None:
    (folder / POINTER).write_text('{"checkpoint": "../checkpoint/ckpt-000000002"}')


def _deleted(folder: Path) -> None:
    shutil.rmtree(folder / NEW)


def _incomplete(folder: Path) -> None:
    (folder / NEW / "state.json").unlink()


def _bad_weights(folder: Path) -> None:
    (folder / NEW / "model.safetensors").write_bytes(b"garbage, not safetensors")


def _cut_optimizer(folder: Path) -> None:
    path = folder / NEW / "optimizer.safetensors"
    path.write_bytes(path.read_bytes()[:-4])  # the header still parses; the data is short


def _bad_state(folder: Path) -> None:
    (folder / NEW / "state.json").write_text('{"step": 2')


# (how the damage is done, the checkpoint that must be loaded, what the warning says is wrong)
DAMAGE: list[tuple[Callable[[Path], None], str, str]] = [
    (_garbage, NEW, "not a valid checkpoint pointer (UnicodeDecodeError)"),
    (_truncated, NEW, "not a valid checkpoint pointer (JSONDecodeError)"),
    (_empty, NEW, "not a valid checkpoint pointer (JSONDecodeError)"),
    (_a_list, NEW, 'not a {"checkpoint": "ckpt-<step>"} object'),
    (_a_number, NEW, 'not a {"checkpoint": "ckpt-<step>"} object'),
    (_a_path, NEW, 'not a {"checkpoint": "ckpt-<step>"} object'),
    (_deleted, OLD, f"names {NEW}, whose folder is missing"),
    (_incomplete, OLD, f"names {NEW}, whose state.json is missing"),
    (_bad_weights, OLD, f"names {NEW}, whose model.safetensors is unreadable"),
    (_cut_optimizer, OLD, f"names {NEW}, whose optimizer.safetensors is unreadable"),
    (_bad_state, OLD, f"names {NEW}, whose state.json is unreadable"),
]


@pytest.mark.parametrize(("damage", "expected", "why"), DAMAGE, ids=[d[0].__name__.strip("_") for d in DAMAGE])
def test_a_damaged_pointer_falls_back_to_the_newest_intact_checkpoint(
        folder: Path, damage: Callable[[Path], None], expected: str, why: str) -> None:
    damage(folder)
    with pytest.warns(UserWarning) as record:
        name, step, value = _resume(folder)
    assert (name, step, value) == (expected, int(expected[-1]), float(expected[-1]))
    assert len(record) == 1
    message = str(record[0].message)
    assert "\n" not in message
    assert message.startswith(f"{folder / POINTER}: {why}")
    assert message.endswith(f"; resuming from the newest intact checkpoint {folder / expected} instead")
    assert sorted(p.name for p in folder.glob("ckpt-*")) == [expected]  # the rest is cleared, as after a kill


def test_the_next_save_repairs_the_pointer(folder: Path) -> None:
    _garbage(folder)
    with pytest.warns(UserWarning):
        assert _resume(folder)[0] == NEW
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _save(folder, 2)  # the folder in force is rewritten in place: no warning for the save itself
        assert _resume(folder) == (NEW, 2, 2.0)
        _save(folder, 3)
        assert _resume(folder) == ("ckpt-000000003", 3, 3.0)


def test_an_intact_pointer_is_followed_without_a_warning(folder: Path) -> None:
    """Even over a newer complete folder (a save killed before the pointer moved): the pointer decides."""
    newer = folder / "ckpt-000000003"
    shutil.copytree(folder / NEW, newer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _resume(folder) == (NEW, 2, 2.0)
    assert not newer.exists() and not (folder / OLD).exists()


def test_no_pointer_is_a_fresh_start(folder: Path) -> None:
    (folder / POINTER).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert latest_checkpoint(folder) is None


# ---- with no intact checkpoint to fall back on: as before ------------------------------------


def test_unreadable_pointer_without_an_intact_checkpoint_is_an_error(folder: Path) -> None:
    _garbage(folder)
    (folder / OLD / "optimizer.json").unlink()
    _deleted(folder)
    with pytest.raises(LatentlabError, match=r"latest\.json: not a valid checkpoint pointer \(UnicodeDecodeError\)$"):
        latest_checkpoint(folder)


@pytest.mark.parametrize("pointer", ['{"checkpoint": 2}', f'{{"checkpoint": "{NEW}"}}'])
def test_a_pointer_to_nothing_without_an_intact_checkpoint_is_an_error(folder: Path, pointer: str) -> None:
    shutil.rmtree(folder / OLD)
    shutil.rmtree(folder / NEW)
    (folder / POINTER).write_text(pointer)
    with pytest.raises(LatentlabError, match=r"latest\.json: names no checkpoint folder; delete it to start over$"):
        latest_checkpoint(folder)


def test_a_broken_checkpoint_without_an_intact_one_fails_on_its_file(folder: Path) -> None:
    shutil.rmtree(folder / OLD)
    _bad_weights(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ckpt = latest_checkpoint(folder)
    assert ckpt == folder / NEW
    with pytest.raises(LatentlabError, match=r"model\.safetensors: not a readable safetensors file"):
        load_checkpoint(ckpt, *_trained(0.0))


# ---- through the run API ---------------------------------------------------------------------


@pytest.mark.slow
def test_resume_run_with_a_damaged_pointer(tiny_run: Path, tmp_path: Path) -> None:
    from latentlab.train.api import resume_run

    out = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    (out / "COMPLETE").unlink()
    (ckpt,) = (out / "checkpoint").glob("ckpt-*")
    _truncated(out / "checkpoint")
    with pytest.warns(UserWarning, match=rf"resuming from the newest intact checkpoint {ckpt} instead"):
        resume_run(out, progress=False)
    assert (out / "COMPLETE").is_file()
