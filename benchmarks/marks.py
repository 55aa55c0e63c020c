"""Run the ``latentlab`` command line in this process and print when each phase of a training
run ends, for the benchmarks that time whole processes (``startup.py``, ``short_run.py``).

    python benchmarks/marks.py [--stop-after-first-step] train --data npy:... --out ...

Each mark is a line ``MARK <name> <seconds>`` on stdout, the seconds read from the monotonic
clock, which every process on the machine shares: the parent reads it just before it starts
this process, and the difference is the time since the process was started, interpreter start
included. The hooks patch latentlab's modules right after the command imports them (an import
hook), so nothing is imported earlier or in another order than ``latentlab`` itself does; this
file imports only the standard library before the command runs. Marks:

* ``first_step``, ``last_step``: the end of the first and the last optimizer step;
* ``checkpoint``: the seconds the training thread spent in each checkpoint save (a duration);
* ``checkpoint_wait``: the seconds it waited for the writer thread at the end of ``fit`` (a duration);
* ``loss_plot``: the seconds the loss plot took (a duration);
* ``fit_end``, ``exit``: when ``Trainer.fit`` returned, and the process's last moment in Python.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def mark(name: str, value: float | None = None) -> None:
    print(f"MARK {name} {time.monotonic() if value is None else value:.6f}", flush=True)


def timed(owner: Any, attr: str, name: str) -> None:
    """Print the duration of every call of ``owner.attr`` as mark ``name``."""
    inner = getattr(owner, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.monotonic()
        try:
            return inner(*args, **kwargs)
        finally:
            mark(name, time.monotonic() - t0)

    setattr(owner, attr, wrapper)


def patch_trainer(module: Any, stop_after_first_step: bool) -> None:
    trainer = module.Trainer
    step, fit, checkpoint = trainer._step, trainer.fit, trainer._checkpoint
    steps = {"n": 0, "last": 0.0}

    def _step(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = step(self, *args, **kwargs)
        steps["n"] += 1
        steps["last"] = time.monotonic()
        if steps["n"] == 1:
            mark("first_step")
            if stop_after_first_step:
                os._exit(0)
        return out

    def _fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fit(self, *args, **kwargs)
        finally:
            mark("last_step", steps["last"])
            mark("fit_end")

    def _checkpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.monotonic()
        try:
            return checkpoint(self, *args, **kwargs)
        finally:
            mark("checkpoint", time.monotonic() - t0)

    trainer._step, trainer.fit, trainer._checkpoint = _step, _fit, _checkpoint


def patch_checkpoints(module: Any) -> None:
    writer = module.CheckpointWriter
    wait = writer.wait

    def _wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.monotonic()
        try:
            return wait(self, *args, **kwargs)
        finally:  # the waits inside save() are part of the "checkpoint" mark already
            if not getattr(self, "_in_save", False):
                mark("checkpoint_wait", time.monotonic() - t0)

    save = writer.save

    def _save(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._in_save = True
        try:
            return save(self, *args, **kwargs)
        finally:
            self._in_save = False

    writer.wait, writer.save = _wait, _save


def patch_plots(module: Any) -> None:
    timed(module.LossPlot, "on_fit_end", "loss_plot")


class AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``patches[name](module)`` right after ``name`` is imported."""

    def __init__(self, patches: dict[str, Callable[[Any], None]]) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.patches:
            return None
        patch = self.patches.pop(name)
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        assert spec is not None and spec.loader is not None
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            patch(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def main(argv: list[str]) -> None:
    stop = argv[:1] == ["--stop-after-first-step"]
    argv = argv[1:] if stop else argv
    sys.meta_path.insert(0, AfterImport({
        "latentlab.train.trainer": lambda m: patch_trainer(m, stop),
        "latentlab.train.checkpoints": patch_checkpoints,
        "latentlab.viz.plots": patch_plots,
    }))
    atexit.register(lambda: mark("exit"))
    from latentlab.cli.app import main as latentlab

    sys.argv = ["latentlab", *argv]
    latentlab()  # as the console script calls it (with argv=None it also readies the process's exit)


if __name__ == "__main__":
    main(sys.argv[1:])
