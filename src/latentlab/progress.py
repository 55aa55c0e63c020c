"""Progress of decoding image files, shown only where a caller asks for it.

Decoding a cold ``folder:``, ``tar:`` or ``celeba:`` set (:func:`latentlab.data.decode.decode_images`)
reports ``(done, total)`` images through :func:`report_decode`; nothing is called unless the work
runs inside :func:`decode_progress`, so library calls stay quiet. The CLI wraps every command in
:func:`decode_bar` (see ``latentlab.cli.common.command``): a bar on stderr when it is a terminal
and the command was not given ``--quiet``.

Light on purpose (stdlib only; rich is imported when a bar is first drawn): the CLI imports it
before it knows whether a command decodes anything.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["ProgressFn", "TerminalBar", "decode_bar", "decode_progress", "report_decode"]

ProgressFn = Callable[[int, int], None]  # (images done, total)

_on_decode: ContextVar[ProgressFn | None] = ContextVar("latentlab_decode_progress", default=None)


@contextlib.contextmanager
def decode_progress(callback: ProgressFn | None) -> Iterator[None]:
    """While inside (in this thread), every set decoded from image files calls ``callback(done,
    total)``: once with 0 before the first image, after each chunk, and with ``total`` at the
    end. ``None`` silences an outer callback."""
    token = _on_decode.set(callback)
    try:
        yield
    finally:
        _on_decode.reset(token)


def report_decode(done: int, total: int) -> None:
    """Called by the decoder; does nothing outside :func:`decode_progress`."""
    callback = _on_decode.get()
    if callback is not None:
        callback(done, total)


class TerminalBar:
    """A ``(done, total)`` callback that draws a transient rich bar on stderr when it is a
    terminal. The bar opens on the first call, closes when ``done`` reaches ``total`` (a later
    call with less opens a new one: one bar per decoded set) or on :meth:`close`. Sets of fewer
    than ``min_total`` images (a web upload) draw nothing. Safe to call from several threads."""

    def __init__(self, what: str, enabled: bool | None = None, min_total: int = 64) -> None:
        self.what = what
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.min_total = min_total
        self._bar: Any = None  # rich.progress.Progress while drawn
        self._task: Any = None
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.min_total:
            return
        with self._lock:
            if self._bar is None:
                if done >= total:
                    return  # nothing left to show
                self._open(total)
            self._bar.update(self._task, completed=done, total=total)
        if done >= total:
            self.close()

    def _open(self, total: int) -> None:
        self._bar = image_progress(self.what)
        self._bar.start()
        self._task = self._bar.add_task(self.what, total=total)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = self._task = None


def image_progress(what: str) -> Any:
    """A rich ``Progress`` over images on stderr, gone when done: ``what``, the bar, done/total,
    time spent and time left (rich is imported here, not when this module is)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
               TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=Console(stderr=True), transient=True)


@contextlib.contextmanager
def decode_bar(enabled: bool | None = None) -> Iterator[None]:
    """A :class:`TerminalBar` for every set decoded inside (``enabled`` None: when stderr is a
    terminal; False: silent, as for ``--quiet``)."""
    bar = TerminalBar("decoding", enabled)
    with decode_progress(bar if bar.enabled else None):
        try:
            yield
        finally:
            bar.close()
