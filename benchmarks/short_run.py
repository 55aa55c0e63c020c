"""A short training run as a user times it: whole processes, from start to exit.

    latentlab train --data npy:images.npy --out RUN --preset fcn-1024 --epochs 2 --batch-size 128 --val-fraction 0

against the course sample's script doing the same (``course_loop.py``: same layers, data, batch
size, epochs, Adam at 1e-3, its saves), on ``--images`` generated 64x64x3 images in a ``.npy``
(8,192 by default: 64 steps an epoch). The two take turns, ``--runs`` pairs after one warm-up
pair, and each pair gives a ratio (the course script's seconds over latentlab's: images/s of
latentlab over the course's, the same images on both sides), so that a change of the machine's
load between pairs does not enter a ratio. It prints the median and range of each.

Then ``--breakdown`` more latentlab runs under ``marks.py`` (the same command with timing
hooks) say where the process's time goes: start to the first step (imports, data, model,
setup, the first step), the steps, the training thread's checkpoint time, the final wait for
the checkpoint writer, the loss plot, the final weights and run files, and the interpreter's exit.

    python benchmarks/short_run.py                 # ~6 min on 2 quiet cores
    python benchmarks/short_run.py --device cuda   # both on the GPU
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


def run(cmd: list[str]) -> tuple[float, float, dict[str, list[float]]]:
    """(wall seconds, CPU seconds, marks) of one process: wall from start to exit; marks as
    seconds since its start (``MARK name t``) or durations, as ``marks.py`` prints them."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}\n{err}")
    usage = _children_cpu()
    marks: dict[str, list[float]] = {}
    for line in out.splitlines():
        if line.startswith("MARK "):
            _, name, value = line.split()
            seconds = float(value)
            marks.setdefault(name, []).append(seconds if name in DURATIONS else seconds - t0)
    return wall, usage, marks


DURATIONS = {"checkpoint", "checkpoint_wait", "loss_plot"}
_cpu_seen = 0.0


def _children_cpu() -> float:
    """CPU seconds (user + system) of the child that just ended."""
    global _cpu_seen
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    cpu, _cpu_seen = total - _cpu_seen, total
    return cpu


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5, help="timed pairs after one warm-up pair")
    parser.add_argument("--breakdown", type=int, default=1, help="latentlab runs under marks.py, after the pairs")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both sides)")
    parser.add_argument("--precision", default=None,
                        help="latentlab's --precision (e.g. bf16-mixed on a CPU with native bf16); the course "
                             "script stays float32, as the course runs it")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    import numpy as np
    from common import synthetic_images

    tmp = Path(tempfile.mkdtemp(prefix="latentlab-short-run-"))
    try:
        data = tmp / "images.npy"
        np.save(data, synthetic_images(args.images))
        common = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
        ours = ["train", "--data", f"npy:{data}", "--out", str(tmp / "run"), "--preset", "fcn-1024", *common,
                "--val-fraction", "0", "--accelerator", args.device,
                *(["--precision", args.precision] if args.precision else [])]
        course = [sys.executable, str(HERE / "course_loop.py"), "--data", str(data), "--out", str(tmp / "course"),
                  *common, "--device", args.device, "--marks"]
        images = args.images // args.batch_size * args.batch_size * args.epochs  # what each side trains on
        print(f"{args.images} images, {args.epochs} epochs of batch {args.batch_size}: {images} images trained; "
              f"load {os.getloadavg()[0]:.2f} (1 min) before, {os.cpu_count()} CPUs")
        print(f"latentlab: {' '.join(['latentlab', *ours])}")
        print(f"course:    {' '.join(['python', *course[1:]])}\n")
        walls: dict[str, list[float]] = {"course": [], "latentlab": []}
        cpus: dict[str, list[float]] = {"course": [], "latentlab": []}
        steps: dict[str, list[float]] = {"course": []}
        ratios: list[float] = []
        for pair in range(args.runs + 1):
            shutil.rmtree(tmp / "run", ignore_errors=True)
            c_wall, c_cpu, c_marks = run(course)
            l_wall, l_cpu, _ = run([*LATENTLAB, *ours])
            print(f"  pair {pair}{' (warm-up)' if pair == 0 else ''}: course {c_wall:.2f} s, latentlab {l_wall:.2f} s, "
                  f"ratio {c_wall / l_wall:.2f}  [load {os.getloadavg()[0]:.2f}]", flush=True)
            if pair:
                walls["course"].append(c_wall)
                walls["latentlab"].append(l_wall)
                cpus["course"].append(c_cpu)
                cpus["latentlab"].append(l_cpu)
                ratios.append(c_wall / l_wall)
                first, last = c_marks["first_step"][0], c_marks["last_step"][0]
                steps["course"].append((images - args.batch_size) / (last - first))
        print("\n| whole process | seconds, median (range) | images/s | CPU seconds |")
        print("| --- | --- | --- | --- |")
        for side in walls:
            rate = images / statistics.median(walls[side])
            print(f"| {side} | {med(walls[side])} | {rate:,.0f} | {med(cpus[side])} |")
        print(f"| **latentlab / course, images/s, pair by pair** | **{med(ratios)}** | | |")
        print(f"\ncourse script's steps alone (after its first): {statistics.median(steps['course']):,.0f} images/s")
        breakdown(args, ours, images, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def breakdown(args: argparse.Namespace, ours: list[str], images: int, tmp: Path) -> None:
    if args.breakdown < 1:
        return
    rows: dict[str, list[float]] = {}
    for _ in range(args.breakdown):
        shutil.rmtree(tmp / "run", ignore_errors=True)
        wall, _, marks = run([sys.executable, str(HERE / "marks.py"), *ours])
        first, last = marks["first_step"][0], marks["last_step"][0]
        steps_rate = (images - args.batch_size) / (last - first)
        parts = {
            "start to the end of the first step": first,
            "steps 2 to last": last - first,
            "  of which the training thread's checkpoint saves": sum(marks.get("checkpoint", [])),
            "after the last step: wait for the last checkpoint write": sum(marks.get("checkpoint_wait", [])),
            "after the last step: loss plot": sum(marks.get("loss_plot", [])),
            "after the last step: the rest of fit": marks["fit_end"][0] - last - sum(marks.get("checkpoint_wait", []))
            - sum(marks.get("loss_plot", [])),
            "after fit: best weights, model.safetensors, run files": marks["exit"][0] - marks["fit_end"][0],
            "after Python's last line: the interpreter's exit": wall - marks["exit"][0],
            "whole process": wall,
            "fixed cost: whole process - images / step rate": wall - images / steps_rate,
            "step rate after the first step (images/s)": steps_rate,
        }
        for name, value in parts.items():
            rows.setdefault(name, []).append(value)
    print(f"\nlatentlab, where the time goes ({args.breakdown} run(s) under marks.py; medians, seconds):\n")
    print("| part | seconds |")
    print("| --- | --- |")
    for name, values in rows.items():
        value = statistics.median(values)
        print(f"| {name} | {value:,.0f} |" if "images/s" in name else f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
