"""A fork server for the crash test: ``latentlab`` CLI runs that start in milliseconds and die on cue.

Importing torch, lightning and latentlab takes seconds on a busy machine; killing a training
ten times would spend most of the test in imports. This process imports them once (and runs
no torch operation, so no thread pool exists to break across fork), then forks one child per
request. Each child runs the ``latentlab`` command line exactly as the console script does,
with stdout and stderr sent to a log file, and optionally a *kill hook*: on the n-th call of
``os.replace`` (the rename that publishes every file latentlab writes) or ``shutil.rmtree``
whose path contains ``match``, the child SIGKILLs itself, before or after the call. That puts
kills inside a checkpoint write at will; the test adds kills at random moments from outside.

Protocol, one JSON object per line: request ``{"argv": [...], "log": PATH, "hook": {...} | null}``
on stdin; answers ``{"started": PID}`` at once, then ``{"pid": PID, "code": N}`` (exit code) or
``{"pid": PID, "signal": N}`` when the child ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from typing import Any

import lightning_fabric  # noqa: F401  (imported once, here, so that children start at once)
import safetensors.torch  # noqa: F401
import torch  # noqa: F401

import latentlab.cli.app
import latentlab.train.api


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_hook(kind: str, n: int, after: bool, match: str) -> None:
    """SIGKILL this process on the n-th ``kind`` call ('replace' or 'rmtree') whose path has ``match``."""
    module: Any = os if kind == "replace" else shutil
    real: Callable[..., Any] = getattr(module, kind)
    seen = [0]

    def hooked(*args: Any, **kwargs: Any) -> Any:
        target = str(args[1] if kind == "replace" else args[0])
        if match in target:
            seen[0] += 1
            if seen[0] == n and not after:
                _die()
        result = real(*args, **kwargs)
        if match in target and seen[0] == n and after:
            _die()
        return result

    setattr(module, kind, hooked)


def child(request: dict[str, Any]) -> None:
    fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 1
    try:
        hook = request.get("hook")
        if hook:
            install_hook(hook["kind"], hook["n"], hook.get("after", False), hook.get("match", ""))
        latentlab.cli.app.app(request["argv"], prog_name="latentlab")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001  (report anything else as a failed run, with its traceback)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)
        print(json.dumps({"started": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            print(json.dumps({"pid": pid, "signal": os.WTERMSIG(status)}), flush=True)
        else:
            print(json.dumps({"pid": pid, "code": os.WEXITSTATUS(status)}), flush=True)


if __name__ == "__main__":
    main()
