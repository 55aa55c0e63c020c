"""The latent-space commands through typer's runner: edit descriptions, traverse, interpolate,
sample, latent-map, attribute, and their one-line errors."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from latentlab.cli.app import app

runner = CliRunner()


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def flat(result) -> str:  # type: ignore[no-untyped-def]
    return " ".join(result.output.split())


def test_edit_writes_difference_maps_and_descriptions(tiny_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "edit.png"
    result = invoke("edit", tiny_run, "--data", "faces:20", "--index", "3,5", "--edit", "z[0]*=3",
                    "--edit", "z[1]+=2", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and "PSNR" in result.output and "against the reference" in result.output
    data = json.loads((tmp_path / "edit.json").read_text())
    assert [img["index"] for img in data["images"]] == [3, 5]
    first = data["images"][0]["edits"]
    assert [e["edit"] for e in first] == ["z[0]*=3", "z[1]+=2"]
    for e in first:
        assert sum(map(sum, e["regions"])) == pytest.approx(1.0)
        assert set(e["channel_shift"]) == {"red", "green", "blue"}
        assert e["factors"] is not None and "mouth" in e["factors"]  # faces data: known factors reported
    custom = tmp_path / "sub" / "d.json"
    result = invoke("edit", tiny_run, "--data", "faces:20", "--edit", "z[0]=1", "--out", out,
                    "--json", custom, "--overwrite")  # edit.png is there from the first call
    assert result.exit_code == 0 and custom.is_file()


def test_traverse_ranks_marks_and_animates(tiny_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, gifs = tmp_path / "t.png", tmp_path / "gifs"
    result = invoke("traverse", tiny_run, "--data", "faces:64", "--index", "7", "--top", "2", "--steps", "5",
                    "--gif", gifs, "--out", out)
    assert result.exit_code == 0, result.output
    assert "ranked by effect" in result.output and out.is_file()
    ranking = json.loads((tmp_path / "t.ranking.json").read_text())
    effects = [r["effect"] for r in ranking["ranking"]]
    assert effects == sorted(effects, reverse=True) and len(effects) == 4
    assert ranking["traversed"] == [r["element"] for r in ranking["ranking"][:2]]
    assert len(ranking["values"]) == 2 and len(ranking["values"][0]) == 5
    assert sorted(p.name for p in gifs.iterdir()) == sorted(f"z{d}.gif" for d in ranking["traversed"])
    with Image.open(gifs / f"z{ranking['traversed'][0]}.gif") as gif:
        assert gif.n_frames == 8  # 5 forth, 3 back


def test_traverse_dims_and_vae_kl_ranking(tiny_vae_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "v.png"
    result = invoke("traverse", tiny_vae_run, "--data", "faces:40", "--elements", "0,2", "--rank-by", "kl",
                    "--steps", "3", "--out", out)
    assert result.exit_code == 0, result.output
    ranking = json.loads((tmp_path / "v.ranking.json").read_text())
    kls = [r["kl"] for r in ranking["ranking"]]
    assert kls == sorted(kls, reverse=True) and ranking["traversed"] == [0, 2]
    assert ranking["values"][0][0] == -3.0 and ranking["values"][0][-1] == 3.0  # +-3 sigma of the prior


def test_interpolate_and_sample(tiny_run, tiny_vae_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("interpolate", tiny_vae_run, "--data", "faces:20", "--from", "3", "--to", "11",
                    "--steps", "4", "--spherical", "--out", tmp_path / "i.png")
    assert result.exit_code == 0, result.output
    assert "spherical" in result.output and (tmp_path / "i.png").is_file()
    result = invoke("sample", tiny_run, "--data", "faces:64", "--n", "9", "--out", tmp_path / "ae.png")
    assert result.exit_code == 0, result.output
    assert "N(0, I)" in flat(result) and "fitted to 64 encoded images" in flat(result)
    result = invoke("sample", tiny_vae_run, "--n", "4", "--out", tmp_path / "vae.png")
    assert result.exit_code == 0 and "fitted" not in result.output and "prior" in result.output


def test_latent_map_plane_for_two_elements_projection_otherwise(tiny_2d_run, tiny_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("latent-map", tiny_2d_run, "--data", "faces:64", "--grid", "5",
                    "--out", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    assert "decoded 5 x 5 plane" in flat(result)
    result = invoke("latent-map", tiny_run, "--data", "faces:64", "--out", tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    assert "PCA projection scatter" in flat(result) and "decoded" not in result.output
    with Image.open(tmp_path / "p.png") as plane, Image.open(tmp_path / "s.png") as scatter:
        assert plane.width > 1.5 * scatter.width  # two panels beside each other vs one


def test_latent_map_result_kinds(tiny_2d_run, tiny_run) -> None:  # type: ignore[no-untyped-def]
    from latentlab.latent.tools import latent_map
    from latentlab.runs import open_run

    two, four = open_run(tiny_2d_run), open_run(tiny_run)
    m2 = latent_map(two, two.data("faces:30"), grid=3)
    m4 = latent_map(four, four.data("faces:30"))
    assert m2.kind == "plane" and m2.plane is not None and m2.plane[0].shape[:2] == (3, 3)
    assert m4.kind == "projection" and m4.plane is None and m4.xy.shape == (30, 2)


def test_attribute_with_labels_and_factors(tiny_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("attribute", tiny_run, "--data", "faces:64", "--where", "label==1",
                    "--versus", "label==0", "--apply-to", "7", "--strengths", "-2,0,2",
                    "--out", tmp_path / "a.png")
    assert result.exit_code == 0, result.output
    assert "strength -2:" in result.output and "strength 2:" in result.output
    assert "strength 0:" not in result.output and (tmp_path / "a.png").is_file()
    result = invoke("attribute", tiny_run, "--data", "faces:64", "--where", "mouth>0.5", "--apply-to", "1",
                    "--out", tmp_path / "b.png")
    assert result.exit_code == 0, result.output
    assert "not (mouth>0.5)" in result.output


BAD = [
    (["attribute", "{run}", "--data", "faces:20", "--where", "label===1"], ["label===1"]),
    (["attribute", "{run}", "--data", "faces:20", "--where", "label==7"], ["--where", "selects no rows"]),
    (["attribute", "{run}", "--data", "faces:20", "--where", "label==1", "--versus", "mouth>5"],
     ["--versus", "selects no rows"]),
    (["attribute", "{run}", "--data", "faces:20", "--where", "smile>0.5"], ["unknown name 'smile'"]),
    (["attribute", "{run}", "--data", "faces:20", "--where", "label==1", "--apply-to", "20"], ["index 20"]),
    (["traverse", "{run}", "--data", "faces:20", "--elements", "0,4"], ["latent element 4", "out of range"]),
    (["traverse", "{run}", "--data", "faces:20", "--steps", "0"], ["--steps 0"]),
    (["traverse", "{run}", "--data", "faces:20", "--rank-by", "kl"], ["--rank-by kl", "needs a VAE"]),
    (["traverse", "{run}", "--data", "faces:20", "--top", "9"], ["--top 9"]),
    (["traverse", "{run}", "--data", "faces:20", "--top", "2", "--elements", "1"], ["--elements and --top"]),
    (["interpolate", "{run}", "--data", "faces:20", "--from", "3", "--to", "20"], ["index 20"]),
    (["interpolate", "{run}", "--data", "faces:20", "--from", "-21", "--to", "2"], ["index -21"]),
    (["interpolate", "{run}", "--data", "faces:20", "--from", "3", "--to", "4", "--steps", "0"],
     ["--steps 0"]),
    (["sample", "{run}", "--n", "0"], ["--n 0"]),
    (["latent-map", "{run}", "--data", "faces:20", "--method", "umap"], ["--method umap"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD, ids=[" ".join(a[:1] + a[4:]) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(tiny_run, tmp_path, args, needles) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "fig.png"
    result = invoke(*[a.format(run=tiny_run) for a in args], "--out", out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = result.output.strip()
    assert text.startswith("error:") and len(text.splitlines()) == 1
    for needle in needles:
        assert needle in " ".join(text.split()), text
    assert list(tmp_path.iterdir()) == []
