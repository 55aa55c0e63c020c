"""The explorer's routes through FastAPI's test client: answers, and each bad request."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from latentlab.errors import LatentlabError

D = 4  # latent size of the tiny runs


def _z(client: Any, index: int = 0) -> list[float]:
    return client.get(f"/api/image/{index}").json()["z"]


# ------------------------------------------------------------------------------ page and static


def test_page_and_static_files_come_from_the_package(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text and "/static/style.css" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    js, css = client.get("/static/app.js"), client.get("/static/style.css")
    assert js.status_code == css.status_code == 200
    assert "javascript" in js.headers["content-type"] and "text/css" in css.headers["content-type"]
    from importlib import resources

    static = resources.files("latentlab.web").joinpath("static")
    assert js.text == static.joinpath("app.js").read_text(encoding="utf-8")
    for text in (page.text, js.text, css.text):  # no CDN, no external URL of any kind
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


@pytest.mark.parametrize("path", [
    "/static/../pyproject.toml", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/explorer.py",
    "/static/index.html/../app.py", "/static//etc/passwd", "/api/thumb/..%2f..%2fconfig.json",
    "/api/image/config.json", "/docs", "/openapi.json", "/redoc", "/model.safetensors",
])
def test_no_request_names_a_file(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422), path
    assert b"safetensors" not in response.content and b"import" not in response.content


def test_routes_take_only_integer_path_parameters(web_app: Any) -> None:
    from starlette.routing import Route

    routes = {r.path: r for r in web_app.routes if isinstance(r, Route)}
    assert set(routes) == {"/", "/static/app.js", "/static/style.css", "/api/info", "/api/image/{index}",
                           "/api/thumb/{index}", "/api/upload", "/api/decode", "/api/describe",
                           "/api/sample", "/api/edit"}
    for route in routes.values():
        for name, convertor in route.param_convertors.items():
            assert name == "index" and convertor.regex == "[^/]+"  # typed int by FastAPI below
    assert web_app.url_path_for("thumb", index=3) == "/api/thumb/3"


# ------------------------------------------------------------------------------ info and images


def test_info_describes_the_model_and_its_latent(client: Any) -> None:
    info = client.get("/api/info").json()
    assert info["latent_dim"] == D and info["kind"] == "fcn" and info["variational"] is False
    assert info["in_shape"] == [3, 64, 64] and info["n_images"] == 256 and info["data"] == "faces:256"
    assert info["sample_source"] == "fitted"
    lo, hi = np.array(info["lo"]), np.array(info["hi"])
    assert (lo < hi).all()
    assert (np.array(info["bound_lo"]) < lo).all() and (np.array(info["bound_hi"]) > hi).all()
    assert sorted(s["element"] for s in info["ranking"]) == list(range(D))
    effects = [s["effect"] for s in info["ranking"]]
    assert effects == sorted(effects, reverse=True)


def test_image_gives_latent_original_and_reconstruction(client: Any, read_png: Any, tiny_run: Path) -> None:
    from latentlab.latent.apply import reconstruct
    from latentlab.runs import open_run

    view = client.get("/api/image/7").json()
    run = open_run(tiny_run)
    x = run.inputs(run.data(None).images[7:8])
    z, _ = reconstruct(run.model, x)
    assert view["index"] == 7 and view["label"] in ("smiling", "neutral")
    assert np.allclose(view["z"], z[0].tolist(), atol=1e-5)
    assert read_png(view["original"]).shape == read_png(view["reconstruction"]).shape == (64, 64, 3)
    assert set(view["factors"]) >= {"hue", "mouth"}
    assert np.isfinite(view["anomaly"]["score"]) and 0 <= view["anomaly"]["percentile"] <= 100


@pytest.mark.parametrize(("index", "status"), [(256, 404), (10**9, 404), (-1, 404), ("abc", 422), ("1.5", 422)])
def test_image_and_thumb_reject_bad_indices(client: Any, index: Any, status: int) -> None:
    assert client.get(f"/api/image/{index}").status_code == status
    assert client.get(f"/api/thumb/{index}").status_code == status


def test_thumb_is_the_stored_image(client: Any, read_png: Any) -> None:
    from latentlab.data import load_source

    response = client.get("/api/thumb/5")
    assert response.headers["content-type"] == "image/png"
    assert np.array_equal(read_png(response.content), load_source("faces:256").images[5])


# ------------------------------------------------------------------------------ decode (slider fast path)


def test_decode_returns_the_png_of_the_latent(client: Any, read_png: Any) -> None:
    view = client.get("/api/image/3").json()
    response = client.post("/api/decode", json={"z": view["z"]})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert float(response.headers["server-timing"].split("dur=")[1]) > 0
    same = read_png(response.content)
    assert np.array_equal(same, read_png(view["reconstruction"]))
    moved = list(view["z"])
    moved[0] += 1.5
    assert not np.array_equal(read_png(client.post("/api/decode", json={"z": moved}).content), same)


def test_concurrent_decodes_give_the_same_bytes(client: Any) -> None:
    z = _z(client, 1)
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: client.post("/api/decode", json={"z": z}).content, range(16)))
    assert len({hashlib.sha256(b).hexdigest() for b in bodies}) == 1


BAD_LATENTS = {
    "nan": b'{"z": [NaN, 0, 0, 0]}',
    "infinity": b'{"z": [0, Infinity, 0, 0]}',
    "minus infinity": b'{"z": [0, 0, -Infinity, 0]}',
    "far out of bound": b'{"z": [0, 0, 0, 1e6]}',
    "just out of bound": None,  # filled in from /api/info below
    "huge": b'{"z": [1e308, 0, 0, 0]}',
    "too short": b'{"z": [0, 0, 0]}',
    "too long": b'{"z": [0, 0, 0, 0, 0]}',
    "empty": b'{"z": []}',
    "string value": b'{"z": ["1", 0, 0, 0]}',
    "bool value": b'{"z": [true, 0, 0, 0]}',
    "nested": b'{"z": [[0], 0, 0, 0]}',
    "missing z": b'{}',
    "extra field": b'{"z": [0, 0, 0, 0], "path": "/etc/passwd"}',
    "not an object": b'[0, 0, 0, 0]',
    "not json": b'z=0,0,0,0',
}


@pytest.mark.parametrize("case", list(BAD_LATENTS))
def test_decode_rejects_bad_latents_with_422(client: Any, case: str) -> None:
    body = BAD_LATENTS[case]
    if body is None:
        info = client.get("/api/info").json()
        body = json.dumps({"z": [info["bound_hi"][0] + 1e-3, 0, 0, 0]}).encode()
    response = client.post("/api/decode", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 400


def test_latent_at_the_bound_is_accepted(client: Any) -> None:
    info = client.get("/api/info").json()
    z = [info["bound_lo"][0] + 1e-3, *info["hi"][1:]]
    assert client.post("/api/decode", json={"z": z}).status_code == 200


# ------------------------------------------------------------------------------ describe, sample, edit


def test_describe_measures_the_change(client: Any) -> None:
    z = _z(client, 2)
    same = client.post("/api/describe", json={"z_ref": z, "z": z}).json()["description"]
    moved = client.post("/api/describe", json={"z_ref": z, "z": [z[0] + 2, *z[1:]]}).json()["description"]
    assert same["mse"] == 0 and moved["mse"] > 0 and isinstance(moved["text"], str) and moved["text"]
    assert abs(sum(map(sum, moved["regions"])) - 1) < 1e-4
    assert set(moved["factors"]) >= {"hue", "face_width"}  # the faces regressor, since the data is faces


@pytest.mark.parametrize("body", [{"z": [0, 0, 0, 0]}, {"z_ref": [0, 0, 0, 0], "z": [0, 0, 0]},
                                  {"z_ref": [0, 0, 0, 1e9], "z": [0, 0, 0, 0]}])
def test_describe_rejects_bad_latents(client: Any, body: Any) -> None:
    assert client.post("/api/describe", json=body).status_code == 422


def test_sample_is_seeded_and_from_the_fitted_gaussian(client: Any, web_app: Any) -> None:
    a, b = (client.post("/api/sample", json={"seed": s}).json() for s in (1, 1))
    c = client.post("/api/sample", json={"seed": 2}).json()
    assert a["z"] == b["z"] != c["z"] and a["source"] == "fitted" and len(a["z"]) == D
    zs = torch.tensor([client.post("/api/sample", json={"seed": s}).json()["z"] for s in range(40)])
    z_data = web_app.state.explorer.z_data
    assert torch.allclose(zs.mean(0), z_data.mean(0), atol=3 * float(z_data.std(0).max()) / 40**0.5)
    assert client.post("/api/decode", json={"z": a["z"]}).status_code == 200


def test_vae_samples_from_the_prior(vae_client: Any) -> None:
    info = vae_client.get("/api/info").json()
    assert info["variational"] and info["sample_source"] == "prior"
    assert info["lo"] == [-3.0] * D and info["hi"] == [3.0] * D
    z = vae_client.post("/api/sample", json={"seed": 0}).json()["z"]
    assert torch.allclose(torch.tensor(z), torch.randn(1, D, generator=torch.Generator().manual_seed(0))[0])


@pytest.mark.parametrize("body", [{"seed": -1}, {"seed": 2**64}, {"seed": "7"}, {"seed": 1.5}, {"n": 3}])
def test_sample_rejects_bad_seeds(client: Any, body: Any) -> None:
    assert client.post("/api/sample", json=body).status_code == 422


def test_edit_applies_an_expression_as_latentlab_edit_does(client: Any) -> None:
    from latentlab.latent.edits import apply_edits, parse_edits

    z = _z(client, 4)
    text = "z[0]=1.25; z[2]+=0.5; z[-1]*=0.5"
    edited = client.post("/api/edit", json={"z": z, "edits": text}).json()["z"]
    expected = apply_edits(torch.tensor([z]), parse_edits(text))[0]
    assert torch.allclose(torch.tensor(edited), expected)


@pytest.mark.parametrize("edits", ["z[9]=1", "z[0]=", "__import__('os').system('true')", "z[0]=1e30",
                                   "z[0]=nan", "", "z[0]/=0", "x" * 300_000])
def test_edit_rejects_bad_expressions(client: Any, edits: str) -> None:
    response = client.post("/api/edit", json={"z": [0, 0, 0, 0], "edits": edits})
    assert response.status_code == 422 and "\n" not in response.json()["detail"]


# ------------------------------------------------------------------------------ the run stays as it was


def test_bad_run_folder_is_a_latentlab_error(tmp_path: Path) -> None:
    from latentlab.web.app import create_app

    with pytest.raises(LatentlabError):
        create_app(tmp_path / "missing")


def test_the_run_folder_is_not_written(tiny_run: Path, client: Any) -> None:
    def snapshot() -> dict[str, tuple[int, str]]:
        files = sorted(p for p in tiny_run.rglob("*") if p.is_file())
        return {str(p): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files}

    from latentlab.anomaly.auto import CHOICE_FILE
    from latentlab.anomaly.evaluate import EVALUATION_FILE

    before = snapshot()
    complete = (tiny_run / "COMPLETE").stat().st_mtime_ns  # written last by training
    # loading wrote nothing; other tests' `score` and `evaluate` on this shared run may have stored
    # the auto score's choice and the latest evaluation
    later = {CHOICE_FILE, EVALUATION_FILE}
    assert all(mtime <= complete for path, (mtime, _) in before.items() if Path(path).name not in later)
    z = _z(client, 0)
    client.post("/api/decode", json={"z": z})
    client.post("/api/describe", json={"z_ref": z, "z": z})
    client.post("/api/sample", json={"seed": 3})
    assert snapshot() == before


def test_anomaly_percentile_ranks_the_image_among_held_out_normal_scores(client: Any, tiny_run: Path) -> None:
    """The page's detector is fitted as ``evaluate`` fits it -- on the run's training rows, its
    held-out rows the reference -- not on the images shown (which may hold the anomalies)."""
    from latentlab.anomaly.auto import resolve_auto
    from latentlab.anomaly.detector import ReconstructionDetector
    from latentlab.anomaly.evaluate import normal_images
    from latentlab.runs import open_run

    run = open_run(tiny_run)
    choice = resolve_auto(run, store=False)  # the run's own auto score, as the page shows it (nothing written)
    normal = normal_images(run)
    det = ReconstructionDetector(run, choice=choice).fit(normal.fit, held_out=normal.held_out)
    reference = det.held_out_scores_
    shown = det.decision_function(run.data(None))
    for i in (0, 11):
        anomaly = client.get(f"/api/image/{i}").json()["anomaly"]
        assert anomaly["kind"] == det.score_name_ and anomaly["kind"].startswith("auto: ")
        assert anomaly["n_reference"] == len(reference) and anomaly["reference"].startswith("normal images (")
        assert anomaly["score"] == pytest.approx(float(shown[i]), rel=1e-4)
        assert anomaly["percentile"] == pytest.approx(100 * float((reference <= shown[i]).mean()), abs=0.5)


def test_large_latent_ranks_every_element(wide_run: Path) -> None:
    from fastapi.testclient import TestClient

    from latentlab.web.app import create_app

    with TestClient(create_app(wide_run, factors=False)) as wide:
        info = wide.get("/api/info").json()
        assert info["latent_dim"] == 40 and sorted(s["element"] for s in info["ranking"]) == list(range(40))
        z = wide.get("/api/image/0").json()["z"]
        assert len(z) == 40 and wide.post("/api/decode", json={"z": z}).status_code == 200
        assert wide.post("/api/decode", json={"z": z[:4]}).status_code == 422


def test_the_auto_score_of_a_run_whose_training_data_is_gone(tiny_run: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from latentlab.anomaly.auto import CHOICE_FILE
    from latentlab.web.explorer import Explorer

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / CHOICE_FILE).unlink(missing_ok=True)  # other tests' `score` may have stored one in the shared run
    files = sorted(p.name for p in run.iterdir())
    config = json.loads((run / "config.json").read_text())
    config["data"]["spec"] = f"npy:{tmp_path / 'gone.npy'}"
    (run / "config.json").write_text(json.dumps(config))
    explorer = Explorer.load(run, "faces:64", factors=False)  # chosen from the images it shows instead
    assert explorer.detector is not None and explorer.detector.choice_.n_held_out == 6
    assert explorer.anomaly(explorer.run.inputs(explorer.data, [0]))["kind"].startswith("auto: ")
    assert sorted(p.name for p in run.iterdir()) == files  # nothing written


def test_info_says_a_vq_vae_is_edited_before_quantisation(tmp_path: Path, client: Any) -> None:
    """The sliders of a VQ-VAE move the code before quantisation: the page says so; a plain
    autoencoder's page has no such note."""
    from fastapi.testclient import TestClient

    from latentlab.data.batches import BatchSpec
    from latentlab.models.presets import kind_config
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig
    from latentlab.web.app import create_app

    config = kind_config("vq-vae", backbone="fcn", hidden=(16,), latent_dim=4, code_dim=2, codebook_size=8)
    out = tmp_path / "vq"
    train_run(config, "faces:64", BatchSpec(), TrainConfig(epochs=1, batch_size=32), out, progress=False)
    with TestClient(create_app(out)) as vq:
        note = vq.get("/api/info").json()["note"]
    assert "before quantisation" in note and "codebook" in note
    assert client.get("/api/info").json()["note"] == ""
