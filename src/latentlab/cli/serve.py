"""``latentlab serve``: the latent explorer in the browser (see ``latentlab/web``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latentlab.cli.common import command, console, err_console

app = typer.Typer()


@command(app, "serve")
def serve_cmd(
    run: Annotated[Path, typer.Argument(help="a run folder")],
    data: Annotated[str | None, typer.Option("--data", help="data spec (default: the training data)")] = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on; keep the default unless other "
                                      "machines must reach the explorer")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on (0: any free port)")] = 8000,
) -> None:
    """Explore a trained model in the browser: sliders over its latent, edits, samples, anomaly scores."""
    from latentlab.web.server import is_loopback, open_socket, serve_forever

    if not is_loopback(host):
        err_console.print(f"[bold yellow]warning:[/] --host {host} makes the explorer reachable from "
                          "other machines; it has no login and shows the run's data", highlight=False)
    sock = open_socket(host, port)  # "address in use" before the slow load
    try:
        from latentlab.web.app import create_app

        with console.status(f"loading {run}: encoding its data, fitting the anomaly score"):
            web = create_app(run, data)  # 2-40 s: a spinner on a terminal, nothing when piped
        shown_host = f"[{host}]" if ":" in host else host
        console.print(f"latentlab explorer: http://{shown_host}:{sock.getsockname()[1]}/  (Ctrl+C stops it)",
                      highlight=False)
        serve_forever(web, sock)
    finally:
        sock.close()
