"""Batches from a uint8 image array: shuffled per epoch, sharded per rank, converted on the fly.

Only the rows of one batch are ever read and converted to float (the array may be a
memory-mapped ``.npy`` far larger than memory). The order depends only on (seed, epoch), so a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from latentlab.data.batches import BatchSpec, add_noise, to_model_input

Batch = tuple[Tensor, Tensor]  # (x_in, target), each (N, C, H, W)


def file_mapping(images: np.ndarray) -> mmap.mmap | None:
    """The read-only memory map under ``images`` (``np.load(..., mmap_mode="r")`` and views of it).

    Pages read through a map count in the process's resident memory until unmapped, so one epoch
    over a 10 GB ``.npy`` would show 10 GB resident (clean file cache the kernel may drop, but
    RSS limits and ``top`` count it). A read maps more than it reads (fault-around; whole large
    folios, up to 2 MB, on recent kernels): here one batch of 128 random rows mapped 155 MB of a
    245 MB file. So the trainer unmaps after every batch: ``madvise(MADV_DONTNEED)`` on a
    read-only file map drops only this process's mappings (measured cost: none visible next to
    the 1.5 ms the batch takes); the next read maps the pages again from the page cache.
    """
    if images.flags.writeable or not hasattr(mmap, "MADV_DONTNEED"):
        return None  # a writeable map may hold changes that DONTNEED would throw away
    base: object = images.base
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


class ImageBatches:
    """(x_in, target) float batches (N, C, H, W) from ``images[indices]``.

    ``equal_shards``: every rank gets the same number of rows (what training needs, so that all
    ranks take the same number of synchronised steps; up to world_size - 1 rows are left out of
    each epoch). Without it (evaluation) the shards may differ by one row and nothing is left out.
    """

    def __init__(self, images: np.ndarray, indices: np.ndarray, batch_size: int, spec: BatchSpec,
                 *, shuffle: bool = True, seed: int = 0, noise: float = 0.0,
                 equal_shards: bool = True) -> None:
        self.images = images
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.spec = spec
        self.shuffle = shuffle
        self.seed = seed
        self.noise = noise
        self.equal_shards = equal_shards

    def num_batches(self, world_size: int = 1, rank: int = 0) -> int:
        return max(1, -(-self.shard_size(world_size, rank) // self.batch_size))

    def shard_size(self, world_size: int = 1, rank: int = 0) -> int:
        n = len(self.indices)
        if world_size == 1:
            return n
        return n // world_size if self.equal_shards else len(range(rank, n, world_size))

    def __len__(self) -> int:
        return self.num_batches()

    def order(self, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        """This rank's indices for ``epoch``: a seeded permutation, then every world_size-th."""
        idx = self.indices
        if self.shuffle:
            idx = idx[np.random.default_rng([self.seed, epoch]).permutation(len(idx))]
        if world_size > 1:
            idx = idx[rank::world_size][:self.shard_size(world_size, rank)]
        return idx

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0,
              device: torch.device | None = None,
              memory_format: torch.memory_format = torch.contiguous_format) -> Iterator[Batch]:
        """Yield batches ``start``, ``start + 1``, ... of this epoch (``memory_format``: see
        :func:`~latentlab.data.batches.to_model_input`)."""
        idx = self.order(epoch, rank, world_size)
        mapping = file_mapping(self.images)
        for b in range(start, self.num_batches(world_size, rank)):
            rows = np.sort(idx[b * self.batch_size:(b + 1) * self.batch_size])  # sorted: sequential reads
            if len(rows) == 0:
                return
            target = to_model_input(self.images[rows], self.spec, device=device, memory_format=memory_format)
            if mapping is not None:
                mapping.madvise(mmap.MADV_DONTNEED)  # rows copied; their pages stay in the page cache
            if self.noise > 0:
                seed = hash((self.seed, epoch, b, rank)) & 0x7FFFFFFF
                gen = torch.Generator(target.device).manual_seed(seed)
                yield add_noise(target, self.noise, generator=gen, value_range=self.spec.value_range), target
            else:
                yield target, target
