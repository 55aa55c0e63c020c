"""Keep freed memory in the process for the next step, instead of handing it back to the kernel.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves every block over its mmap
threshold (at most 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, so each training step
of a model with 50 MB weight gradients (``fcn-1024``) maps new pages, and the kernel faults them
in and zeroes them 4 KiB at a time. On the development machine one fault costs about 4.6 us:
a fresh 50 MB tensor took 54 ms to fill against 4 ms for a reused one, and the faults were
about a fifth of a float32 ``fcn-1024`` step and half of a bf16-mixed one
(``benchmarks/RESULTS.md``).

:func:`keep_freed_memory` tells glibc to serve every block from its heap (``M_MMAP_MAX = 0``)
and to give heap memory back only when more than 1 GiB is free at its top
(``M_TRIM_THRESHOLD``). The next step then reuses the pages of the last one. This is the
same trade that jemalloc and tcmalloc make, and that Intel's PyTorch CPU tuning guide
recommends preloading them for. It changes nothing but where memory comes from; results are
bit for bit the same.

It is called by the trainer, by scoring and by the ``latentlab`` command. When their large
allocations are over (the end of ``fit``, of a scoring pass, of the web explorer's loading),
:func:`release_free_memory` hands the free pages back, so a long-lived process does not keep
its high-water mark. It does nothing outside glibc (macOS,
musl), and nothing when ``LATENTLAB_MALLOC=system`` is set.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 1 << 30

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above, once per process; True if it is in effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("LATENTLAB_MALLOC", "").lower() == "system":
        return _done
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return _done
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return _done
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_MMAP_MAX, 0))
    return _done


def release_free_memory() -> None:
    """Hand the heap's free pages back to the kernel now (glibc ``malloc_trim``).

    Called when a burst of large allocations is over: the end of training or of a scoring
    pass, and once the web explorer has loaded. Without it, a long-lived process would keep its
    high-water mark. Does nothing where :func:`keep_freed_memory` did not tune this process."""
    if not _done:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def tuned() -> bool:
    """Whether :func:`keep_freed_memory` has tuned this process."""
    return bool(_done)
