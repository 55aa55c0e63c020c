"""A code table: each distinct factor combination observed and encoded once.

With the papers' sample counts (Locatello et al., ICML 2019) the interventional scores draw
about 2.9 million observations: BetaVAE 2 x 64 x 15,000, FactorVAE 64 x 15,000 + 10,000, and
MIG / SAP / DCI 15,000 more. ``shapes`` has only 3 x 6 x 40 x 32 x 32 = 737,280 distinct
images, so most are drawn several times (the draws reach about 98 % of them). For a
*deterministic* code of one observation -- an encoder's mean, what the scores use -- the code
of a combination never changes, so :class:`CodeTable` keeps it by the combination's flat index
(row-major over ``GroundTruth.sizes``, which for ``shapes`` is the image index) and encodes
only the combinations a call asks for that it has not seen, in chunks of up to ``chunk``.
When the draws will reach most combinations (:meth:`CodeTable.worth_filling`), encoding the
whole grid first, in index order, is faster than encoding what each call lacks: on ``shapes``
with the papers' counts, 159 s for all 737,280 against 242 s for the 722,861 drawn, lazily (a
small conv encoder in batches of 512, on this 2-core machine under load), because late calls
lack only a few images each.

The table stands in for the pair (observe, represent): ``table.truth`` observes a level row as
itself and ``table(levels)`` gives the codes, so the scores run unchanged on the same random
draws. A stochastic code (a sample of the posterior, a test's random code) must not use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from latentlab.metrics.truth import GroundTruth, Represent

__all__ = ["MAX_TABLE_BYTES", "CodeTable", "table_fits"]

MAX_TABLE_BYTES = 1 << 30  # a table over the whole factor grid larger than this is not kept (1 GiB)


def _grid_size(sizes: tuple[int, ...]) -> int:
    return int(np.prod(np.asarray(sizes, dtype=np.int64)))


def table_fits(truth: GroundTruth, latent_dim: int) -> bool:
    """Whether float64 codes of ``latent_dim`` elements for every combination fit in
    :data:`MAX_TABLE_BYTES`."""
    return _grid_size(truth.sizes) * max(latent_dim, 1) * 8 <= MAX_TABLE_BYTES


def _levels(levels: np.ndarray) -> np.ndarray:
    return np.asarray(levels)


class CodeTable:
    """Codes of ``source``'s observations by ``represent``, each combination encoded once.

    ``table(levels (N, K) int) -> codes (N, D)``; ``encoded``: observations encoded so far;
    ``drawn``: level rows asked for so far.
    """

    def __init__(self, source: GroundTruth, represent: Represent, chunk: int = 8192) -> None:
        self.source, self.represent, self.chunk = source, represent, chunk
        self.truth = dataclasses.replace(source, observe=_levels)  # observations are the level rows
        self.filled = np.zeros(_grid_size(source.sizes), dtype=bool)
        self.codes: np.ndarray | None = None  # (grid size, D), allocated by the first encode
        self.encoded = 0
        self.drawn = 0

    def index(self, levels: np.ndarray) -> np.ndarray:
        """Flat indices (N,) of level rows (N, K), row-major over the factor sizes."""
        return np.asarray(np.ravel_multi_index(tuple(np.asarray(levels).T), self.source.sizes), dtype=np.int64)

    def worth_filling(self, draws: int) -> bool:
        """Whether ``draws`` uniform draws are expected to reach most combinations: at least as
        many draws as combinations, which reach 1 - 1/e = 63 % of them or more."""
        return draws >= len(self.filled)

    def fill_all(self, advance: Callable[[int], None] | None = None) -> None:
        """Encode every combination not yet in the table, in index order; ``advance(n)`` after
        each chunk."""
        for start in range(0, len(self.filled), self.chunk):
            self.fill(np.arange(start, min(start + self.chunk, len(self.filled))))
            if advance is not None:
                advance(min(self.chunk, len(self.filled) - start))

    def fill(self, index: np.ndarray) -> None:
        """Encode the combinations among flat ``index`` not yet in the table."""
        wanted = np.unique(index)
        missing = wanted[~self.filled[wanted]]
        for start in range(0, len(missing), self.chunk):
            rows = missing[start:start + self.chunk]
            levels = np.stack(np.unravel_index(rows, self.source.sizes), axis=1).astype(np.int64)
            z = np.asarray(self.represent(self.source.observe(levels)))  # (n, D)
            if self.codes is None:
                self.codes = np.empty((len(self.filled), z.shape[1]), dtype=z.dtype)
            self.codes[rows] = z
            self.filled[rows] = True
            self.encoded += len(rows)

    def __call__(self, levels: np.ndarray) -> np.ndarray:
        index = self.index(levels)
        self.drawn += len(index)
        self.fill(index)
        if self.codes is None:  # nothing asked for yet
            return np.zeros((len(index), 0))
        return np.asarray(self.codes[index])
