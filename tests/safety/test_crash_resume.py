"""SIGKILL a training at random moments, a dozen times; ``--resume`` must finish it as if nothing happened.

The run is small (a fully connected AE on faces:200 resized to 16x16, 20 epochs of 12 steps, a
checkpoint every 5 steps): long enough that every scheduled kill lands before the run ends, even
on a quiet machine where the steps are fast. The first launch is the real ``python -m latentlab.cli.app train``
in a subprocess, killed soon after its first checkpoint appears. Every later kill hits a
``train --resume`` started by a fork server (``crash_server.py``: the same CLI without paying
for the imports again), either at a random moment or by a hook inside a write: before or after
a rename in the checkpoint folder (between the files of a checkpoint, just before or after the
``latest.json`` pointer moves, while old checkpoints are deleted), or while the final weights,
metrics and COMPLETE marker are written.

After every kill each file in the run folder (temporary names aside) must be complete and
readable. The last ``--resume`` must finish, leave no temporary files, and produce final weights
*equal, bit for bit,* to an uninterrupted run's with the same seed: on the CPU every step is
seeded and data order depends only on (seed, epoch), so exact equality is the right check (all
processes use one intra-op thread, so float sums are taken in the same order). The metrics of
every epoch must match too (wall-clock seconds aside), and so must the log of every step.

The test runs twice: once with the plain options, once with what a resume must restore beyond
weights and optimizer (issue 17): a one-cycle schedule with warm-up, gradient clipping, a moving
average of the weights (the run's weights; the raw ones live in the checkpoint), two batches
accumulated per step (so a checkpoint every 5 steps falls mid-epoch at odd batches) and
``--deterministic``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from latentlab.io import is_temporary

pytestmark = pytest.mark.slow

SERVER = Path(__file__).with_name("crash_server.py")
TRAIN = ["train", "--data", "faces:200", "--resize", "16", "--model", "fcn", "--hidden", "32",
         "--latent-dim", "4", "--epochs", "20", "--batch-size", "16", "--checkpoint-every", "5",
         "--seed", "3", "--quiet"]
OPTIONS = {
    "plain": [],
    "schedule-clip-ema-accumulate": ["--lr-schedule", "onecycle", "--warmup-steps", "8", "--grad-clip", "0.05",
                                     "--ema", "0.9", "--accumulate", "2", "--deterministic"],
}
SIGKILL = int(signal.SIGKILL)
# One intra-op thread in every process: the same float reduction order everywhere (needed for
# bit-equal weights across processes), and no OpenMP threads spinning against each other on a
# busy 2-core machine (fused Adam took 0.17 s a step instead of 1 ms under load with two).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


class ForkServer:
    """Talks to crash_server.py: start a CLI run, get its pid, wait for its end."""

    def __init__(self, log: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=ENV)
        self.log = log

    def start(self, argv: list[str], hook: dict[str, Any] | None = None) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(self.log), "hook": hook}) + "\n")
        self.proc.stdin.flush()
        return int(self._answer()["started"])

    def wait(self) -> dict[str, Any]:
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the fork server died; log:\n{self.log.read_text()[-3000:]}"
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ForkServer]:
    srv = ForkServer(tmp_path / "runs.log")
    yield srv
    srv.close()


# ---- checks -------------------------------------------------------------------------------------

def _read(path: Path) -> None:
    """Raise if ``path`` is not a complete file of its kind."""
    suffix = path.suffix
    if suffix == ".json":
        json.loads(path.read_text())
    elif suffix == ".safetensors":
        load_file(str(path))
    elif suffix == ".csv":
        rows = list(csv.reader(path.read_text().splitlines()))
        assert rows and all(len(r) == len(rows[0]) for r in rows), "ragged CSV"
    elif suffix == ".png":
        with Image.open(path) as img:
            img.load()
    else:
        path.read_bytes()


def check_files(run: Path, context: str) -> list[Path]:
    """Every non-temporary file under ``run`` reads completely; returns the temporary ones."""
    temporaries = []
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        if is_temporary(path):
            temporaries.append(path)
            continue
        try:
            _read(path)
        except Exception as error:  # noqa: BLE001
            raise AssertionError(f"{context}: {path.relative_to(run)} is not readable: {error!r}") from None
    return temporaries


def check_complete(run: Path, context: str) -> None:
    """COMPLETE is written last: when it is there, so is everything a finished run has."""
    if (run / "COMPLETE").exists():
        for name in ("config.json", "model.safetensors", "metrics.csv", "loss.png"):
            assert (run / name).is_file(), f"{context}: COMPLETE but no {name}"
        assert (run / "COMPLETE").read_text().startswith("epochs 20,"), context


def metrics(run: Path, name: str = "metrics.csv") -> list[dict[str, str]]:
    with open(run / name, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


# ---- kill schedule ------------------------------------------------------------------------------

def schedule(rng: random.Random) -> list[dict[str, Any]]:
    """What kills each ``--resume`` after the first launch: a random moment or a hook in a write."""
    ckpt = f"{os.sep}checkpoint{os.sep}"
    kills: list[dict[str, Any]] = [{"timer": rng.uniform(0.05, 0.5)} for _ in range(3)]
    kills += [{"hook": {"kind": "replace", "n": rng.randint(1, 14), "after": rng.random() < 0.5, "match": ckpt}}
              for _ in range(3)]
    kills += [
        {"hook": {"kind": "replace", "n": rng.randint(1, 3), "after": False, "match": "latest.json"}},
        {"hook": {"kind": "replace", "n": rng.randint(1, 3), "after": True, "match": "latest.json"}},
        {"hook": {"kind": "rmtree", "n": rng.randint(1, 3), "after": False, "match": "ckpt-"}},
        {"hook": {"kind": "replace", "n": 1, "after": False, "match": "metrics.csv"}},
    ]
    rng.shuffle(kills)
    # the end of the run: the final weights, then the marker that says the run is complete
    kills += [{"hook": {"kind": "replace", "n": 1, "after": False, "match": f"{os.sep}model.safetensors"}},
              {"hook": {"kind": "replace", "n": 1, "after": False, "match": "COMPLETE"}}]
    return kills


def launch_and_kill_real_cli(run: Path, rng: random.Random, train: list[str]) -> None:
    """The real entry point in a fresh interpreter, SIGKILLed soon after its first checkpoint."""
    proc = subprocess.Popen([sys.executable, "-m", "latentlab.cli.app", *train, "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint" / "latest.json").exists():
        assert proc.poll() is None, "the first launch ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.2))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -SIGKILL, "the first launch finished before it could be killed"


@pytest.mark.parametrize("options", list(OPTIONS))
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(
        tmp_path: Path, server: ForkServer, options: str) -> None:
    seed = int(os.environ.get("LATENTLAB_CRASH_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    where = f"(LATENTLAB_CRASH_SEED={seed}; log {server.log})"
    train = [*TRAIN, *OPTIONS[options]]

    reference = tmp_path / "reference"
    server.start([*train, "--out", str(reference)])
    assert server.wait().get("code") == 0, f"the uninterrupted run failed {where}"

    run = tmp_path / "killed"
    launch_and_kill_real_cli(run, rng, train)
    check_files(run, f"after the first kill {where}")
    killed = 1
    for kill in schedule(rng):
        pid = server.start([*TRAIN[:1], "--resume", "--quiet", "--out", str(run)], kill.get("hook"))
        if "timer" in kill:
            time.sleep(kill["timer"])
            os.kill(pid, signal.SIGKILL)
        end = server.wait()
        assert end.get("signal") == SIGKILL or end.get("code") == 0, f"{kill} ended with {end} {where}"
        killed += end.get("signal") == SIGKILL
        check_files(run, f"after {kill} {where}")
        check_complete(run, f"after {kill} {where}")
    assert killed >= 10, f"only {killed} of the runs were killed {where}"

    server.start([*TRAIN[:1], "--resume", "--quiet", "--out", str(run)])
    assert server.wait().get("code") == 0, f"the last --resume failed {where}"
    assert check_files(run, f"after the last resume {where}") == [], f"temporary files left {where}"
    assert (run / "COMPLETE").is_file()
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in reference.iterdir())

    final, expected = load_file(str(run / "model.safetensors")), load_file(str(reference / "model.safetensors"))
    assert final.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(final[name], value), f"weight {name} differs from the uninterrupted run {where}"
    assert metrics(run) == metrics(reference), f"metrics differ {where}"
    assert metrics(run, "steps.csv") == metrics(reference, "steps.csv"), f"the step log differs {where}"
