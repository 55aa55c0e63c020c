"""Uploading an image to the explorer: PNG/JPEG accepted and resized, everything else refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from latentlab.data import load_source


def _upload(client: Any, data: bytes, name: str = "face.png", kind: str = "image/png"):
    return client.post("/api/upload", files={"file": (name, data, kind)})


def test_upload_of_a_dataset_image_gives_its_latent(client: Any, image_file: Any) -> None:
    pixels = load_source("faces:256").images[9]
    view = _upload(client, image_file(pixels)).json()
    assert view["index"] is None
    assert np.allclose(view["z"], client.get("/api/image/9").json()["z"], atol=1e-5)
    assert view["original"] == client.get("/api/image/9").json()["original"]


@pytest.mark.parametrize(("shape", "fmt", "kind"), [
    ((100, 80, 3), "PNG", "image/png"), ((40, 40), "PNG", "image/png"), ((128, 96, 3), "JPEG", "image/jpeg")])
def test_png_and_jpeg_of_any_size_are_resized_to_the_model(client: Any, image_file: Any, read_png: Any,
                                                           shape: tuple[int, ...], fmt: str, kind: str,
                                                           ) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    response = _upload(client, image_file(pixels, fmt), f"x.{fmt.lower()}", kind)
    assert response.status_code == 200, response.text
    view = response.json()
    assert len(view["z"]) == 4 and read_png(view["original"]).shape == (64, 64, 3)
    assert client.post("/api/decode", json={"z": view["z"]}).status_code == 200


@pytest.mark.parametrize("case", ["text", "empty", "truncated png", "gif", "bmp", "svg"])
def test_a_file_that_is_not_a_png_or_jpeg_is_400(client: Any, image_file: Any, case: str) -> None:
    pixels = np.zeros((16, 16, 3), dtype=np.uint8)
    data = {"text": b"hello, not an image", "empty": b"", "truncated png": image_file(pixels)[:40],
            "gif": image_file(pixels, "GIF"), "bmp": image_file(pixels, "BMP"),
            "svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>'}[case]
    response = _upload(client, data, "file.png")
    assert response.status_code == 400, response.text
    assert "expected a PNG or JPEG" in response.json()["detail"]


def test_an_image_with_too_many_pixels_is_400(client: Any, image_file: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("latentlab.web.images.MAX_UPLOAD_PIXELS", 32 * 32)
    response = _upload(client, image_file(np.zeros((64, 64, 3), dtype=np.uint8)))
    assert response.status_code == 400 and "too large" in response.json()["detail"]


def test_upload_over_the_limit_is_413(client: Any) -> None:
    from latentlab.web.app import MAX_BODY

    response = _upload(client, b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_BODY)
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_streamed_body_over_the_limit_is_413(client: Any) -> None:
    """Without a Content-Length (chunked), the limit is enforced as the bytes arrive."""
    from latentlab.web.app import MAX_BODY

    def chunks(head: bytes):
        yield head
        for _ in range(MAX_BODY // 2**20 + 2):
            yield b"0" * 2**20

    form = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    for path, head, kind in (("/api/upload", form, "multipart/form-data; boundary=b"),
                             ("/api/decode", b'{"z": [', "application/json")):
        response = client.post(path, content=chunks(head), headers={"content-type": kind})
        assert response.status_code == 413, (path, response.status_code)


def test_json_body_over_the_limit_is_413(client: Any) -> None:
    from latentlab.web.app import MAX_BODY

    body = b'{"z": [' + b"0," * (MAX_BODY // 2) + b"0]}"
    response = client.post("/api/decode", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_upload_without_a_file_is_422(client: Any) -> None:
    assert client.post("/api/upload", data={"name": "x"}).status_code == 422
