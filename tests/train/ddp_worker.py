"""Run ``latentlab ARGS...`` in this process and record, per rank, what the run did (for test_ddp.py).

    python ddp_worker.py RECORD_DIR train --data npy:... --devices 2 --strategy ddp ...

Fabric's launcher starts the other ranks by running this same command line again (with
LOCAL_RANK set), so every rank is recorded. Each rank writes ``RECORD_DIR/rank<r>.json``:

* ``batches``: the image indices of every batch the model was given (decoded from the pixels:
  image i carries i in its first two pixels), with the epoch and whether it was a training batch;
* ``writes``: the paths under the run folder this process created, opened for writing or renamed
  (from Python's audit events; safetensors and matplotlib files arrive by rename);

and ``RECORD_DIR/rank<r>.safetensors``: the model's weights at the end of ``Trainer.fit``.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from latentlab.cli.app import main
from latentlab.train.batches import ImageBatches
from latentlab.train.trainer import Trainer

RECORD = Path(sys.argv[1]).resolve()
ARGS = sys.argv[2:]
OUT = Path(ARGS[ARGS.index("--out") + 1]).resolve()
record: dict = {"batches": [], "writes": [], "rank": None}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def decode(x: torch.Tensor) -> list[int]:
    """Image indices from a model-input batch in [-1, 1] (pixels (0, 0) and (0, 1) hold i)."""
    pixels = ((x[:, 0, 0, :2].float() + 1) * 127.5).round().long()  # (N, 2)
    return (pixels[:, 0] + 256 * pixels[:, 1]).tolist()


original_epoch = ImageBatches.epoch


def recording_epoch(self, epoch, rank=0, world_size=1, *args, **kwargs):  # type: ignore[no-untyped-def]
    for x_in, target in original_epoch(self, epoch, rank, world_size, *args, **kwargs):
        record["batches"].append({"epoch": epoch, "train": self.shuffle, "rows": decode(target)})
        yield x_in, target


original_fit = Trainer.fit


def recording_fit(self, model, *args, **kwargs):  # type: ignore[no-untyped-def]
    record["rank"] = self.fabric.global_rank
    state = original_fit(self, model, *args, **kwargs)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(RECORD / f"rank{record['rank']}.safetensors"))
    return state


def _under_out(path: object) -> bool:
    return isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)).startswith(str(OUT))


def audit(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        if isinstance(mode, str):
            writing = bool(set(mode) & set("wax+"))
        else:
            writing = isinstance(flags, int) and bool(flags & WRITE_FLAGS)
        if writing and _under_out(path):
            record["writes"].append([event, os.fspath(path)])
    elif event in ("os.rename", "os.mkdir", "os.remove", "shutil.rmtree"):
        for path in args[:2] if event == "os.rename" else args[:1]:  # a rename's source and destination
            if _under_out(path):
                record["writes"].append([event, os.fspath(path)])


def dump() -> None:
    rank = record["rank"] if record["rank"] is not None else int(os.environ.get("LOCAL_RANK", 0))
    (RECORD / f"rank{rank}.json.tmp").write_text(json.dumps(record))
    os.replace(RECORD / f"rank{rank}.json.tmp", RECORD / f"rank{rank}.json")


if __name__ == "__main__":
    RECORD.mkdir(parents=True, exist_ok=True)
    ImageBatches.epoch = recording_epoch  # type: ignore[method-assign]
    Trainer.fit = recording_fit  # type: ignore[method-assign]
    atexit.register(dump)
    sys.addaudithook(audit)
    main(ARGS)
