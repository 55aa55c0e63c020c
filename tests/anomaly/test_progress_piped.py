"""Scoring bars draw on a terminal only: piped, they leave nothing behind on stderr."""

from __future__ import annotations

import pytest

from latentlab.anomaly.progress import progress_bar


def test_a_piped_bar_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        with progress_bar(100, "scoring") as advance:
            advance(60)
            advance(40)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
