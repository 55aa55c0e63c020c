"""Latent edit expressions: ``z[0]*=3``, ``z[2:5]+=0.5``, ``z[1,-1]=0``, ``z/=2``.

Text typed by a user is read by a small tokenizer and a recursive-descent parser; it is never
passed to ``eval``. The grammar (whitespace is allowed between any two tokens)::

    edit    := "z" [ "[" select "]" ] OP number
    select  := bound? ":" bound?                 # Python slice, no step
             | int ( "," int )*                  # one index or a list of indices
    bound   := int
    int     := [ "+" | "-" ] DIGITS
    OP      := "=" | "+=" | "-=" | "*=" | "/="
    number  := [ "+" | "-" ] ( DIGITS [ "." DIGITS? ] | "." DIGITS ) [ ("e"|"E") [ "+"|"-" ] DIGITS ]

Several edits may share one string, joined by ``;`` (see :func:`parse_edits`). Negative indices
count from the end, as in Python; a slice follows Python's clipping rules but must select at
least one element; ``inf``, ``nan`` and numbers that overflow a float are rejected.

The course code edits one latent by hand (``z[0][0] = z[0][0] * 3``); :meth:`Edit.apply` does
the same to the selected columns of every row of a flat ``(N, D)`` latent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from latentlab.errors import LatentlabError
from latentlab.latent.tokens import NAME, NUMBER, Token, TokenParser, shown

_OPS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "=": lambda x, v: torch.full_like(x, v),
    "+=": lambda x, v: x + v,
    "-=": lambda x, v: x - v,
    "*=": lambda x, v: x * v,
    "/=": lambda x, v: x / v,
}
OPS = tuple(_OPS)
MAX_LENGTH = 10_000  # characters in one edit; an index list of a 1,000-d latent fits easily
_EXAMPLE = "expected e.g. z[0]*=3"



def _syntax_error(text: str, what: str) -> LatentlabError:
    return LatentlabError(f"edit '{shown(text)}': {what}, {_EXAMPLE}")


# ---------------------------------------------------------------------------------------------
# Edit
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One parsed edit: apply ``op value`` to the elements ``index`` selects.

    ``index`` is a tuple of element indices, a ``slice`` (no step) or None for every element.
    ``text`` is the normalized expression (``"z[0]*=3"``), used in every message.
    """

    text: str
    index: tuple[int, ...] | slice | None
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise LatentlabError(f"edit '{shown(self.text)}': unknown operator {self.op!r}, "
                                 f"expected one of {' '.join(OPS)}")
        if not math.isfinite(self.value):
            raise LatentlabError(f"edit '{shown(self.text)}': value {self.value} is not finite, "
                                 f"{_EXAMPLE}")
        if self.op == "/=" and self.value == 0:
            raise LatentlabError(f"edit '{shown(self.text)}': division by zero, "
                                 f"expected a non-zero divisor")
        if isinstance(self.index, slice) and self.index.step is not None:
            raise LatentlabError(f"edit '{shown(self.text)}': slices take no step, {_EXAMPLE}")

    def __hash__(self) -> int:  # a slice is unhashable before Python 3.12; equal edits share text
        return hash((self.text, self.op, self.value))

    def positions(self, latent_dim: int) -> list[int]:
        """Non-negative element indices this edit selects in a latent of ``latent_dim`` elements.

        In selection order, each element at most once (``z[1,1]`` selects element 1 once).
        """
        name = f"edit '{shown(self.text)}'"
        if latent_dim < 1:
            raise LatentlabError(f"{name}: expected a latent of at least 1 element, got {latent_dim}")
        if self.index is None:
            return list(range(latent_dim))
        if isinstance(self.index, slice):
            found = list(range(*self.index.indices(latent_dim)))
            if not found:
                raise LatentlabError(f"{name}: selects no elements of a latent of {latent_dim} elements")
            return found
        resolved: list[int] = []
        for i in self.index:
            if not -latent_dim <= i < latent_dim:
                raise LatentlabError(
                    f"{name}: index {i} is out of range for a latent of {latent_dim} elements")
            resolved.append(i % latent_dim)
        return list(dict.fromkeys(resolved))

    def _check_fits(self, dtype: torch.dtype) -> None:
        """The value must stay finite (and a divisor non-zero) once cast to the latent's dtype."""
        name = str(dtype).removeprefix("torch.")
        if abs(self.value) > torch.finfo(dtype).max:  # 1e39 is inf in float32
            raise LatentlabError(f"edit '{shown(self.text)}': {_format_value(self.value)} overflows a "
                                 f"{name} latent, expected a value within ±{torch.finfo(dtype).max:.3g}")
        if self.op == "/=" and torch.tensor(self.value, dtype=dtype).item() == 0:  # 1e-50 in float32
            raise LatentlabError(f"edit '{shown(self.text)}': {_format_value(self.value)} is zero in a "
                                 f"{name} latent, expected a non-zero divisor")

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        """A new tensor: ``z`` (N, D) with the op applied to the selected columns of every row."""
        if z.ndim != 2:
            raise LatentlabError(f"edit '{shown(self.text)}': expected a flat latent of shape (N, D), "
                                 f"got shape {tuple(z.shape)}")
        if not z.is_floating_point():
            raise LatentlabError(f"edit '{shown(self.text)}': expected a floating-point latent, "
                                 f"got {z.dtype}")
        self._check_fits(z.dtype)
        cols = torch.tensor(self.positions(z.shape[1]), dtype=torch.long, device=z.device)
        out = z.clone()
        out[:, cols] = _OPS[self.op](z[:, cols], self.value)  # (N, k)
        return out


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------



_TRAILING = re.compile(r"[A-Za-z0-9_.]+")  # glued to a number, it makes the number malformed


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith(("+=", "-=", "*=", "/="), i):
            tokens.append(Token("op", text[i : i + 2], i + 1))
            i += 2
        elif ch == "=":
            tokens.append(Token("op", "=", i + 1))
            i += 1
        elif ch in "+-":
            tokens.append(Token("sign", ch, i + 1))
            i += 1
        elif ch in "[]:,":
            tokens.append(Token(ch, ch, i + 1))
            i += 1
        elif m := NUMBER.match(text, i):
            if m.end() < n and (tail := _TRAILING.match(text, m.end())):
                bad = text[i : tail.end()]
                raise _syntax_error(text, f"malformed number '{shown(bad, 20)}' at column {i + 1}")
            tokens.append(Token("number", m.group(), i + 1))
            i = m.end()
        elif m := NAME.match(text, i):
            tokens.append(Token("name", m.group(), i + 1))
            i = m.end()
        else:
            raise _syntax_error(text, f"unexpected character {shown(repr(ch), 12)} at column {i + 1}")
    tokens.append(Token("end", "", n + 1))
    return tokens


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


class _Parser(TokenParser):
    """Recursive descent over the token list; one method per grammar rule."""

    syntax_error = staticmethod(_syntax_error)

    def __init__(self, text: str) -> None:
        super().__init__(text, _tokenize(text))

    def edit(self) -> Edit:
        head = self.peek()
        if head.kind != "name" or head.text != "z":
            raise self.fail("'z'")
        self.take()
        index: tuple[int, ...] | slice | None = None
        if self.peek().kind == "[":
            self.take()
            index = self.select()
            if self.peek().kind != "]":
                raise self.fail("',' or ']'" if isinstance(index, tuple) else "']'")
            self.take()
        if self.peek().kind != "op":
            raise self.fail("an operator (= += -= *= /=)")
        op = self.take().text
        value = self.number()
        if self.peek().kind != "end":
            raise self.fail("the end of the edit (join edits with ';')")
        if op == "/=" and value == 0:
            raise LatentlabError(f"edit '{shown(self.text)}': division by zero, expected a non-zero divisor")
        return Edit(_normalize(index, op, value), index, op, value)

    def select(self) -> tuple[int, ...] | slice:
        start = None if self.peek().kind == ":" else self.integer("an index or ':'")
        if self.peek().kind == ":":
            self.take()
            stop = None if self.peek().kind == "]" else self.integer("an index or ']'")
            if start is not None and stop is not None and (start >= 0) == (stop >= 0) and start >= stop:
                raise _syntax_error(self.text, f"slice {start}:{stop} selects no elements")
            return slice(start, stop)
        assert start is not None
        found = [start]
        while self.peek().kind == ",":
            self.take()
            found.append(self.integer("an index"))
        return tuple(found)

    def integer(self, what: str) -> int:
        sign = self.take().text if self.peek().kind == "sign" else ""
        token = self.peek()
        if token.kind != "number" or not token.text.isdigit():
            if token.kind == "number":
                raise _syntax_error(self.text, f"index '{shown(token.text, 20)}' at column "
                                               f"{token.column} is not a whole number")
            raise self.fail(what)
        self.take()
        try:
            return int(sign + token.text)
        except ValueError:  # more digits than int() accepts
            raise _syntax_error(self.text, f"index at column {token.column} is too long") from None

    def number(self) -> float:
        sign = self.take().text if self.peek().kind == "sign" else ""
        token = self.peek()
        if token.kind == "name" and token.text.lower() in ("inf", "infinity", "nan"):
            raise _syntax_error(self.text, f"'{sign}{token.text}' is not a finite number")
        if token.kind != "number":
            raise self.fail("a number")
        self.take()
        value = float(sign + token.text)
        if not math.isfinite(value):
            raise _syntax_error(self.text, f"'{shown(sign + token.text, 20)}' is not a finite number")
        return value


def _format_value(value: float) -> str:
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _normalize(index: tuple[int, ...] | slice | None, op: str, value: float) -> str:
    if index is None:
        where = ""
    elif isinstance(index, slice):
        start = "" if index.start is None else str(index.start)
        stop = "" if index.stop is None else str(index.stop)
        where = f"[{start}:{stop}]"
    else:
        where = "[" + ",".join(str(i) for i in index) + "]"
    return f"z{where}{op}{_format_value(value)}"


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def parse_edit(text: str) -> Edit:
    """Parse one edit expression such as ``"z[0] *= 3"``; LatentlabError on any syntax error."""
    if not isinstance(text, str):
        raise TypeError(f"parse_edit expects a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _syntax_error(text, f"{len(text)} characters is too long (at most {MAX_LENGTH})")
    if not text.strip():
        raise _syntax_error(text, "the edit is empty")
    return _Parser(text).edit()


def parse_edits(texts: Iterable[str] | str) -> list[Edit]:
    """Parse edits given one per string, several in a string joined by ``;``, or both.

    A single ``str`` is read as one string (not as its characters). Empty pieces around a
    ``;`` are skipped, but each string must hold at least one edit.
    """
    if isinstance(texts, str):
        texts = [texts]
    edits: list[Edit] = []
    for text in texts:
        pieces = [piece for piece in text.split(";") if piece.strip()]
        if not pieces:
            raise _syntax_error(text, "the edit is empty")
        edits.extend(parse_edit(piece) for piece in pieces)
    return edits


@dataclass(frozen=True)
class EditChain:
    """Several edits applied together, in order, as one change (``"z[3]=1.25;z[7]+=0.4"``)."""

    edits: tuple[Edit, ...]

    @property
    def text(self) -> str:
        return ";".join(e.text for e in self.edits)

    def positions(self, latent_dim: int) -> list[int]:
        seen: dict[int, None] = {}
        for e in self.edits:
            seen.update(dict.fromkeys(e.positions(latent_dim)))
        return list(seen)

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        return apply_edits(z, self.edits)


def parse_edit_groups(texts: Iterable[str] | str) -> list[Edit | EditChain]:
    """One change per string: a string of ``;``-joined edits becomes one :class:`EditChain`
    (the CLI's ``--edit "z[3]=1.25;z[7]+=0.4"`` is one panel, as the web explorer copies it)."""
    if isinstance(texts, str):
        texts = [texts]
    groups: list[Edit | EditChain] = []
    for text in texts:
        edits = parse_edits(text)
        groups.append(edits[0] if len(edits) == 1 else EditChain(tuple(edits)))
    return groups


def apply_edits(z: torch.Tensor, edits: Iterable[Edit]) -> torch.Tensor:
    """Apply ``edits`` one after another; returns a new tensor and never changes ``z``."""
    out = z
    for edit in edits:
        out = edit.apply(out)
    return out if out is not z else z.clone()
