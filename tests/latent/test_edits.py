"""Edit expressions: grammar, messages, and that apply() equals the course code's torch edits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from latentlab.errors import LatentlabError
from latentlab.latent import Edit, apply_edits, parse_edit, parse_edits


@pytest.fixture
def z() -> torch.Tensor:
    return torch.arange(10, dtype=torch.float32).reshape(2, 5) - 3.5  # (N=2, D=5)


def _error(text: str) -> str:
    with pytest.raises(LatentlabError) as info:
        parse_edit(text)
    return str(info.value)


# ---- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "index", "op", "value", "normal"),
    [
        ("z[0]*=3", (0,), "*=", 3.0, "z[0]*=3"),
        ("z[4] = -1", (4,), "=", -1.0, "z[4]=-1"),
        ("z[-1]+=0.5", (-1,), "+=", 0.5, "z[-1]+=0.5"),
        ("z[+2]-=2", (2,), "-=", 2.0, "z[2]-=2"),
        ("z/=4", None, "/=", 4.0, "z/=4"),
        ("z[1:3]*=2", slice(1, 3), "*=", 2.0, "z[1:3]*=2"),
        ("z[:2]=0", slice(None, 2), "=", 0.0, "z[:2]=0"),
        ("z[-2:]+=1", slice(-2, None), "+=", 1.0, "z[-2:]+=1"),
        ("z[:]*=-1", slice(None, None), "*=", -1.0, "z[:]*=-1"),
        ("z[-1:2]=1", slice(-1, 2), "=", 1.0, "z[-1:2]=1"),
        ("z[0,2,-1]-=1", (0, 2, -1), "-=", 1.0, "z[0,2,-1]-=1"),
        ("z[1,1]*=2", (1, 1), "*=", 2.0, "z[1,1]*=2"),
    ],
)
def test_parse_forms(text: str, index: object, op: str, value: float, normal: str) -> None:
    edit = parse_edit(text)
    assert (edit.index, edit.op, edit.value, edit.text) == (index, op, value, normal)


@pytest.mark.parametrize(
    ("number", "value"),
    [("3", 3.0), ("-2.5", -2.5), ("+.5", 0.5), ("1e-3", 1e-3), ("2.", 2.0), ("-1E+2", -100.0),
     ("0.25e1", 2.5), (".5E-1", 0.05), ("- 2", -2.0), ("007", 7.0), ("0", 0.0)],
)
def test_float_syntaxes(number: str, value: float) -> None:
    assert parse_edit(f"z[0]={number}").value == value


@pytest.mark.parametrize(
    "text", ["z[0]*=3", " z [ 0 ] *= 3 ", "\tz\n[0]\t*=\n3", "z[ 0 ]*=  +3.0", "z [0]*= 3e0 "]
)
def test_whitespace_between_tokens(text: str) -> None:
    assert parse_edit(text) == parse_edit("z[0]*=3")


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "x=3", "Z[0]=1", "z0=1", "z", "z[0]", "z[0]*", "z[0]*=", "z[0]**=3", "z[0]==3",
        "z[0]*=3 4", "z[0]*=3z", "z[0]*=1.2.3", "z[0]*=1e", "z[0]*=e3", "z[]=1", "z[=1", "z[0=1",
        "z0]=1", "z[0 1]=1", "z[0,]=1", "z[,0]=1", "z[1.5]=1", "z[1e2]=1", "z[a]=1", "z[0:1:2]=1",
        "z[::]=1", "z[3:3]=1", "z[4:2]=1", "z[-1:-3]=1", "z[0]=inf", "z[0]=-inf", "z[0]=nan",
        "z[0]=1e999", "z[0]=--1", "z[0]=+-1", "z[0]=1;", "z=1;z=2", "z[0]*=3 # note", "z[０]=1",
        "z[٣]=1", "z[0]=(1)", "z[0]=1/2", "z[[0]]=1", "z[0][1]=1", "z.x=1", "__import__('os')",
        "z[0]=3\x00", "z /= 0", "z[1]/=0.0", "z/=-0e5",
    ],
)
def test_syntax_errors_are_one_line_and_name_the_expression(text: str) -> None:
    message = _error(text)
    assert "\n" not in message
    assert message.startswith(f"edit '{' '.join(text.split())}'")
    assert "expected" in message


def test_specific_messages() -> None:
    assert _error("z[0]*=3z") == "edit 'z[0]*=3z': malformed number '3z' at column 7, expected e.g. z[0]*=3"
    assert "division by zero" in _error("z /= 0")
    assert "not a finite number" in _error("z[0]=inf")
    assert "not a finite number" in _error("z[0]=1e999")
    assert "selects no elements" in _error("z[3:3]=1")
    assert "not a whole number" in _error("z[1.5]=1")


def test_long_expression_is_truncated_in_message() -> None:
    text = "z[" + ",".join(["1"] * 100) + "]*=x"
    message = _error(text)
    assert f"edit '{text[:59]}…'" in message
    assert len(message) < 200


def test_too_long_and_huge_index() -> None:
    assert "too long" in _error("z[0]=1" + " " * 20_000)
    assert "too long" in _error("z[" + "9" * 5000 + "]=1")


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_edit(3)  # type: ignore[arg-type]


# ---- positions ----------------------------------------------------------------------------------


def test_positions() -> None:
    assert parse_edit("z=1").positions(3) == [0, 1, 2]
    assert parse_edit("z[-1]=1").positions(3) == [2]
    assert parse_edit("z[1:]=1").positions(4) == [1, 2, 3]
    assert parse_edit("z[0:100]=1").positions(3) == [0, 1, 2]  # Python slice clipping
    assert parse_edit("z[-10:2]=1").positions(3) == [0, 1]
    assert parse_edit("z[2,0,-1,2]=1").positions(3) == [2, 0]  # each element once, in order


def test_out_of_range_index() -> None:
    with pytest.raises(LatentlabError) as info:
        parse_edit("z[12]*=3").positions(3)
    assert str(info.value) == "edit 'z[12]*=3': index 12 is out of range for a latent of 3 elements"
    with pytest.raises(LatentlabError, match="index -4 is out of range for a latent of 3 elements"):
        parse_edit("z[0,-4]=1").positions(3)
    with pytest.raises(LatentlabError, match="index 3 is out of range"):
        parse_edit("z[3]=1").apply(torch.zeros(2, 3))


def test_slice_empty_for_this_latent() -> None:
    with pytest.raises(LatentlabError, match=r"edit 'z\[5:\]=1': selects no elements of a latent of 3"):
        parse_edit("z[5:]=1").positions(3)
    with pytest.raises(LatentlabError, match="selects no elements"):
        parse_edit("z[-2:2]=1").positions(5)  # 3:2
    assert parse_edit("z[-2:2]=1").positions(3) == [1]  # 1:2


# ---- apply --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "course_code"),
    [
        ("z[0]*=3", lambda z: z[:, 0] * 3),
        ("z[0]=3", lambda z: torch.full_like(z[:, 0], 3.0)),
        ("z[0]+=3", lambda z: z[:, 0] + 3),
        ("z[0]-=3", lambda z: z[:, 0] - 3),
        ("z[0]/=3", lambda z: z[:, 0] / 3),
    ],
)
def test_every_op_equals_plain_torch(
    z: torch.Tensor, text: str, course_code: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    expected = z.clone()
    expected[:, 0] = course_code(z)
    assert torch.equal(parse_edit(text).apply(z), expected)


def test_single_row_equals_course_code(z: torch.Tensor) -> None:
    expected = z[:1].clone()
    expected[0][0] = expected[0][0] * 3  # as in the course notebooks
    assert torch.equal(parse_edit("z[0]*=3").apply(z[:1]), expected)


@pytest.mark.parametrize(
    ("text", "columns"),
    [("z[1:3]+=1", [1, 2]), ("z[-2:]+=1", [3, 4]), ("z[:]+=1", [0, 1, 2, 3, 4]), ("z+=1", [0, 1, 2, 3, 4]),
     ("z[0,-1]+=1", [0, 4]), ("z[1,1,1]+=1", [1])],
)
def test_selections(z: torch.Tensor, text: str, columns: list[int]) -> None:
    expected = z.clone()
    expected[:, columns] += 1  # duplicates in a list edit an element once
    assert torch.equal(parse_edit(text).apply(z), expected)


@pytest.mark.parametrize("text", ["z[0]*=3", "z=0", "z[1:]/=2", "z[0,0]+=1", "z[-1]-=5"])
def test_apply_never_mutates(z: torch.Tensor, text: str) -> None:
    before = z.clone()
    out = parse_edit(text).apply(z)
    assert torch.equal(z, before)
    assert out.data_ptr() != z.data_ptr()
    out.fill_(42.0)
    assert torch.equal(z, before)


def test_apply_keeps_dtype_and_checks_input() -> None:
    z64 = torch.ones(3, 4, dtype=torch.float64)
    assert parse_edit("z[0]*=3").apply(z64).dtype == torch.float64
    with pytest.raises(LatentlabError, match=r"expected a flat latent of shape \(N, D\), got shape \(4,\)"):
        parse_edit("z[0]*=3").apply(torch.ones(4))
    with pytest.raises(LatentlabError, match="floating-point"):
        parse_edit("z[0]*=3").apply(torch.ones(2, 4, dtype=torch.long))


def test_value_must_fit_the_latent_dtype() -> None:
    with pytest.raises(LatentlabError, match="1e[+]39 overflows a float32 latent"):
        parse_edit("z=1e39").apply(torch.zeros(1, 2))
    with pytest.raises(LatentlabError, match="100000 overflows a float16 latent"):
        parse_edit("z+=1e5").apply(torch.zeros(1, 2, dtype=torch.float16))
    with pytest.raises(LatentlabError, match="1e-50 is zero in a float32 latent, expected a non-zero"):
        parse_edit("z/=1e-50").apply(torch.zeros(1, 2))
    assert parse_edit("z=1e39").apply(torch.zeros(1, 2, dtype=torch.float64))[0, 0] == 1e39


def test_divide_by_zero() -> None:
    with pytest.raises(LatentlabError, match=r"edit 'z\[0\]/=0': division by zero"):
        parse_edit("z[0]/=0")
    with pytest.raises(LatentlabError, match="division by zero"):
        Edit("z/=0", None, "/=", 0.0)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(LatentlabError, match="unknown operator"):
        Edit("z**=2", None, "**=", 2.0)
    with pytest.raises(LatentlabError, match="not finite"):
        Edit("z=nan", None, "=", float("nan"))
    assert hash(parse_edit("z[0,1]*=2")) == hash(parse_edit("z[0, 1] *= 2.0"))
    assert len({parse_edit("z[1:]=0"), parse_edit("z[1 :] = 0.0"), parse_edit("z=0")}) == 2  # slices too


# ---- several edits ------------------------------------------------------------------------------


def test_parse_edits_splits_on_semicolons() -> None:
    edits = parse_edits(["z[0]*=3; z[1] += 1;", "z=0"])
    assert [e.text for e in edits] == ["z[0]*=3", "z[1]+=1", "z=0"]
    assert [e.text for e in parse_edits("z[0]*=3;z[1]=2")] == ["z[0]*=3", "z[1]=2"]  # one str
    assert parse_edits([]) == []


@pytest.mark.parametrize("texts", [[""], [" ; "], ["z=1", ";;"], ["z=1; x=2"], ["z[0]*=3;z[0]/=0"]])
def test_parse_edits_errors(texts: list[str]) -> None:
    with pytest.raises(LatentlabError, match="^edit '"):
        parse_edits(texts)


def test_apply_edits_in_order(z: torch.Tensor) -> None:
    before = z.clone()
    out = apply_edits(z, parse_edits("z[0]+=1; z[0]*=2"))
    expected = z.clone()
    expected[:, 0] = (z[:, 0] + 1) * 2
    assert torch.equal(out, expected)
    assert torch.equal(z, before)
    empty = apply_edits(z, [])
    assert torch.equal(empty, z) and empty.data_ptr() != z.data_ptr()
