"""Fuzzing both hand-written parsers: any text either parses or raises LatentlabError, quickly.

Inputs mix arbitrary text, soups of the grammar's own characters, grammar-shaped expressions
(valid or nearly so) and one-character mutations of those, so both paths are exercised.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from latentlab.errors import LatentlabError
from latentlab.latent import parse_edit, parse_edits, parse_where

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
MAX_SECONDS = 0.1


def _outcome(call: Callable[[], Any], prefix: str = "") -> Any:
    """Run ``call``: a result, or None after a LatentlabError; any other exception fails the test.

    A LatentlabError must be one line starting with ``prefix`` (the part naming the expression).

    A call over the time limit is timed twice more and the best time counts, so a pause of a
    busy machine does not fail the test while an input that is really slow still does.
    """
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        try:
            result = call()
        except LatentlabError as error:
            assert "\n" not in str(error) and str(error).startswith(prefix)
            result = None
        best = min(best, time.perf_counter() - start)
        if best < MAX_SECONDS:
            return result
    raise AssertionError(f"a call took {best:.3f} s, expected under {MAX_SECONDS} s")


# ---- shared pieces ------------------------------------------------------------------------------
# Few draws per example keep 10,000 examples fast: spellings come from lists, not from characters.

SPELLINGS = [
    "3", "-2.5", "+.5", "1e-3", "2.", "-1E+2", "0", "-0", "0.0", "007", ".25", "1E5", "- 2", "+ .5e-2",
    "1e308", "1.7976931348623157e308", "3.40282347e38", "1e-50", "1e-400",  # edges of float32/64
    "inf", "-inf", "nan", "Infinity", "1e999", "-1e309",  # not finite
    "1e", "1e+", "1.2.3", ".", "+", "-", "--1", "+-1", "e3", ".e1", "3x", "1_0", "0x10", "",  # malformed
]
number = st.one_of(st.sampled_from(SPELLINGS), st.floats().map(repr), st.integers(-10**6, 10**6).map(str))
gap = st.sampled_from(["", "", " ", "  ", "\t", " \n "])  # one spacing for all gaps of an expression


def mutated(base: st.SearchStrategy[str], alphabet: str) -> st.SearchStrategy[str]:
    """``base`` with one character inserted, deleted or replaced."""

    def edit(text: str, at: int, char: str, kind: int) -> str:
        at = at % (len(text) + 1)
        return text[:at] + char * (kind != 1) + text[at + (kind != 0) :]

    return st.builds(edit, base, st.integers(0, 60), st.sampled_from(alphabet), st.integers(0, 2))


# ---- edits --------------------------------------------------------------------------------------

EDIT_CHARS = "z[]:,;=+-*/.0123456789eE inafx()"
INDICES = [str(i) for i in range(-12, 13)] + ["+3", "- 1", "007"]
BOUNDS = ["", "0", "1", "3", "7", "-1", "-3", "12", "-12", "+2"]
_pick = random.Random(0)
SELECTIONS = (  # one draw picks any of these ~600 spellings (lists of strategies cost many draws)
    ["", "[]", "[:]", "[::]", "[0:1:1]", "[1,]", "[,1]", "[1.5]", "[1e2]", "[a]", "[0][1]", "[[0]]"]
    + [f"[{i}]" for i in INDICES]
    + [f"[{a}:{b}]" for a in BOUNDS for b in BOUNDS]
    + ["[" + ",".join(_pick.choices(INDICES, k=_pick.randint(2, 8))) + "]" for _ in range(400)]
)
selection = st.sampled_from(SELECTIONS)
edit_shaped = st.builds(
    lambda sel, op, num, sp: sp.join(["", "z", sel, op, num, ""]),
    selection, st.sampled_from(["=", "+=", "-=", "*=", "/="]), number, gap,
)
edit_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=EDIT_CHARS, max_size=30),
    edit_shaped,
    edit_shaped,
    st.builds(lambda a, b: f"{a};{b}", edit_shaped, edit_shaped),
    mutated(edit_shaped, EDIT_CHARS),
)
Z = torch.linspace(-1, 1, 16).reshape(2, 8)


@FUZZ
@given(edit_text)
def test_edit_parser_never_fails_badly(text: str) -> None:
    edit = _outcome(lambda: parse_edit(text), "edit '")
    edits = _outcome(lambda: parse_edits([text]), "edit '")
    event("parses" if edits is not None else "rejected")
    if edit is not None:
        assert parse_edit(edit.text) == edit  # the normalized text reads back the same
        out = _outcome(lambda: edit.apply(Z))
        if out is not None:
            assert out.shape == Z.shape
            assert torch.equal(Z, torch.linspace(-1, 1, 16).reshape(2, 8))


# ---- where --------------------------------------------------------------------------------------

WHERE_CHARS = "()<>=!andortlbesmi _0123456789.+-&|"
name = st.sampled_from(["label", "smile", "hue", "x"] * 3 + ["missing", "and", "not", "_a1"])
cmp_op = st.sampled_from(["==", "!=", "<", "<=", ">", ">="] * 2 + ["=", "=>"])
compare = st.builds(lambda n, op, num, sp: sp.join([n, op, num]), name, cmp_op, number, gap)


def _shapes(count: int = 400) -> list[str]:
    """Random and/or/not/parenthesis shapes over the slots {0} {1} {2} (a seeded, fixed list)."""
    rng = random.Random(1)

    def grow(depth: int) -> str:
        roll = rng.random()
        if depth > 3 or roll < 0.35:
            return "{" + str(rng.randrange(3)) + "}"
        if roll < 0.7:
            return f"{grow(depth + 1)} {rng.choice(['and', 'or'] * 6 + ['&', 'AND'])} {grow(depth + 1)}"
        return f"not {grow(depth + 1)}" if roll < 0.85 else f"({grow(depth + 1)})"

    return ["{0}", "({0})", "not {0}", "{0} and {1}", "{0} or {1}"] + [grow(0) for _ in range(count)]


where_shaped = st.builds(  # one draw for the shape, then three comparisons fill its slots
    lambda shape, a, b, c: shape.format(a, b, c), st.sampled_from(_shapes()), compare, compare, compare)
deep = st.builds(
    lambda n, opener, e: opener * n + e + (")" * n if "(" in opener else ""),
    st.integers(0, 120), st.sampled_from(["(", "not ", "not(", "( not "]), compare,
)
where_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=WHERE_CHARS, max_size=40),
    where_shaped,
    where_shaped,
    mutated(where_shaped, WHERE_CHARS),
    deep,
    st.integers(1990, 2010).map(lambda n: ("label==1 or " * 200)[:n]),
)
COLUMNS = {"label": np.array([0, 1, 2, 1]), "smile": np.array([0.1, 0.9, 0.5, 0.7]),
           "hue": np.array([0.0, 0.2, 0.4, 0.6]), "x": np.array([1.0, np.nan, -1.0, 3.0])}


@FUZZ
@given(where_text)
def test_where_parser_never_fails_badly(text: str) -> None:
    where = _outcome(lambda: parse_where(text), "where '")
    event("parses" if where is not None else "rejected")
    if where is not None:
        mask = _outcome(lambda: where.mask(COLUMNS), "where '")
        if mask is not None:
            assert mask.dtype == np.bool_ and mask.shape == (4,)
