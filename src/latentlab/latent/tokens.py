"""What the two small expression grammars share (edit expressions, ``--where`` filters): tokens,
the number and name patterns, one-line display of user text, and a recursive-descent cursor."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from latentlab.errors import LatentlabError

NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Token(NamedTuple):
    kind: str  # the grammar's token kinds, and "end"
    text: str
    column: int  # 1-based, for messages


def shown(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class TokenParser:
    """A cursor over the token list; a subclass adds one method per grammar rule."""

    syntax_error: Callable[[str, str], LatentlabError]

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self, what: str) -> LatentlabError:
        token = self.peek()
        found = "the end" if token.kind == "end" else f"'{shown(token.text, 20)}' at column {token.column}"
        return type(self).syntax_error(self.text, f"found {found} where {what} should be")
