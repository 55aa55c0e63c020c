"""The decode batcher: concurrent requests share one decode; results and errors reach every caller."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import Tensor

from latentlab.web.batcher import DecodeBatcher


def test_results_match_one_by_one_decoding() -> None:
    weight = torch.randn(6, 3)

    def decode(z: Tensor) -> Tensor:
        return (z @ weight.T).reshape(len(z), 1, 2, 3)

    batcher = DecodeBatcher(decode)
    zs = [torch.randn(1, 3) for _ in range(12)]
    with ThreadPoolExecutor(6) as pool:
        out = list(pool.map(batcher, zs))
    for z, x_hat in zip(zs, out, strict=True):
        assert x_hat.shape == (1, 2, 3) and torch.allclose(x_hat, decode(z)[0], atol=1e-6)


def test_requests_arriving_during_a_decode_share_the_next_one() -> None:
    sizes: list[int] = []
    first_started, release = threading.Event(), threading.Event()

    def decode(z: Tensor) -> Tensor:
        sizes.append(len(z))
        if len(sizes) == 1:
            first_started.set()
            release.wait(10)
        return z[:, None, None, :]

    batcher = DecodeBatcher(decode)
    first = batcher.submit(torch.zeros(1, 2))
    assert first_started.wait(10)
    waiting = [batcher.submit(torch.full((1, 2), float(i))) for i in range(7)]
    release.set()
    assert first.result(10).shape == (1, 1, 2)
    assert [float(f.result(10)[0, 0, 0]) for f in waiting] == list(range(7))
    assert sizes == [1, 7]


def test_finish_runs_on_each_image_and_errors_reach_every_caller() -> None:
    batcher = DecodeBatcher(lambda z: z[:, None, None, :])
    assert batcher.submit(torch.ones(1, 2), lambda x: float(x.sum())).result(10) == 2.0

    def broken(z: Tensor) -> Tensor:
        raise RuntimeError("decoder failed")

    failing = DecodeBatcher(broken)
    futures = [failing.submit(torch.ones(1, 2)) for _ in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="decoder failed"):
            f.result(10)
    with pytest.raises(ZeroDivisionError):
        batcher.submit(torch.ones(1, 2), lambda x: 1 / 0).result(10)
    assert batcher(torch.ones(1, 2)).shape == (1, 1, 2)  # the worker survived


def test_idle_worker_ends_and_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("latentlab.web.batcher.IDLE_EXIT_S", 0.05)
    batcher = DecodeBatcher(lambda z: z[:, None, None, :])
    batcher(torch.ones(1, 2))
    worker = batcher._worker
    assert worker is not None
    worker.join(5)
    assert not worker.is_alive() and batcher._worker is None
    assert float(batcher(torch.full((1, 2), 3.0))[0, 0, 0]) == 3.0
