"""The runs table: one row per run folder under a directory (``latentlab runs [DIR]``).

Everything is read, nothing is loaded or changed: ``config.json`` (model kind, data spec, epochs
planned), the header of ``model.safetensors`` (parameter count), ``metrics.csv`` (epochs done,
best validation loss), ``checkpoint/`` (how far an unfinished run got) and
``evaluation.json`` (the ROC AUC of the latest ``latentlab evaluate`` on labelled images) and
``anomaly_score.json`` (the run's ``auto`` score choice: its mean ROC AUC on held-out images
against pseudo-anomalies, made without labels).

A folder is a run when it holds any file a run writes. Its state is ``complete`` (``COMPLETE``
and readable weights), ``resumable`` (no ``COMPLETE``, an intact checkpoint: ``train --resume``
continues it) or ``damaged`` (anything else; ``problem`` says what), never an exception.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from latentlab.errors import LatentlabError

__all__ = ["COLUMNS", "RunRow", "find_runs", "read_run", "runs_table", "sort_rows"]

MARKERS = ("config.json", "model.safetensors", "metrics.csv", "COMPLETE", "checkpoint")
MAX_DEPTH = 4  # folders below DIR searched for runs


@dataclass
class RunRow:
    """One run folder, as far as it can be read (None: not recorded or unreadable)."""

    run: str
    model: str | None
    parameters: int | None
    data: str | None
    epochs_done: int | None
    epochs_planned: int | None
    best_val_loss: float | None
    anomaly_auc: float | None
    state: str
    auto_auc: float | None = None
    problem: str = ""

    @property
    def epochs(self) -> str:
        done = "?" if self.epochs_done is None else str(self.epochs_done)
        return done + ("" if self.epochs_planned is None else f"/{self.epochs_planned}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = tuple(f.name for f in fields(RunRow))


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Run folders at or below ``root`` (not below a run folder), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise LatentlabError(f"{root}: not a folder; expected a folder of run folders")
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            names = {p.name for p in folder.iterdir()}
        except OSError:
            return
        if names & set(MARKERS):
            found.append(folder)
            return
        if depth < MAX_DEPTH:
            for sub in sorted(folder.iterdir()):
                if sub.is_dir() and not sub.name.startswith("."):
                    walk(sub, depth + 1)

    walk(root, 0)
    return sorted(found)


def _parameters(path: Path) -> int:
    from safetensors import safe_open

    total = 0
    with safe_open(str(path), "np") as f:  # the header only
        for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            total += math.prod(f.get_slice(key).get_shape())
    return total


def _metrics(path: Path) -> tuple[int, float | None]:
    with open(path, newline="", encoding="utf-8") as fp:
        rows = list(csv.DictReader(fp))
    losses = [float(r["val_loss"]) for r in rows if r.get("val_loss") not in (None, "")]
    losses = [v for v in losses if math.isfinite(v)]
    return len(rows), (min(losses) if losses else None)


def _checkpoint_epoch(folder: Path) -> int | None:
    """The epochs the checkpoint in force has finished, or None when there is no intact one."""
    from latentlab.train.checkpoints import _in_force, _problem  # read-only checks (latest_checkpoint cleans up)

    try:
        name = _in_force(folder, warn=False)
    except LatentlabError:
        return None
    if name is None or _problem(folder / name) is not None:
        return None
    state = json.loads((folder / name / "state.json").read_text(encoding="utf-8"))
    return int(state.get("epoch", 0))


def _auc(path: Path) -> float | None:
    data = json.loads(path.read_text(encoding="utf-8"))
    chosen = data.get("name")
    for candidate in data.get("candidates", []):
        if candidate.get("score") == chosen:
            return float(candidate["mean_auc"])
    return None


def _evaluated_auc(path: Path) -> float | None:
    value = json.loads(path.read_text(encoding="utf-8")).get("roc_auc")
    return float(value) if isinstance(value, (int, float)) else None


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def read_run(folder: Path, root: Path) -> RunRow:
    """The row of one run folder; a damaged one says what is wrong in ``problem``."""
    name = str(folder.relative_to(root)) if folder != root else folder.name
    row = RunRow(name, None, None, None, None, None, None, None, "damaged")
    problems: list[str] = []

    def attempt(what: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 (any unreadable file makes the run damaged, never a traceback)
            problems.append(f"{what} unreadable ({type(exc).__name__})")
            return None

    config = attempt("config.json", lambda: json.loads((folder / "config.json").read_text(encoding="utf-8")))
    if isinstance(config, dict):
        model, data, train = (_section(config, k) for k in ("model", "data", "train"))
        row.model = model.get("kind")
        row.data = data.get("spec")
        planned = train.get("epochs") if train.get("budget") is None else None  # a --budget run: not planned
        row.epochs_planned = planned if isinstance(planned, int) else None
    elif config is not None:
        problems.append("config.json is not a JSON object")
    weights = folder / "model.safetensors"
    if weights.is_file():
        row.parameters = attempt("model.safetensors", lambda: _parameters(weights))
    if (folder / "metrics.csv").is_file():
        found = attempt("metrics.csv", lambda: _metrics(folder / "metrics.csv"))
        if found is not None:
            row.epochs_done, row.best_val_loss = found
    if (folder / "evaluation.json").is_file():
        row.anomaly_auc = attempt("evaluation.json", lambda: _evaluated_auc(folder / "evaluation.json"))
    if (folder / "anomaly_score.json").is_file():
        row.auto_auc = attempt("anomaly_score.json", lambda: _auc(folder / "anomaly_score.json"))
    complete = (folder / "COMPLETE").is_file()
    if complete and not weights.is_file():
        problems.append("COMPLETE but no model.safetensors")
    if complete and not problems:
        row.state = "complete"
    elif not complete and isinstance(config, dict) and not problems:
        epoch = attempt("checkpoint", lambda: _checkpoint_epoch(folder / "checkpoint"))
        if epoch is not None:
            row.state = "resumable"
            row.epochs_done = epoch
        elif not problems:
            problems.append("unfinished, with no intact checkpoint to resume")
    row.problem = "; ".join(problems)
    return row


def runs_table(root: str | os.PathLike[str]) -> list[RunRow]:
    """One :class:`RunRow` per run folder under ``root``."""
    root = Path(root)
    return [read_run(folder, root) for folder in find_runs(root)]


def sort_rows(rows: list[RunRow], column: str) -> list[RunRow]:
    """Rows sorted by ``column`` (missing values last); ``-column`` for descending."""
    descending = column.startswith("-")
    name = column.lstrip("-").replace("-", "_")
    if name == "epochs":
        name = "epochs_done"
    if name not in COLUMNS:
        raise LatentlabError(f"--sort {column}: expected one of {', '.join(COLUMNS)} (prefix - for descending)")
    present = [r for r in rows if getattr(r, name) is not None]
    missing = [r for r in rows if getattr(r, name) is None]
    return sorted(present, key=lambda r: getattr(r, name), reverse=descending) + missing
