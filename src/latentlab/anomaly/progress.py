"""A rich progress bar over images for long scoring passes (stderr, so stdout stays clean)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(total: int, what: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a bar with images/s and time left when ``enabled`` and stderr
    is a terminal (piped, rich would leave an empty line behind for each bar and draw nothing)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda n: None
        return
    from latentlab.progress import image_progress

    with image_progress(what) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.update(task, advance=n)
