"""Peak resident memory of loading a JPEG set under an input rule: held at the model's size?

The set stage of the input rule (:func:`latentlab.data.rule.load_prepared`) cuts and resizes
each file of a ``folder:`` or ``tar:`` source while it is decoded, so the set should take no
more memory than the uint8 array of model-size images it ends as. Measured on the CelebA tar's
train split (4,800 JPEGs of 178x218) with ``--center-crop 140 --resize 64`` by default:

* a fresh Python process that only imports torch and latentlab (with the modules
  ``load_prepared`` uses) and reports its peak RSS (``VmHWM``): the baseline;
* a fresh process with the same imports that then calls ``load_prepared`` and reports its peak
  RSS and the decoding rate (images/s of the whole call: listing the tar, reading, decoding,
  cropping, resizing);
* ``(peak - baseline) / array size``: the goal is at most 1 (the array plus the baseline).

Each is run twice: as a Python user's script, and with the ``latentlab`` command's malloc
settings (:func:`latentlab.allocator.keep_freed_memory`, which ``latentlab train`` turns on).

    python benchmarks/prepare_memory.py
    python benchmarks/prepare_memory.py --data "tar:PATH#FOLDER" --center-crop 140 --resize 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import child_result, machine_line, uptime

CELEBA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_subset" / "celeba_aligned_6000img_200id.tar"
DEFAULT_DATA = f"tar:{CELEBA}#Datasets/train_dataset"
MB = 1e6


def status_kb() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[name] = int(value.split()[0])
    return out


def child(data: str, center_crop: int | None, resize: int, load: bool, cli_malloc: bool) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    import torch  # noqa: F401  (the baseline's imports: torch, latentlab and what load_prepared uses)

    import latentlab  # noqa: F401
    from latentlab.allocator import keep_freed_memory
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import load_prepared
    from latentlab.data.sources import load_source  # noqa: F401

    if cli_malloc:
        keep_freed_memory()
    result: dict[str, object] = {"before_kb": status_kb()}
    if load:
        rule = BatchSpec(center_crop=center_crop, resize=(resize, resize))
        t0 = time.perf_counter()
        prepared = load_prepared(data, rule)
        result.update(seconds=time.perf_counter() - t0, shape=list(prepared.images.shape),
                      nbytes=int(prepared.images.nbytes), batch=str(prepared.batch))
    result["after_kb"] = status_kb()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA, help="a folder: or tar: data spec")
    parser.add_argument("--center-crop", type=int, default=140)
    parser.add_argument("--resize", type=int, default=64)
    parser.add_argument("--child", choices=["baseline", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--cli-malloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, args.center_crop, args.resize, args.child == "load", args.cli_malloc)
        return
    print(f"# peak RSS of load_prepared({args.data!r}, center_crop={args.center_crop}, resize={args.resize})\n"
          f"{uptime()}\n{machine_line()}")
    common = ["--data", args.data, "--center-crop", str(args.center_crop), "--resize", str(args.resize)]
    for label, extra in (("python script", []), ("latentlab command's malloc settings", ["--cli-malloc"])):
        base = child_result(__file__, [*common, "--child", "baseline", *extra])
        load = child_result(__file__, [*common, "--child", "load", *extra])
        report(label, base, load)
    print(uptime())


def report(label: str, base: dict, load: dict) -> None:
    kb = 1024
    n, h, w, c = load["shape"]
    array = load["nbytes"]
    baseline = base["after_kb"]["VmHWM"] * kb
    peak = load["after_kb"]["VmHWM"] * kb
    own_before, after = load["before_kb"]["VmRSS"] * kb, load["after_kb"]
    print(f"\n## {label}")
    print(f"array: {n:,} x {h} x {w} x {c} uint8 = {array / MB:.1f} MB (left per batch: {load['batch']})")
    print(f"baseline peak RSS (imports only, fresh process): {baseline / MB:.1f} MB")
    print(f"peak RSS loading (fresh process): {peak / MB:.1f} MB (its own RSS before loading: "
          f"{own_before / MB:.1f} MB; after: {after['VmRSS'] * kb / MB:.1f} MB, of it anonymous "
          f"{after['RssAnon'] * kb / MB:.1f} MB)")
    print(f"(peak - baseline) / array: {(peak - baseline) / array:.2f} (goal <= 1.00)")
    print(f"decoding: {n / load['seconds']:,.0f} images/s ({n:,} images in {load['seconds']:.2f} s)")


if __name__ == "__main__":
    main()
