"""Peak resident memory while training one epoch on a 1.2 GB uint8 ``.npy`` (100,000 x 64 x 64 x 3).

The file is written in a temporary folder (in chunks: this process never holds it), then a fresh
Python process trains on it with :func:`latentlab.train.api.train_run` exactly as ``latentlab
train --data npy:PATH`` does -- the set is memory-mapped, and only each batch's rows become float.
The child samples its own ``/proc/self/status`` while it trains and reports:

* the peak resident set (``VmHWM``), and its peaks of anonymous memory (``RssAnon``: what the
  process allocated) and of file pages (``RssFile``: mapped pages of the ``.npy`` and of the
  libraries; the kernel can drop clean ones whenever it needs the memory);
* the baseline before the data is opened (Python, torch and latentlab's training modules
  imported; a run on one device imports no Lightning Fabric), and the bytes the
  model, its gradients and Adam's two moments need (16 bytes per parameter);
* ``peak - baseline - model and optimizer``: the goal is at most 1.5 GB.

    python benchmarks/memory.py                    # hw8-fcn, 100,000 images
    python benchmarks/memory.py --images 20000     # a quicker check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GB = 1e9


def write_npy(path: Path, n: int, size: int = 64, chunk: int = 2048) -> None:
    """An (n, size, size, 3) uint8 .npy written chunk by chunk (never all in memory)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import synthetic_images

    block = synthetic_images(chunk, size)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": (n, size, size, 3)})
        for i, start in enumerate(range(0, n, chunk)):
            f.write(np.roll(block, i, axis=2)[:min(chunk, n - start)].tobytes())


def status_kb() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[name] = int(value.split()[0])
    return out


class Sampler(threading.Thread):
    """Peaks of RssAnon and RssFile, sampled every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[str, int] = {}
        self.running = True

    def run(self) -> None:
        while self.running:
            for k, v in status_kb().items():
                self.peaks[k] = max(self.peaks.get(k, 0), v)
            time.sleep(0.02)


def child(npy: Path, out: Path, preset: str, batch_size: int) -> None:
    """Train one epoch on ``npy`` and print one JSON line of measurements."""
    import torch

    from latentlab.allocator import keep_freed_memory
    from latentlab.data.batches import BatchSpec
    from latentlab.models.presets import preset_config
    from latentlab.models.registry import build
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    keep_freed_memory()  # as the `latentlab` entry point does
    torch.manual_seed(0)
    config = preset_config(preset)
    n_params = sum(p.numel() for p in build(config).parameters())
    baseline = status_kb()
    sampler = Sampler()
    sampler.start()
    t0 = time.perf_counter()
    from latentlab.data.sources import load_source

    data = load_source(f"npy:{npy}")
    opened = status_kb()
    train_run(config, data, BatchSpec(), TrainConfig(epochs=1, batch_size=batch_size, val_fraction=0.05),
              out, progress=False)
    seconds = time.perf_counter() - t0
    sampler.running = False
    sampler.join()
    final = status_kb()
    print(json.dumps({"baseline_kb": baseline, "opened_kb": opened, "peaks_kb": sampler.peaks, "final_kb": final,
                      "n_params": n_params, "n_images": len(data), "memmap": type(data.images).__name__,
                      "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--preset", default="hw8-fcn")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--child", nargs=2, metavar=("NPY", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.preset, args.batch_size)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import machine_line, uptime

    print(f"# peak memory, one epoch of {args.preset} on {args.images:,} x 64 x 64 x 3 uint8\n"
          f"{uptime()}\n{machine_line()}")
    with tempfile.TemporaryDirectory(prefix="latentlab-memory-") as tmp:
        npy = Path(tmp) / "big.npy"
        t0 = time.perf_counter()
        write_npy(npy, args.images)
        print(f"wrote {npy.stat().st_size / GB:.2f} GB in {time.perf_counter() - t0:.0f} s")
        done = subprocess.run([sys.executable, __file__, "--child", str(npy), str(Path(tmp) / "run"),
                               "--preset", args.preset, "--batch-size", str(args.batch_size)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"training failed:\n{done.stderr[-3000:]}")
        report(json.loads(done.stdout.strip().splitlines()[-1]), npy.stat().st_size)
    print(uptime())


def report(m: dict, file_bytes: int) -> None:
    kb = 1024
    base, peaks = m["baseline_kb"], m["peaks_kb"]
    model_opt = 16 * m["n_params"]  # weights, gradients, Adam's exp_avg and exp_avg_sq (float32)
    peak = max(peaks.get("VmHWM", 0), m["final_kb"]["VmHWM"]) * kb
    over = peak - base["VmRSS"] * kb - model_opt
    print(f"images: {m['n_images']:,} ({file_bytes / GB:.2f} GB file, held as {m['memmap']}); "
          f"one epoch in {m['seconds']:.0f} s")
    print(f"baseline RSS (imports, before the data): {base['VmRSS'] * kb / GB:.2f} GB")
    print(f"model + gradients + Adam state: {model_opt / GB:.3f} GB ({m['n_params']:,} parameters)")
    print(f"peak RSS (VmHWM): {peak / GB:.2f} GB; peak anonymous {peaks['RssAnon'] * kb / GB:.2f} GB "
          f"(baseline {base['RssAnon'] * kb / GB:.2f}), peak file-backed {peaks['RssFile'] * kb / GB:.2f} GB "
          f"(baseline {base['RssFile'] * kb / GB:.2f})")
    anon_over = peaks["RssAnon"] * kb - base["RssAnon"] * kb - model_opt
    print(f"peak - baseline - model/optimizer: {over / GB:.2f} GB (goal <= 1.5 GB); "
          f"anonymous memory alone: {anon_over / GB:.2f} GB")


if __name__ == "__main__":
    main()
