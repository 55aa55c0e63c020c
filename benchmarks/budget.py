"""``--budget``: does a run stop within 5 s of its budget, and does a killed one resume to the same result?

Two runs of the real command line (``latentlab train ... --budget 2m``) on the CelebA subset:

* **A**, uninterrupted: when it stopped (the training seconds it recorded, and the process's
  wall time, which adds start-up and data loading), the steps it planned and took, its
  validation loss;
* **B**, SIGKILLed ``--kill-after`` seconds into training (after its plan is recorded), then
  ``--resume``d: the same, summed over both processes.

Each run plans from its own measured speed and stops on the clock, so A and B are expected to
be close, not equal; bit-for-bit equality of a resumed budgeted run is checked on a simulated
clock in tests/train/test_budget.py.

    python benchmarks/budget.py                      # fcn-1024, --budget 2m, kill after 60 s
    python benchmarks/budget.py --preset hw8-conv --budget 90s --kill-after 40

Runs use one torch thread (``OMP_NUM_THREADS=1``), as the schedule benchmark does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from latentlab.durations import parse_duration

CELEBA = "celeba:/work/shared/data/celeba_subset/celeba_aligned_6000img_200id.tar#train"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def command(out: Path, args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "latentlab.cli.app", "train", "--data", CELEBA, "--preset", args.preset,
            "--budget", args.budget, "--lr-schedule", args.schedule, "--checkpoint-every", "10", "--quiet",
            "--out", str(out)]


def resume(out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "latentlab.cli.app", "train", "--resume", "--quiet", "--out", str(out)],
                   check=True, env=ENV, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def summary(out: Path, wall: float) -> dict[str, Any]:
    ckpt = out / "checkpoint" / json.loads((out / "checkpoint" / "latest.json").read_text())["checkpoint"]
    state = json.loads((ckpt / "state.json").read_text())
    config = json.loads((out / "config.json").read_text())
    last = state["history"][-1]
    return {"training_seconds": round(state["elapsed"], 2), "process_wall_seconds": round(wall, 1),
            "planned_steps": config["train"].get("budget_steps"), "steps": state["step"],
            "stop_reason": state["stop_reason"], "epochs": last["epoch"], "val_loss": last["val_loss"]}


def planned_elapsed(out: Path) -> float | None:
    """Training seconds of the checkpoint in force once the plan is recorded (None before)."""
    try:
        plan = json.loads((out / "config.json").read_text())["train"].get("budget_steps")
        pointer = json.loads((out / "checkpoint" / "latest.json").read_text())["checkpoint"]
        state = json.loads((out / "checkpoint" / pointer / "state.json").read_text())
    except (OSError, ValueError, KeyError):
        return None
    return float(state["elapsed"]) if plan else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fcn-1024")
    parser.add_argument("--budget", default="2m")
    parser.add_argument("--schedule", default="onecycle")
    parser.add_argument("--kill-after", type=float, default=60.0, help="training seconds before the SIGKILL")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()
    budget = parse_duration(args.budget, option="--budget")
    root = Path(args.keep or tempfile.mkdtemp(prefix="budget-"))
    root.mkdir(parents=True, exist_ok=True)
    a, b = root / "A", root / "B"
    for folder in (a, b):
        shutil.rmtree(folder, ignore_errors=True)
    load = os.getloadavg()

    started = time.perf_counter()
    subprocess.run(command(a, args), check=True, env=ENV, stdout=subprocess.DEVNULL)
    result = {"budget_seconds": budget, "A": summary(a, time.perf_counter() - started)}
    print(json.dumps(result["A"]), flush=True)

    started = time.perf_counter()
    proc = subprocess.Popen(command(b, args), env=ENV, stdout=subprocess.DEVNULL)
    while (elapsed := planned_elapsed(b)) is None or elapsed < args.kill_after:
        assert proc.poll() is None, "B ended before it could be killed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wall_b = time.perf_counter() - started + resume(b)
    result["B"] = {**summary(b, wall_b), "killed_at_training_seconds": round(elapsed, 1)}
    result["load_average_at_start"] = [round(x, 1) for x in load]
    print(json.dumps(result, indent=1))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
