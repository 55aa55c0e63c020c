"""Start-up as a user feels it: whole processes, timed from the moment they are started.

* ``latentlab --help`` and ``latentlab train --help``: process start to exit.
* ``python -c "import torch"``: the floor under any command that trains (same run, for scale).
* A training process (``latentlab train --preset fcn-1024`` on a memory-mapped ``.npy`` of
  generated 64x64x3 images): process start to the end of its first optimizer step. The process
  runs the ``latentlab`` command line under ``marks.py``, which only adds a hook that reads the
  monotonic clock (the same clock in every process) when the first step ends and then ends the
  process. The parent reads the clock just before it starts the child.

The commands take turns, ``--runs`` rounds after one warm-up round (the page cache warm, as
for a user's second command); it prints each one's median, min and max.

    python benchmarks/startup.py                     # ~1-2 min on 2 cores
    python benchmarks/startup.py --accelerator cuda  # the first step on a GPU
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_SCRIPT = Path(sys.executable).with_name("latentlab")  # the console script beside this Python
LATENTLAB = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "latentlab.cli.app"]


def timed(cmd: list[str]) -> float:
    """Seconds from starting ``cmd`` to its exit."""
    t0 = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0


def first_step(data: Path, out: Path, accelerator: str) -> float:
    """Seconds from starting a training process to the end of its first step."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(HERE / "marks.py"), "--stop-after-first-step",
           "train", "--data", f"npy:{data}", "--out", str(out), "--preset", "fcn-1024", "--epochs", "1",
           "--batch-size", "128", "--val-fraction", "0", "--accelerator", accelerator]
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("MARK first_step ")]
    if not lines:
        raise SystemExit(f"the training process reached no step:\n{done.stdout}\n{done.stderr}")
    return float(lines[-1].split()[2]) - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed rounds after one warm-up round")
    parser.add_argument("--images", type=int, default=8192, help="images in the generated .npy")
    parser.add_argument("--accelerator", default="cpu", help="cpu or cuda, for the training process")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    import numpy as np
    from common import synthetic_images

    tmp = Path(tempfile.mkdtemp(prefix="latentlab-startup-"))
    try:
        data = tmp / "images.npy"
        np.save(data, synthetic_images(args.images))
        commands = {
            "latentlab --help": lambda: timed([*LATENTLAB, "--help"]),
            "latentlab train --help": lambda: timed([*LATENTLAB, "train", "--help"]),
            'python -c "import torch"': lambda: timed([sys.executable, "-c", "import torch"]),
            "train fcn-1024: start to first step": lambda: first_step(data, tmp / "run", args.accelerator),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        print(f"before: {os.getloadavg()[0]:.2f} load (1 min), {os.cpu_count()} CPUs")
        for round_ in range(args.runs + 1):
            for name, run in commands.items():
                seconds = run()
                if round_:  # round 0 is the warm-up
                    times[name].append(seconds)
        print(f"after: {os.getloadavg()[0]:.2f} load (1 min); {args.runs} rounds after 1 warm-up\n")
        print("| command | median s | min s | max s |")
        print("| --- | --- | --- | --- |")
        for name, values in times.items():
            print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
