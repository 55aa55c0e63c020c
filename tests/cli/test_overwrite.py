"""Every command that writes files refuses an existing one without ``--overwrite``: exit 2, one line
naming it, before any work, the file left as it was; with ``--overwrite`` it is replaced."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentlab.cli.app import app

runner = CliRunner()
OLD = b"an older file\n"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # {run}, {vae} and {tmp} are filled in
    existing: str  # the output that is already there, under {tmp}
    named: str = ""  # what the message names, when not ``existing`` (a folder)
    replaced: bool = True  # whether --overwrite is run too


FIG = ("--data", "faces:16", "--limit", "16")
CASES = {
    "reconstruct": Case(("reconstruct", "{run}", "--data", "faces:8", "--index", "0", "--out", "{tmp}/r.png"),
                        "r.png"),
    "edit figure": Case(("edit", "{run}", "--data", "faces:8", "--edit", "z[0]*=3", "--out", "{tmp}/e.png"),
                        "e.png"),
    "edit json": Case(("edit", "{run}", "--data", "faces:8", "--edit", "z[0]*=3", "--out", "{tmp}/e.png"),
                      "e.json"),
    "edit --json": Case(("edit", "{run}", "--data", "faces:8", "--edit", "z[0]*=3", "--out", "{tmp}/e.png",
                         "--json", "{tmp}/d.json"), "d.json"),
    "traverse figure": Case(("traverse", "{run}", *FIG, "--top", "1", "--steps", "3", "--out", "{tmp}/t.png"),
                            "t.png"),
    "traverse ranking": Case(("traverse", "{run}", *FIG, "--top", "1", "--steps", "3", "--out", "{tmp}/t.png"),
                             "t.ranking.json"),
    "traverse gif": Case(("traverse", "{run}", *FIG, "--elements", "0", "--steps", "3", "--gif", "{tmp}/g",
                          "--out", "{tmp}/t.png"), "g/z0.gif"),
    "interpolate": Case(("interpolate", "{run}", "--data", "faces:8", "--from", "0", "--to", "1", "--steps", "3",
                         "--out", "{tmp}/i.png"), "i.png"),
    "sample": Case(("sample", "{run}", *FIG, "--n", "4", "--out", "{tmp}/s.png"), "s.png"),
    "latent-map": Case(("latent-map", "{run}", *FIG, "--out", "{tmp}/m.png"), "m.png"),
    "attribute": Case(("attribute", "{run}", *FIG, "--where", "label==1", "--out", "{tmp}/a.png"), "a.png"),
    "score": Case(("score", "{run}", "--data", "faces:8", "--score", "mse", "--quiet", "--out", "{tmp}/p.csv"),
                  "p.csv"),
    "evaluate": Case(("evaluate", "{run}", "--data", "faces:16:5", "--labels", "label==1", "--fit-limit", "32",
                      "--k", "2", "--quiet", "--out-dir", "{tmp}/ev"), "ev/histogram.png"),
    "report": Case(("report", "{run}", "--data", "faces:16", "--out", "{tmp}/r.html"), "r.html"),
    "summary --diagram": Case(("summary", "--preset", "hw8-fcn", "--diagram", "{tmp}/arch.png"), "arch.png"),
    "compare-ae-vae": Case(("compare-ae-vae", "--ae", "{run}", "--vae", "{vae}", "--data", "faces:40",
                            "--out", "{tmp}/cmp"), "cmp/compare.html"),
    "demo": Case(("demo", "--quiet", "--out", "{tmp}/demo"), "demo/config.json", named="demo"),
    "oneclass": Case(("oneclass", "--data", "idx:{tmp}/none", "--normal", "0", "--quiet", "--out", "{tmp}/oc"),
                     "oc/class_0/config.json", named="oc", replaced=False),
}


def invoke(case: Case, tmp: Path, run: Path, vae: Path, *extra: str):  # type: ignore[no-untyped-def]
    args = [a.format(tmp=tmp, run=run, vae=vae) for a in case.args]
    return runner.invoke(app, [*args, *extra])


@pytest.mark.parametrize("name", list(CASES))
def test_an_existing_output_is_refused_unless_overwrite(name: str, tiny_run: Path, tiny_vae_run: Path,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import latentlab.cli.demo as demo

    monkeypatch.setattr(demo, "run_demo", functools.partial(demo.run_demo, n_images=96, epochs=1, report=False))
    case = CASES[name]
    existing = tmp_path / case.existing
    existing.parent.mkdir(parents=True, exist_ok=True)
    existing.write_bytes(OLD)
    before = sorted(p for p in tmp_path.rglob("*"))

    refused = invoke(case, tmp_path, tiny_run, tiny_vae_run)
    assert refused.exit_code == 2, refused.output
    lines = refused.output.strip().splitlines()
    named = tmp_path / (case.named or case.existing)
    assert len(lines) == 1 and lines[0].startswith("error:"), refused.output
    assert f"{named}: " in lines[0] and "--overwrite" in lines[0], lines[0]
    assert existing.read_bytes() == OLD
    assert sorted(p for p in tmp_path.rglob("*")) == before  # refused before any work: nothing new

    if case.replaced:
        replaced = invoke(case, tmp_path, tiny_run, tiny_vae_run, "--overwrite")
        assert replaced.exit_code == 0, replaced.output
        assert existing.read_bytes() != OLD


def test_traverse_top_refuses_any_gif_already_in_the_folder(tiny_run: Path, tmp_path: Path) -> None:
    """With --top the elements come from the ranking: any z<element>.gif there could be replaced."""
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "z3.gif").write_bytes(OLD)
    result = runner.invoke(app, ["traverse", str(tiny_run), *FIG, "--top", "1", "--gif", str(tmp_path / "g"),
                                 "--out", str(tmp_path / "t.png")])
    assert result.exit_code == 2 and f"{tmp_path / 'g' / 'z3.gif'}: exists" in result.output
    assert not (tmp_path / "t.png").exists()


def test_an_output_that_is_a_folder_is_refused_even_with_overwrite(tiny_run: Path, tmp_path: Path) -> None:
    (tmp_path / "r.png").mkdir()
    result = runner.invoke(app, ["reconstruct", str(tiny_run), "--out", str(tmp_path / "r.png"), "--overwrite"])
    assert result.exit_code == 2 and f"{tmp_path / 'r.png'}: is a folder" in result.output
