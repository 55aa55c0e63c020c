"""One frozen base for every model family's config: the shared fields, validated once.

A family's config (``FCNConfig``, ``ConvConfig``, ...) subclasses :class:`ModelConfig`, adds its
own fields, and -- where it has checks of its own -- calls ``super().__post_init__()`` first.
The base checks what every family shares (``kind``, ``in_shape``, ``batchnorm``, ``activation``,
``out_activation``, ``recon_loss``), every ``bool`` field, and every layer-width field. Width fields are found
by their declared type, not by a list to keep up to date: a field declared :data:`Widths`
(``tuple[int, ...]``), ``Widths | None`` or ``tuple[Widths, ...]`` must hold positive integers,
so a new family (or a new field) cannot forget the check.

Configs are keyword-only: a field moved into the base cannot shift a positional argument.
Field names are the JSON keys of ``config.json`` (see :func:`latentlab.models.base.config_to_dict`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from latentlab.errors import LatentlabError
from latentlab.models.base import ACTIVATIONS, OUT_ACTIVATIONS

Widths = tuple[int, ...]  # layer widths (hidden sizes, conv channels): positive integers
RECON_LOSSES = ("mse", "l1", "bce", "ssim")  # see latentlab.losses.reconstruction_loss
OUTPUT_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}  # output activation -> value range


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Fields every model family has; subclasses set ``kind``'s default to their registry kind."""

    kind: str
    in_shape: tuple[int, int, int] = (3, 64, 64)  # (C, H, W)
    batchnorm: bool = False
    activation: str = "relu"
    out_activation: str = "tanh"
    recon_loss: str = "mse"  # mse, l1, bce (a sigmoid output: value range 0,1) or ssim; older runs: mse

    def __post_init__(self) -> None:
        own_kind = _default_kind(type(self))
        if own_kind is not None and self.kind != own_kind:
            raise LatentlabError(f"kind '{self.kind}': expected '{own_kind}' for {type(self).__name__}")
        check_in_shape(self.in_shape)
        checked = _checked_fields(type(self))
        for name, nested, optional in checked.widths:
            value = getattr(self, name)
            if not (optional and value is None):
                check_widths(name, value, nested)
        for name in checked.bools:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise LatentlabError(f"{name} {value!r}: expected true or false")
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("output activation", self.out_activation, OUT_ACTIVATIONS)
        check_choice("recon loss", self.recon_loss, RECON_LOSSES)
        if self.recon_loss == "bce" and self.out_activation != "sigmoid":
            raise LatentlabError(f"recon loss bce: expected value range 0,1 (a sigmoid output), "
                                 f"not a '{self.out_activation}' output")


# ---------------------------------------------------------------- checks


def check_widths(name: str, value: Any, nested: bool = False) -> None:
    """``value`` is a tuple (or list) of positive ints -- of such tuples when ``nested``."""
    if nested and isinstance(value, (tuple, list)):
        for i, inner in enumerate(value):
            check_widths(f"{name}[{i}]", inner)
        return
    if not isinstance(value, (tuple, list)) or not all(_positive_int(v) for v in value):
        shown = tuple(value) if isinstance(value, list) else value
        expected = "tuples" if nested else "a tuple"
        raise LatentlabError(f"{name} {shown!r}: expected {expected} of positive integer layer widths")


def check_choice(what: str, value: str, choices: dict[str, Any] | tuple[str, ...]) -> None:
    if value not in choices:
        raise LatentlabError(f"{what} '{value}': expected one of {', '.join(choices)}")


def check_positive(what: str, values: tuple[int, ...] | list[int]) -> None:
    for v in values:
        if not _positive_int(v):
            raise LatentlabError(f"{what} {tuple(values)}: expected positive integers")


def check_in_shape(in_shape: Any) -> None:
    if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3:
        shown = tuple(in_shape) if isinstance(in_shape, list) else in_shape
        raise LatentlabError(f"input shape {shown!r}: expected (channels, height, width)")
    check_positive("input shape", list(in_shape))


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


# ---------------------------------------------------------------- fields by declared type


@dataclass(frozen=True)
class _Checked:
    """Which fields of one config class the base checks by their declared type."""

    widths: tuple[tuple[str, bool, bool], ...]  # (name, nested, optional)
    bools: tuple[str, ...]


_CHECKED: dict[type[Any], _Checked] = {}  # per config class: type hints are resolved once


def _checked_fields(cls: type[Any]) -> _Checked:
    """Fields declared ``Widths`` or ``tuple[Widths, ...]`` (optional when ``... | None``), and ``bool``."""
    if cls not in _CHECKED:
        names = {f.name for f in dataclasses.fields(cls)}
        hints = {k: v for k, v in typing.get_type_hints(cls).items() if k in names}
        widths = []
        for name, hint in hints.items():
            bare = _without_none(hint)
            if bare in (Widths, tuple[Widths, ...]):
                widths.append((name, bare != Widths, bare != hint))
        _CHECKED[cls] = _Checked(tuple(widths), tuple(k for k, v in hints.items() if v is bool))
    return _CHECKED[cls]


def _without_none(hint: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _default_kind(cls: type[Any]) -> str | None:
    default = next(f.default for f in dataclasses.fields(cls) if f.name == "kind")
    return default if isinstance(default, str) else None


def check_weight(what: str, value: float) -> None:
    """A loss weight or hyper-parameter: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise LatentlabError(f"{what} {value!r}: expected a finite number >= 0")
