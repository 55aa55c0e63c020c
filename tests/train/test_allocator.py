"""latentlab.allocator: freed tensor memory is reused, not faulted in again (glibc only)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                                reason="the tuning is for glibc's malloc")

PROBE = """
import json, resource, torch
from latentlab.allocator import keep_freed_memory, tuned
keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # like a training step: a big tensor (64 MiB, over glibc's largest mmap threshold)
    y = torch.empty(16 * 2**20)  # and small ones, made and freed
    y.fill_(2.0)
    small = [torch.ones(1000) for _ in range(10)]
    del y, small
for _ in range(5):  # warm-up: aligned blocks settle into the heap in a few rounds
    step()
before = faults()
for _ in range(3):
    step()
print(json.dumps({"tuned": tuned(), "faults": faults() - before}))
"""


def probe(**env: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_freed_memory_is_reused_without_page_faults() -> None:
    tuned = probe(LATENTLAB_MALLOC="")
    system = probe(LATENTLAB_MALLOC="system")
    assert tuned["tuned"] is True and system["tuned"] is False
    # 3 x 64 MiB is 49,152 pages of 4 KiB: the system settings map and fault them in every time
    assert int(system["faults"]) > 10_000  # type: ignore[call-overload]
    assert int(tuned["faults"]) < int(system["faults"]) / 10  # type: ignore[call-overload]


RELEASE_PROBE = """
import json, torch
from latentlab.allocator import keep_freed_memory, release_free_memory
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
keep_freed_memory()
keep = torch.ones(1000)  # something allocated after the big block, so the heap cannot just shrink
big = [torch.ones(16 * 2**20) for _ in range(3)]  # 3 x 64 MiB
small = torch.ones(1000)
del big
kept = rss_mb()
release_free_memory()
print(json.dumps({"kept": kept, "released": rss_mb()}))
"""


def test_release_hands_the_free_pages_back() -> None:
    out = subprocess.run([sys.executable, "-c", RELEASE_PROBE], capture_output=True, text=True, check=True,
                         env={**os.environ, "LATENTLAB_MALLOC": ""}).stdout
    rss = json.loads(out.strip().splitlines()[-1])
    assert rss["kept"] - rss["released"] > 150  # MiB: most of the 192 MiB freed
