"""No code runs from a file: pickles crafted to run code are refused with one line, and their payload never runs.

The payload, when unpickled, creates a marker file; each test first proves the payload is live
(``pickle.loads`` does create the marker), then hands the same bytes to latentlab as model
weights, as a torch checkpoint, as optimizer state, as trainer state, as a data file, through
the API and the CLI, and checks the error and that the marker never appears. A last test scans
the package source for the calls that would unpickle.
"""

from __future__ import annotations

import io
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import latentlab
from latentlab.cli.app import app
from latentlab.data import load_source
from latentlab.errors import LatentlabError
from latentlab.runs import open_run

TINY_TRAIN = ["train", "--data", "faces:48", "--resize", "8", "--model", "fcn", "--hidden", "8", "--latent-dim",
              "2", "--epochs", "2", "--batch-size", "16", "--quiet"]


class Payload:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


@pytest.fixture
def evil_pickle(marker: Path) -> bytes:
    data = pickle.dumps({"weight": Payload(marker)})
    pickle.loads(data)  # the payload is live: unpickling these bytes runs code
    assert marker.exists()
    marker.unlink()
    return data


@pytest.fixture
def evil_torch_file(marker: Path, evil_pickle: bytes) -> bytes:
    """The same payload inside torch.save's zip format (what a ``.pt`` / ``.bin`` file is)."""
    buf = io.BytesIO()
    torch.save({"encoder.0.weight": Payload(marker)}, buf)
    assert not marker.exists()
    return buf.getvalue()


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A writable copy of the trained tiny run."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run with its checkpoint, as a killed training leaves it (no COMPLETE); copy before changing."""
    out = tmp_path_factory.mktemp("killed") / "run"
    assert CliRunner().invoke(app, [*TINY_TRAIN, "--out", str(out)]).exit_code == 0
    (out / "COMPLETE").unlink()
    return out


def _one_line(error: pytest.ExceptionInfo[LatentlabError]) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def _cli_refuses(args: list[str], *needles: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, text


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_weights_that_are_a_pickle(run_copy: Path, marker: Path, evil_pickle: bytes, evil_torch_file: bytes,
                                   kind: str) -> None:
    (run_copy / "model.safetensors").write_bytes(evil_pickle if kind == "pickle" else evil_torch_file)
    with pytest.raises(LatentlabError) as error:
        open_run(run_copy)
    assert "model.safetensors: not a readable safetensors file" in _one_line(error)
    _cli_refuses(["summary", str(run_copy)], "not a readable safetensors file")
    _cli_refuses(["reconstruct", str(run_copy), "--out", str(run_copy / "r.png")], "not a readable safetensors")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.safetensors", "best.safetensors",
                                  "state.json", "optimizer.json"])
def test_checkpoint_files_that_are_a_pickle(killed_run: Path, tmp_path: Path, marker: Path, evil_pickle: bytes,
                                           name: str) -> None:
    out = Path(shutil.copytree(killed_run, tmp_path / "run"))
    ckpt = next((out / "checkpoint").glob("ckpt-*"))
    (ckpt / name).write_bytes(evil_pickle)
    _cli_refuses(["train", "--resume", "--quiet", "--out", str(out)], name)
    assert not marker.exists()


def test_data_files_holding_pickles(tmp_path: Path, marker: Path) -> None:
    images = np.empty((1, 2, 2, 3), dtype=object)
    images.flat[0] = Payload(marker)
    np.save(tmp_path / "x.npy", images, allow_pickle=True)
    np.savez(tmp_path / "x.npz", x=images)
    (tmp_path / "y.npy").write_bytes(pickle.dumps(Payload(marker)))  # a bare pickle named .npy
    for spec in (f"npy:{tmp_path / 'x.npy'}", f"npz:{tmp_path / 'x.npz'}", f"npy:{tmp_path / 'y.npy'}"):
        with pytest.raises(LatentlabError) as error:
            load_source(spec)
        _one_line(error)
    assert not marker.exists()
    with zipfile.ZipFile(tmp_path / "x.npz") as zf:  # the npz really holds a pickled object array
        assert b"PWNED" in zf.read("x.npy")


def test_config_that_is_a_pickle(run_copy: Path, marker: Path, evil_pickle: bytes) -> None:
    (run_copy / "config.json").write_bytes(evil_pickle)
    with pytest.raises(LatentlabError) as error:
        open_run(run_copy)
    assert "config.json: not a valid run config" in _one_line(error)
    assert not marker.exists()


UNPICKLING = [
    (r"\bpickle\.loads?\(", "pickle.load"),
    (r"\btorch\.load\((?![^)]*weights_only\s*=\s*True)", "torch.load without weights_only=True"),
    (r"allow_pickle\s*=\s*True", "allow_pickle=True"),
    (r"(?<![.\w])(?:eval|exec)\(", "eval/exec"),  # not model.eval(), not ast.literal_eval(
    (r"\bjoblib\.load\(|\bdill\.|\bcloudpickle\.", "joblib/dill/cloudpickle"),
    (r"\byaml\.load\(|\bmarshal\.loads?\(|\bshelve\.", "yaml.load/marshal/shelve"),
]


def test_the_package_never_unpickles() -> None:
    """A static scan: no call in src/latentlab that could run code from a file."""
    found = []
    for path in sorted(Path(latentlab.__file__).parent.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern, what in UNPICKLING:
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.name}:{line}: {what}")
    assert found == []
