"""Running the explorer: a listening socket (one-line errors when it cannot be opened) and uvicorn.

The socket is bound before uvicorn starts, so "address in use" is a LatentlabError (exit 2 in the
CLI) instead of a log line, and there is no window between checking the port and using it.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from latentlab.errors import LatentlabError

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost': addresses other machines cannot reach."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (port 0: any free port); LatentlabError when it cannot."""
    if not 0 <= port <= 65535:
        raise LatentlabError(f"--port {port}: expected a number from 0 to 65535")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise LatentlabError(f"--host {host}: not an address to listen on ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise LatentlabError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


def serve_forever(app: Any, sock: socket.socket, log_level: str = "warning", torch_threads: int = 1) -> None:
    """Run uvicorn on an already listening socket until Ctrl+C.

    ``torch_threads``: intra-op threads per model call. One each lets concurrent slider updates
    run side by side on separate cores instead of fighting over all of them.
    """
    import torch
    import uvicorn

    torch.set_num_threads(torch_threads)
    config = uvicorn.Config(app, log_level=log_level, access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
