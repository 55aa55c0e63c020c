"""What a killed write can leave behind is recognised and removed, and nothing else is.

``atomic_path`` writes to ``.NAME.XXXXXXXX.tmp``; safetensors' ``save_file`` writes to a
``.tmpXXXXXX`` of its own beside that and renames it onto ours, so a kill at the right moment
leaves either one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from latentlab.io import atomic_write, is_temporary, remove_temporaries, write_text


@pytest.mark.parametrize("name", [".model.safetensors.0a1b2c3d.tmp", ".config.json.x_y9z0ab.tmp", ".tmpMe2mlB",
                                  ".tmp000000"])
def test_temporary_names(name: str) -> None:
    assert is_temporary(Path(name))


@pytest.mark.parametrize("name", ["model.safetensors", ".lock", "a.tmp", ".tmp", ".tmpAbCdE", ".tmpAbCdEfG",
                                  ".tmp-bcdef", "config.json.0a1b2c3d.tmp", ".config.json.0a1b2c3.tmp"])
def test_other_names(name: str) -> None:
    assert not is_temporary(Path(name))


def test_remove_temporaries_leaves_other_files(tmp_path: Path) -> None:
    for name in (".a.json.0a1b2c3d.tmp", ".tmpMe2mlB", "a.json", ".lock", "notes.tmp"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".tmpMe2mlB").write_text("x")  # not below the folder
    removed = remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".a.json.0a1b2c3d.tmp", ".tmpMe2mlB"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".lock", ".tmpMe2mlB", "a.json", "notes.tmp", "sub"]


def test_a_failed_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    write_text(tmp_path / "a.safetensors", "old\n")

    def half_then_fail(tmp: Path) -> None:
        save_file({"a": torch.zeros(2)}, str(tmp))
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        atomic_write(tmp_path / "a.safetensors", half_then_fail)
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]
    assert (tmp_path / "a.safetensors").read_text() == "old\n"
