"""The ``latentlab`` command: one thin module per command group, registered here."""

from __future__ import annotations

import importlib
import os

import typer

app = typer.Typer(
    name="latentlab",
    help="Train autoencoders on images and look inside them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines ``app`` (a typer.Typer) whose commands are merged into the top level.
COMMAND_MODULES = [
    "latentlab.cli.demo",
    "latentlab.cli.train",
    "latentlab.cli.models",
    "latentlab.cli.inspect",
    "latentlab.cli.latent",
    "latentlab.cli.explore",
    "latentlab.cli.serve",
    "latentlab.cli.anomaly",
    "latentlab.cli.compare",
    "latentlab.cli.report",
    "latentlab.cli.disentangle",
    "latentlab.cli.export",
    "latentlab.cli.runs",
    "latentlab.cli.data",
]

for _name in COMMAND_MODULES:
    app.registered_commands += importlib.import_module(_name).app.registered_commands


@app.callback()
def _options(
    ctx: typer.Context,
    no_cache: bool = typer.Option(False, "--no-cache",
                                  help="neither read nor write the cache of decoded image sets (folder, tar, celeba)"),
) -> None:
    """Train autoencoders on images and look inside them."""
    if no_cache:
        before = os.environ.get("LATENTLAB_NO_CACHE")
        os.environ["LATENTLAB_NO_CACHE"] = "1"  # read by latentlab.data.cache for this command
        ctx.call_on_close(lambda: _restore("LATENTLAB_NO_CACHE", before))


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _click_error(name: str) -> type[BaseException]:
    """click's exception classes, whether typer uses click or its vendored copy."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


def _one_line_warnings() -> None:
    """latentlab's own warnings as ``warning: MESSAGE`` on one line; other packages' as Python writes them."""
    import warnings

    python_format = warnings.formatwarning

    def format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                       line: str | None = None) -> str:
        if "latentlab" in filename.replace("\\", "/").split("/"):
            return f"warning: {message}\n"
        return python_format(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning


def main(argv: list[str] | None = None) -> None:
    """The console entry point: usage errors become one line too (exit 2), never a traceback."""
    import sys

    from latentlab.allocator import keep_freed_memory
    from latentlab.cli.common import err_console

    keep_freed_memory()
    if argv is None:  # the `latentlab` process (the tests call main(argv) inside theirs)
        _one_line_warnings()
    usage_error = _click_error("UsageError")
    try:
        code = app(args=argv, standalone_mode=False)
    except usage_error as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help())
            sys.exit(0)
        where = ctx.command_path if ctx is not None else "latentlab"
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        err_console.print(f"[bold red]error:[/] {where}: {message} (see '{where} --help')",
                          highlight=False, soft_wrap=True)
        code = 2
    except typer.Abort:
        code = 130
    if argv is None:  # the `latentlab` process ends now (the tests call main(argv) inside theirs)
        import gc

        gc.freeze()  # its exit need not search torch's objects for cycles again: ~1 CPU-second after training
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
