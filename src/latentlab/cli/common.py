"""What every CLI command shares: one-line errors with exit 2, option parsing helpers, consoles."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from latentlab.errors import LatentlabError

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
err_console = Console(stderr=True)

OVERWRITE = typer.Option(False, "--overwrite", help="replace existing output files")


def fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register ``fn`` on ``app``; a LatentlabError becomes one line on stderr and exit code 2.
    Image sets it decodes show a bar on a terminal (not with ``--quiet``: :func:`latentlab.progress.decode_bar`)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            from latentlab.progress import decode_bar

            try:
                with decode_bar(enabled=False if kw.get("quiet") else None):  # cold image sets: a bar on a terminal
                    return fn(*args, **kw)
            except LatentlabError as exc:
                raise fail(str(exc)) from None
            except KeyboardInterrupt:
                err_console.print("interrupted; a training run continues with --resume")
                raise typer.Exit(130) from None

        app.command(name, **kwargs)(wrapper)
        return fn

    return decorate


def parse_ints(text: str | None, what: str) -> list[int] | None:
    """'0,5,9' -> [0, 5, 9]; also ranges '0-3'."""
    if text is None:
        return None
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        try:
            if "-" in part[1:]:
                a, b = part[0] + part[1:].split("-", 1)[0], part[1:].split("-", 1)[1]
                out += list(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise LatentlabError(f"{what} '{text}': expected integers like 0,5,9 or 0-3") from None
    if not out:
        raise LatentlabError(f"{what} '{text}': expected at least one integer")
    return out


def parse_floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise LatentlabError(f"{what} '{text}': expected numbers like -2,-1,0,1,2") from None
    if not values:
        raise LatentlabError(f"{what} '{text}': expected at least one number")
    return values


def check_out_file(path: Path, overwrite: bool) -> Path:
    """``path`` when it can be written: not a folder, and not there unless ``overwrite``."""
    from latentlab.outputs import refuse_existing

    refuse_existing([path], overwrite)
    return path
