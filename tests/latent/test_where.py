"""Row filters: grammar, precedence, messages, depth and length caps, select()."""

from __future__ import annotations

import numpy as np
import pytest

from latentlab.errors import LatentlabError
from latentlab.latent import Where, parse_where, select
from latentlab.latent.where import MAX_DEPTH, MAX_LENGTH

LABEL = np.array([0, 1, 1, 2, 0, 9])
SMILE = np.array([0.1, 0.6, 0.9, 0.7, 0.5, -1.0])
HUE = np.array([0.2, 0.1, 0.5, 0.0, 0.3, 0.25], dtype=np.float32)
COLUMNS = {"label": LABEL, "smile": SMILE, "hue": HUE}


def _mask(text: str) -> np.ndarray:
    return parse_where(text).mask(COLUMNS)


def _error(text: str) -> str:
    with pytest.raises(LatentlabError) as info:
        parse_where(text)
    return str(info.value)


# ---- meaning ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("label==1", LABEL == 1),
        ("label!=1", LABEL != 1),
        ("smile<0.5", SMILE < 0.5),
        ("smile<=0.5", SMILE <= 0.5),
        ("smile>0.5", SMILE > 0.5),
        ("smile>=0.5", SMILE >= 0.5),
        ("smile>0.5 and hue<0.3", (SMILE > 0.5) & (HUE < 0.3)),
        ("label==0 or label==9", (LABEL == 0) | (LABEL == 9)),
        ("not label==1", ~(LABEL == 1)),
        ("not not label==1", LABEL == 1),
        ("label==0 or label==1 and smile>0.7", (LABEL == 0) | ((LABEL == 1) & (SMILE > 0.7))),
        ("(label==0 or label==1) and smile>0.7", ((LABEL == 0) | (LABEL == 1)) & (SMILE > 0.7)),
        ("not label==1 and smile>0", ~(LABEL == 1) & (SMILE > 0)),
        ("not (label==1 and smile>0)", ~((LABEL == 1) & (SMILE > 0))),
        ("label>=1 and label<=2 and hue>0 or smile<-.5",
         ((LABEL >= 1) & (LABEL <= 2) & (HUE > 0)) | (SMILE < -0.5)),
        ("((label==9))", LABEL == 9),
    ],
)
def test_meaning_matches_numpy(text: str, expected: np.ndarray) -> None:
    mask = _mask(text)
    assert mask.dtype == np.bool_ and mask.shape == (6,)
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize(
    ("number", "value"),
    [("1", 1.0), ("-2.5", -2.5), ("+.5", 0.5), ("1e-3", 1e-3), ("2.", 2.0), ("-1E+2", -100.0), ("- 3", -3.0)],
)
def test_float_syntaxes(number: str, value: float) -> None:
    root = parse_where(f"smile>{number}").root
    assert root.value == value  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text", ["smile>0.5 and hue<0.3", "  smile > 0.5\tand\nhue <0.3 ", "(smile>0.5)and(hue<0.3)"]
)
def test_whitespace_between_tokens(text: str) -> None:
    assert parse_where(text).root == parse_where("smile>0.5 and hue<0.3").root


def test_names() -> None:
    assert parse_where("smile>0.5 and (hue<0.3 or not label==1)").names == {"smile", "hue", "label"}
    assert parse_where("android==1 and order<2 and notch>0").names == {"android", "order", "notch"}


def test_bool_and_integer_columns() -> None:
    where = parse_where("male==1 and age>=30")
    mask = where.mask({"male": np.array([True, False, True]), "age": np.array([30, 40, 20], dtype=np.uint8)})
    np.testing.assert_array_equal(mask, [True, False, False])


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "label", "label==", "==1", "1==label", "label=1", "label===1", "label=>1", "label<>1",
        "label==1 &&", "label==1 & smile>0", "label==1 || smile>0", "!label==1", "label!1", "label==1 and",
        "and label==1", "label==1 or or smile>0", "not", "(label==1", "label==1)", "()", "(label==1))",
        "label==1 smile>0", "label==abc", "label==inf", "smile>-inf", "smile>nan", "smile>1e999",
        "label==1x", "label==1.2.3", "label==1e", "label in (1, 2)", "label==1 AND smile>0", "and==1",
        "not==1", "label==(1)", "label==--1", "0<smile<1", "smile>0.5;", "__import__('os')", "label==٣",
        "lab el==1", "label==1\x00", "label == 1 or",
    ],
)
def test_syntax_errors_are_one_line_and_name_the_expression(text: str) -> None:
    message = _error(text)
    assert "\n" not in message
    assert message.startswith(f"where '{' '.join(text.split())}'")
    assert message.endswith("expected e.g. label==1 or smile>0.5")


def test_specific_messages() -> None:
    assert "compare with '=='" in _error("label=1")
    assert "combine with and, or, not" in _error("label==1 && smile>0")
    assert "not a finite number" in _error("smile>inf")
    assert _error("label==1)") == (
        "where 'label==1)': found ')' at column 9 where 'and', 'or' or the end should be, "
        "expected e.g. label==1 or smile>0.5")


def test_unknown_name_lists_available() -> None:
    with pytest.raises(LatentlabError) as info:
        _mask("smil>0.5")
    assert str(info.value) == "where 'smil>0.5': unknown name 'smil', expected one of: hue, label, smile"
    with pytest.raises(LatentlabError, match=r"expected one of: \(none\)"):
        parse_where("label==1").mask({})


def test_bad_columns() -> None:
    where = parse_where("a==1 and b==1")
    with pytest.raises(LatentlabError, match="different lengths"):
        where.mask({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(LatentlabError, match=r"column 'a' has shape \(2, 2\), expected \(N,\)"):
        where.mask({"a": np.zeros((2, 2)), "b": np.zeros(2)})
    with pytest.raises(LatentlabError, match="column 'a' holds <U1, expected numbers"):
        where.mask({"a": np.array(["x", "y"]), "b": np.zeros(2)})


def test_depth_cap() -> None:
    ok = "(" * MAX_DEPTH + "label==1" + ")" * MAX_DEPTH
    np.testing.assert_array_equal(_mask(ok), LABEL == 1)
    assert "nested deeper than 50" in _error("(" + ok + ")")
    assert _mask("not " * MAX_DEPTH + "label==1").shape == (6,)
    assert "nested deeper than 50" in _error("not " * (MAX_DEPTH + 1) + "label==1")
    assert "nested deeper" in _error("(not " * 30 + "label==1" + ")" * 30)
    # far past the Python recursion limit, still a LatentlabError
    assert "nested deeper" in _error("(" * 990 + "x>1" + ")" * 990)
    assert "nested deeper" in _error("not(" * 490)
    wide = " and ".join(["(label==1)"] * 120)  # long but flat: fine
    np.testing.assert_array_equal(_mask(wide), LABEL == 1)


def test_length_cap() -> None:
    assert "too long" in _error("label==1" + " " * MAX_LENGTH)
    message = _error("x" * 5000)
    assert len(message) < 200 and "…" in message


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_where(None)  # type: ignore[arg-type]


# ---- select -------------------------------------------------------------------------------------


def test_select_returns_int_indices() -> None:
    rows = select("label==1", COLUMNS)
    assert rows.dtype == np.int64
    np.testing.assert_array_equal(rows, [1, 2])
    np.testing.assert_array_equal(select(parse_where("smile>0.6"), COLUMNS), [2, 3])
    assert isinstance(parse_where("label==1"), Where)


def test_select_nothing_is_an_error() -> None:
    with pytest.raises(LatentlabError) as info:
        select("label==5", COLUMNS)
    assert str(info.value) == "--where 'label==5' selects no rows"
    with pytest.raises(LatentlabError, match="^--versus 'label==1 and label==0' selects no rows$"):
        select("label==1 and label==0", COLUMNS, option="--versus")
