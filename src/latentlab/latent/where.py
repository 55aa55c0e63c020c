"""Row filters: ``label==1``, ``smile>0.5 and hue<0.3``, ``not (label==0 or label==9)``.

Used by ``latentlab attribute --where ... --versus ...`` to pick the rows of a data set by
label or by a known generative factor. Text is read by a small tokenizer and a recursive-descent
parser, never by ``eval``. The grammar (whitespace is allowed between any two tokens)::

    expr    := and ( "or" and )*
    and     := not ( "and" not )*
    not     := "not" not | atom
    atom    := "(" expr ")" | NAME CMP number
    CMP     := "==" | "!=" | "<" | "<=" | ">" | ">="
    NAME    := [A-Za-z_][A-Za-z0-9_]*            # "label" or a factor name; not a keyword
    number  := [ "+" | "-" ] ( DIGITS [ "." DIGITS? ] | "." DIGITS ) [ ("e"|"E") [ "+"|"-" ] DIGITS ]

``not`` binds tighter than ``and``, which binds tighter than ``or``, as in Python. Expressions
longer than :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH` (parentheses
and ``not`` together) are refused, so no input can exhaust the Python stack.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from latentlab.errors import LatentlabError
from latentlab.latent.tokens import NAME, NUMBER, Token, TokenParser, shown

MAX_LENGTH = 2_000
MAX_DEPTH = 50
KEYWORDS = ("and", "or", "not")
_COMPARE = {
    "==": np.equal, "!=": np.not_equal, "<": np.less,
    "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
}
_EXAMPLE = "expected e.g. label==1 or smile>0.5"



def _syntax_error(text: str, what: str) -> LatentlabError:
    return LatentlabError(f"where '{shown(text)}': {what}, {_EXAMPLE}")


# ---------------------------------------------------------------------------------------------
# Expression tree
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    """``name op value`` over one column."""

    name: str
    op: str
    value: float

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(_COMPARE[self.op](columns[self.name], self.value), dtype=bool)


@dataclass(frozen=True)
class Not:
    child: Node

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        return ~self.child.evaluate(columns)


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` over two or more children."""

    op: str
    children: tuple[Node, ...]

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        combine = np.logical_and if self.op == "and" else np.logical_or
        out = self.children[0].evaluate(columns)
        for child in self.children[1:]:
            out = combine(out, child.evaluate(columns))
        return out


Node = Compare | Not | BoolOp


def _names(node: Node) -> set[str]:
    if isinstance(node, Compare):
        return {node.name}
    if isinstance(node, Not):
        return _names(node.child)
    return set().union(*(_names(child) for child in node.children))


@dataclass(frozen=True)
class Where:
    """A parsed filter; ``text`` is the expression as given."""

    text: str
    root: Node

    @property
    def names(self) -> set[str]:
        """The column names the expression reads."""
        return _names(self.root)

    def mask(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Boolean mask (N,): the rows of ``columns`` (name -> (N,) array) that match."""
        head = f"where '{shown(self.text)}'"
        available = ", ".join(sorted(columns)) or "(none)"
        arrays: dict[str, np.ndarray] = {}
        for name in sorted(self.names):
            if name not in columns:
                raise LatentlabError(f"{head}: unknown name '{name}', expected one of: {available}")
            array = np.asarray(columns[name])
            if array.ndim != 1:
                raise LatentlabError(f"{head}: column '{name}' has shape {array.shape}, expected (N,)")
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
                raise LatentlabError(f"{head}: column '{name}' holds {array.dtype}, expected numbers")
            arrays[name] = array
        if len({len(a) for a in arrays.values()}) > 1:
            sizes = ", ".join(f"{name}: {len(a)}" for name, a in arrays.items())
            raise LatentlabError(f"{head}: columns have different lengths ({sizes}), expected one per row")
        return self.root.evaluate(arrays)


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
        elif text.startswith(("==", "!=", "<=", ">="), i):
            tokens.append(Token("cmp", text[i : i + 2], i + 1))
            i += 2
        elif ch in "<>":
            tokens.append(Token("cmp", ch, i + 1))
            i += 1
        elif ch in "+-":
            tokens.append(Token("sign", ch, i + 1))
            i += 1
        elif ch in "()":
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
        elif ch == "=":
            raise _syntax_error(text, f"single '=' at column {i + 1} (compare with '==')")
        elif ch in "&|!":
            raise _syntax_error(text, f"unexpected '{ch}' at column {i + 1} (combine with and, or, not)")
        else:
            raise _syntax_error(text, f"unexpected character {shown(repr(ch), 12)} at column {i + 1}")
    tokens.append(Token("end", "", n + 1))
    return tokens


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


class _Parser(TokenParser):
    """Recursive descent over the token list; one method per grammar rule, depth-capped."""

    syntax_error = staticmethod(_syntax_error)

    def __init__(self, text: str) -> None:
        super().__init__(text, _tokenize(text))
        self.depth = 0

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "name" and token.text == word

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _syntax_error(self.text, f"nested deeper than {MAX_DEPTH} levels")

    def whole(self) -> Node:
        node = self.expr()
        if self.peek().kind != "end":
            raise self.fail("'and', 'or' or the end")
        return node

    def expr(self) -> Node:
        children = [self.conjunction()]
        while self.at_keyword("or"):
            self.take()
            children.append(self.conjunction())
        return children[0] if len(children) == 1 else BoolOp("or", tuple(children))

    def conjunction(self) -> Node:
        children = [self.negation()]
        while self.at_keyword("and"):
            self.take()
            children.append(self.negation())
        return children[0] if len(children) == 1 else BoolOp("and", tuple(children))

    def negation(self) -> Node:
        if not self.at_keyword("not"):
            return self.atom()
        self.take()
        self.nest()
        node = Not(self.negation())
        self.depth -= 1
        return node

    def atom(self) -> Node:
        token = self.peek()
        if token.kind == "(":
            self.take()
            self.nest()
            node = self.expr()
            if self.peek().kind != ")":
                raise self.fail("')'")
            self.take()
            self.depth -= 1
            return node
        if token.kind != "name" or token.text in KEYWORDS:
            raise self.fail("a name (e.g. label) or '('")
        self.take()
        if self.peek().kind != "cmp":
            raise self.fail("a comparison (== != < <= > >=)")
        op = self.take().text
        return Compare(token.text, op, self.number())

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


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def parse_where(text: str) -> Where:
    """Parse a filter such as ``"smile>0.5 and hue<0.3"``; LatentlabError on any syntax error."""
    if not isinstance(text, str):
        raise TypeError(f"parse_where expects a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _syntax_error(text, f"{len(text)} characters is too long (at most {MAX_LENGTH})")
    if not text.strip():
        raise _syntax_error(text, "the filter is empty")
    return Where(text, _Parser(text).whole())


def select(where: str | Where, columns: Mapping[str, np.ndarray], option: str = "--where") -> np.ndarray:
    """Indices (int64) of the rows that match; LatentlabError if none do.

    ``option`` names the command-line flag the text came from, for the message.
    """
    parsed = parse_where(where) if isinstance(where, str) else where
    rows = np.flatnonzero(parsed.mask(columns)).astype(np.int64)
    if rows.size == 0:
        raise LatentlabError(f"{option} '{shown(parsed.text)}' selects no rows")
    return rows
