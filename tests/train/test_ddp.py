"""``latentlab train --devices 2 --strategy ddp`` on two CPU processes (gloo, Fabric's launcher).

One run with 2 processes of batch 16 and one single-process run of batch 32 on the same data:
because rank r takes every 2nd image of the epoch's permutation starting at r, the two ranks'
batches together are exactly the single process's batch, and DDP averages their gradients -- so
both runs should end at (almost) the same validation loss. ``ddp_worker.py`` records, per rank,
the image indices it trained on, what it wrote under the run folder, and its final weights.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")
N_IMAGES = 640  # 64 for validation, 576 = 18 batches of 32 for training: no partial batch
EPOCHS = 3


def indexed_images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size, 1) soft blobs; image i carries i in pixels (0, 0) and (0, 1)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    cx, cy = rng.random((2, n, 1, 1))
    blobs = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05)
    images = (40 + 200 * blobs).astype(np.uint8)[..., None]
    images[:, 0, 0, 0] = np.arange(n) % 256
    images[:, 0, 1, 0] = np.arange(n) // 256
    return images


def run_worker(tmp: Path, name: str, devices: int, batch_size: int, data: Path) -> tuple[Path, Path]:
    out, record = tmp / name, tmp / f"{name}-record"
    args = ["train", "--data", f"npy:{data}", "--out", str(out), "--model", "fcn", "--hidden", "32",
            "--latent-dim", "4", "--epochs", str(EPOCHS), "--batch-size", str(batch_size), "--lr", "3e-3",
            "--seed", "0", "--devices", str(devices), "--quiet"]
    if devices > 1:
        args += ["--strategy", "ddp", "--accelerator", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(WORKER), str(record), *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("run written to") == 1, done.stdout  # printed by rank 0 only
    deadline = time.monotonic() + 120  # rank 0 does not wait for the others to exit
    while not all((record / f"rank{r}.json").is_file() for r in range(devices)):
        assert time.monotonic() < deadline, f"rank records missing in {record}"
        time.sleep(0.2)
    return out, record


def val_losses(out: Path) -> list[float]:
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == EPOCHS
    return [float(row["val_loss"]) for row in rows]


@pytest.mark.slow
def test_two_processes_shard_agree_and_match_one(tmp_path: Path) -> None:
    data = tmp_path / "indexed.npy"
    np.save(data, indexed_images(N_IMAGES))
    ddp_out, ddp_rec = run_worker(tmp_path, "ddp", devices=2, batch_size=16, data=data)
    one_out, one_rec = run_worker(tmp_path, "one", devices=1, batch_size=32, data=data)
    ranks = [json.loads((ddp_rec / f"rank{r}.json").read_text()) for r in range(2)]
    single = json.loads((one_rec / "rank0.json").read_text())

    # both ranks hold identical weights
    w0, w1 = (load_file(str(ddp_rec / f"rank{r}.safetensors")) for r in range(2))
    assert w0.keys() == w1.keys() and all(np.array_equal(w0[k].numpy(), w1[k].numpy()) for k in w0)

    # each rank sees its own shard: per epoch, disjoint and together every training image
    train_rows = {e: sorted(i for b in single["batches"] if b["train"] and b["epoch"] == e for i in b["rows"])
                  for e in range(EPOCHS)}
    assert all(len(rows) == N_IMAGES - 64 for rows in train_rows.values())
    for e in range(EPOCHS):
        shards = [[i for b in rank["batches"] if b["train"] and b["epoch"] == e for i in b["rows"]]
                  for rank in ranks]
        assert all(len(s) == (N_IMAGES - 64) // 2 for s in shards)
        assert not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == train_rows[e]
    val = [{i for b in rank["batches"] if not b["train"] for i in b["rows"]} for rank in ranks]
    assert not val[0] & val[1] and len(val[0] | val[1]) == 64

    # only rank 0 writes the run folder
    assert ranks[0]["writes"] and not ranks[1]["writes"], ranks[1]["writes"][:5]
    assert (ddp_out / "COMPLETE").is_file() and (ddp_out / "model.safetensors").is_file()

    # the same quality as one process on the same effective batch
    ddp_loss, (first, *_, one_loss) = val_losses(ddp_out)[-1], val_losses(one_out)
    assert one_loss < first  # it learned something, so the comparison means something
    assert abs(ddp_loss - one_loss) <= 0.005 * one_loss, (ddp_loss, one_loss)
