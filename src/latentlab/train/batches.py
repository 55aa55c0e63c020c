"""Batches from a uint8 image array: shuffled per epoch, sharded per rank, converted on the fly.

Only the rows of one batch are ever read and converted to float (the array may be a
memory-mapped ``.npy`` far larger than memory). The order depends only on (seed, epoch), so a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from latentlab.data.batches import BatchSpec, add_noise, to_model_input


class ImageBatches:
    """(x_in, target) float batches (N, C, H, W) from ``images[indices]``."""

    def __init__(self, images: np.ndarray, indices: np.ndarray, batch_size: int, spec: BatchSpec,
                 *, shuffle: bool = True, seed: int = 0, noise: float = 0.0) -> None:
        self.images = images
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.spec = spec
        self.shuffle = shuffle
        self.seed = seed
        self.noise = noise

    def num_batches(self, world_size: int = 1) -> int:
        per_rank = len(self.indices) // world_size if world_size > 1 else len(self.indices)
        return max(1, -(-per_rank // self.batch_size))

    def __len__(self) -> int:
        return self.num_batches()

    def order(self, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        """This rank's indices for ``epoch``: a seeded permutation, then every world_size-th."""
        idx = self.indices
        if self.shuffle:
            idx = idx[np.random.default_rng([self.seed, epoch]).permutation(len(idx))]
        if world_size > 1:
            per_rank = len(idx) // world_size  # equal shards so every rank takes the same steps
            idx = idx[rank::world_size][:per_rank]
        return idx

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0,
              device: torch.device | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield batches ``start``, ``start + 1``, ... of this epoch."""
        idx = self.order(epoch, rank, world_size)
        for b in range(start, self.num_batches(world_size)):
            rows = np.sort(idx[b * self.batch_size:(b + 1) * self.batch_size])  # sorted: sequential reads
            if len(rows) == 0:
                return
            target = to_model_input(self.images[rows], self.spec, device=device)
            if self.noise > 0:
                gen = torch.Generator().manual_seed(hash((self.seed, epoch, b, rank)) & 0x7FFFFFFF)
                yield add_noise(target, self.noise, generator=gen, value_range=self.spec.value_range), target
            else:
                yield target, target
