"""``--deterministic``: the settings under which two runs of one command give bit-identical weights.

Without them, a run is already reproducible in what it computes: every step is seeded and the
data order depends only on (seed, epoch). What still varies is the order in which floats are
added up:

* on the CPU, a sum split over threads is added in an order that depends on the thread count,
  and MKL may change its thread count with the machine's load: one intra-op thread fixes it;
* torch's deterministic algorithms (``torch.use_deterministic_algorithms``) replace the few
  kernels that add up in whatever order atomics land (mostly CUDA ``index_add``/``scatter``), and
  raise for the ones that have no deterministic version;
* on CUDA, cuDNN without autotuning (which may pick a different kernel each run) in its
  deterministic mode, and cuBLAS with a fixed workspace (``CUBLAS_WORKSPACE_CONFIG=:4096:8``).

The cost is mostly the one thread: see docs/training.md for the measured slowdown. Settings are
restored when the training ends (they are process-wide).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG"


@contextmanager
def deterministic_mode(enabled: bool = True) -> Iterator[None]:
    """Inside the block, the settings above (nothing changes when ``enabled`` is False)."""
    if not enabled:
        yield
        return
    cudnn = torch.backends.cudnn
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), cudnn.deterministic, cudnn.benchmark,
             os.environ.get(CUBLAS_WORKSPACE))
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cudnn.deterministic, cudnn.benchmark = True, False
    os.environ.setdefault(CUBLAS_WORKSPACE, ":4096:8")
    try:
        yield
    finally:
        threads, algorithms, warn_only, cudnn.deterministic, cudnn.benchmark, workspace = saved
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
        if workspace is None:
            os.environ.pop(CUBLAS_WORKSPACE, None)
