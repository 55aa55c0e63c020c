"""Decode concurrent slider updates together, in one worker thread.

A fully connected decoder reads all of its weights for every call: for ``fcn-1024`` that is a
12288 x 1024 float matrix (48 MiB) per decode, whether one latent goes through it or sixteen.
On a CPU a single-latent decode is bound by that memory traffic, so when several browser tabs
drag sliders at once, decoding every latent that arrived while the previous batch ran costs
about one matrix product per round instead of one per request. A lone request is decoded
immediately; there is no waiting for company.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import torch
from torch import Tensor

IDLE_EXIT_S = 30.0  # the worker thread ends after this long without requests (and restarts on demand)


Finish = Callable[[Tensor], Any]
_Job = tuple[Tensor, Finish | None, "Future[Any]"]


class DecodeBatcher:
    """Thread-safe decoding: ``batcher(z)`` with z (1, D) -> the decoded image (C, H, W).

    :meth:`submit` returns a future instead (an async route awaits it without a thread of its
    own); its ``finish`` runs on the decoded image in the worker (e.g. PNG encoding).
    """

    def __init__(self, decode: Callable[[Tensor], Tensor], max_batch: int = 32) -> None:
        self._decode = decode  # (k, D) -> (k, C, H, W)
        self._max_batch = max_batch
        self._queue: list[_Job] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    def submit(self, z: Tensor, finish: Finish | None = None) -> Future[Any]:
        done: Future[Any] = Future()
        with self._cond:
            self._queue.append((z, finish, done))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="latentlab-decode", daemon=True)
                self._worker.start()
            self._cond.notify()
        return done

    def __call__(self, z: Tensor) -> Tensor:
        image: Tensor = self.submit(z).result()
        return image

    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            if not self._queue:
                self._cond.wait(IDLE_EXIT_S)
            if not self._queue:  # idle: end this thread; the next request starts another
                self._worker = None
                return None
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                with torch.inference_mode():
                    x_hat = self._decode(torch.cat([z for z, _, _ in batch]))  # (k, C, H, W)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
                for _, _, done in batch:
                    done.set_exception(exc)
                continue
            for (_, finish, done), image in zip(batch, x_hat, strict=True):
                try:
                    done.set_result(image if finish is None else finish(image))
                except BaseException as exc:  # noqa: BLE001
                    done.set_exception(exc)
