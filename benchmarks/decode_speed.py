"""Preparing a JPEG set for training: the CelebA tar's train split (4,800 JPEGs of 178x218) at
64x64, decoded, centre-cropped to 140 and resized, as ``latentlab train --data "tar:...#FOLDER"
--center-crop 140 --resize 64`` does before its first step.

Each measurement is one fresh process, timing the loading call alone (its imports done first):

* ``now, no cache``: :func:`latentlab.data.rule.load_prepared` with ``LATENTLAB_NO_CACHE=1``
  (JPEG draft-mode DCT scaling, the crop and resize while decoding, threads);
* with ``--old-src DIR`` (the ``src`` folder of an older checkout, e.g. a ``git worktree`` of
  commit dca133b), the older code on the same files, two ways: ``old, full decode + crop +
  resize`` -- what it did for this rule: ``load_source(spec)`` decoded every file at full size,
  then the centre crop and ``resize_uint8`` (run here on the whole set at once, where training
  did it per batch) -- and ``old, decoded at 64`` -- ``load_source(spec, resize=(64, 64))``,
  the only rule it decoded at reduced size (no crop: the whole frame squeezed to 64x64, less
  work than the rule asks);
* the decoded-set cache: ``load_prepared`` with a fresh ``LATENTLAB_CACHE`` folder twice, in two
  processes: the first decodes and writes the cache, the second (a user's second command on the
  same data) checks and memory-maps it.

The sides take turns, ``--trials`` rounds; ratios are taken within a round.

    git worktree add /tmp/latentlab-dca133b dca133b
    python benchmarks/decode_speed.py --old-src /tmp/latentlab-dca133b/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CELEBA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_subset" / "celeba_aligned_6000img_200id.tar"
DEFAULT_DATA = f"tar:{CELEBA}#Datasets/train_dataset"


def child(kind: str, data: str, crop: int, size: int) -> None:
    """One measurement in this fresh process; prints one JSON line."""
    import numpy as np

    if kind == "now":
        from latentlab.data.batches import BatchSpec
        from latentlab.data.rule import load_prepared

        t0 = time.perf_counter()
        images = load_prepared(data, BatchSpec(center_crop=crop, resize=(size, size))).images
        n = len(images)
    elif kind == "old-full":
        from latentlab.data.batches import resize_uint8
        from latentlab.data.sources import load_source

        t0 = time.perf_counter()
        full = load_source(data).images  # (N, 218, 178, 3)
        h, w = full.shape[1:3]
        top, left = (h - crop) // 2, (w - crop) // 2
        images = resize_uint8(full[:, top:top + crop, left:left + crop], (size, size))
        n = len(images)
    else:  # old-64
        from latentlab.data.sources import load_source

        t0 = time.perf_counter()
        images = load_source(data, resize=(size, size)).images
        n = len(images)
    seconds = time.perf_counter() - t0
    assert images.shape[1:] == (size, size, 3) and images.dtype == np.uint8, images.shape
    print(json.dumps({"seconds": seconds, "images": n}))


def measure(kind: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", kind, "--data", args.data, "--center-crop", str(args.center_crop),
           "--resize", str(args.resize)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **env}).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--center-crop", type=int, default=140)
    parser.add_argument("--resize", type=int, default=64)
    parser.add_argument("--old-src", type=Path, help="src/ of an older checkout to compare with")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--child", choices=["now", "old-full", "old-64"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.center_crop, args.resize)
        return

    no_cache = {"LATENTLAB_NO_CACHE": "1"}
    sides: dict[str, tuple[str, dict[str, str]]] = {"now, no cache": ("now", no_cache)}
    if args.old_src:
        old = {"PYTHONPATH": str(args.old_src.resolve()), **no_cache}
        sides["old, full decode + crop + resize"] = ("old-full", old)
        sides["old, decoded at 64 (no crop)"] = ("old-64", old)
    print(f"{args.data}, centre crop {args.center_crop}, resize {args.resize}; {args.trials} trials; "
          f"load {os.getloadavg()[0]:.2f} (1 min) before, {os.cpu_count()} CPUs")
    rates: dict[str, list[float]] = {name: [] for name in sides}
    ratios: dict[str, list[float]] = {name: [] for name in sides if name != "now, no cache"}
    cache: dict[str, list[float]] = {"first command (decodes, writes the cache)": [],
                                     "second command (checks, memory-maps the cache)": []}
    n = 0
    for trial in range(args.trials):
        for name, (kind, env) in sides.items():
            result = measure(kind, args, env)
            n = int(result["images"])
            rates[name].append(result["images"] / result["seconds"])
        for name in ratios:
            ratios[name].append(rates["now, no cache"][-1] / rates[name][-1])
        with tempfile.TemporaryDirectory() as tmp:
            for step in cache:
                cache[step].append(measure("now", args, {"LATENTLAB_CACHE": tmp})["seconds"])
        print(f"  trial {trial + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} img/s" for k, v in rates.items())
              + f"; cache {cache[next(iter(cache))][-1]:.2f} s then {cache[list(cache)[1]][-1]:.3f} s"
              + f"  [load {os.getloadavg()[0]:.2f}]", flush=True)
    print(f"\n{n} images\n")
    print("| preparing the set | images/s, median (range) | now / this, pair by pair |")
    print("| --- | --- | --- |")
    for name, values in rates.items():
        ratio = ratios.get(name)
        shown = f"{statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})" if ratio else ""
        print(f"| {name} | {statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f}) | {shown} |")
    print("\n| with the decoded-set cache | seconds in load_prepared, median (range) |")
    print("| --- | --- |")
    for name, values in cache.items():
        print(f"| {name} | {statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f}) |")


if __name__ == "__main__":
    main()
