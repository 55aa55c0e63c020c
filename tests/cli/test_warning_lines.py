"""The `latentlab` process writes latentlab's own warnings as one line, other packages' as Python does."""

from __future__ import annotations

import warnings

from latentlab.cli.app import _one_line_warnings


def test_latentlab_warnings_are_one_line_and_others_unchanged() -> None:
    python_format = warnings.formatwarning
    try:
        _one_line_warnings()
        ours = warnings.formatwarning(UserWarning("npy:x.npy: used as they are"), UserWarning,
                                      "/site-packages/latentlab/runs.py", 93)
        theirs = warnings.formatwarning(UserWarning("deprecated"), UserWarning, "/site-packages/other/mod.py", 7)
    finally:
        warnings.formatwarning = python_format
    assert ours == "warning: npy:x.npy: used as they are\n"
    assert theirs == python_format(UserWarning("deprecated"), UserWarning, "/site-packages/other/mod.py", 7)
    assert "mod.py:7: UserWarning: deprecated" in theirs
