"""``latentlab serve``: binds loopback by default, warns otherwise, one-line errors with exit 2."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.web.server import is_loopback, open_socket


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run ``serve`` without loading a model or blocking: record what would be served where."""
    seen: dict[str, Any] = {}

    def fake_create_app(run: Path, data: str | None) -> str:
        seen["run"], seen["data"] = run, data
        return "app"

    def fake_serve(web: Any, sock: socket.socket, **_: Any) -> None:
        seen["app"], seen["address"] = web, sock.getsockname()

    monkeypatch.setattr("latentlab.web.app.create_app", fake_create_app)
    monkeypatch.setattr("latentlab.web.server.serve_forever", fake_serve)
    return seen


def test_serve_binds_loopback_by_default(served: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["serve", "runs/x", "--port", "0", "--data", "faces:8"])
    assert result.exit_code == 0, result.output
    assert served["address"][0] == "127.0.0.1" and served["address"][1] > 0
    assert served["run"] == Path("runs/x") and served["data"] == "faces:8" and served["app"] == "app"
    assert "warning" not in result.output and f":{served['address'][1]}/" in result.output


def test_serve_warns_when_host_is_not_loopback(served: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["serve", "runs/x", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "0.0.0.0" in result.output
    assert served["address"][0] == "0.0.0.0"


def test_serve_port_in_use_is_one_line_exit_2(served: dict[str, Any]) -> None:
    busy = open_socket("127.0.0.1", 0)
    try:
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "runs/x", "--port", str(port)])
    finally:
        busy.close()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"--port {port}" in result.output and "app" not in served


@pytest.mark.parametrize("args", [["--port", "70000"], ["--host", "no such host.invalid", "--port", "0"]])
def test_serve_bad_address_is_exit_2(served: dict[str, Any], args: list[str]) -> None:
    result = CliRunner().invoke(app, ["serve", "runs/x", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output and "error" in result.output


def test_serve_missing_run_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nope"), "--port", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "nope" in result.output


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True),
                                            ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                            ("::", False), ("192.168.1.4", False), ("example.org", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
