"""The explorer in a real Chromium (Debian's /usr/bin/chromium driven by Playwright's Python package).

The server runs with uvicorn on a free 127.0.0.1 port in a thread; the test loads the page,
drags a slider, checks the edited image changed while dragging, checks the copied edit
expression parses and reproduces the latent, uploads a PNG and takes a screenshot.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.browser


@contextlib.contextmanager
def _serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free 127.0.0.1 port; yields its URL."""
    import uvicorn

    from latentlab.web.server import open_socket

    sock = open_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _open(browser: Any, url: str) -> Any:
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.errors = []
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.on("console", lambda m: m.type == "error" and tab.errors.append(m.text))
    tab.goto(url)
    _wait(tab, "document.querySelectorAll('.slider-row input[type=range]').length > 0")
    _wait(tab, "document.getElementById('img-edited').naturalWidth > 0")
    return tab


@pytest.fixture(scope="module")
def page(browser: Any, web_app: Any) -> Iterator[Any]:
    """The page over the tiny AE (latent 4)."""
    with _serving(web_app) as url:
        tab = _open(browser, url)
        yield tab
        tab.close()


def _wait(page: Any, expression: str, timeout: float = 15.0) -> None:
    """Poll ``expression`` until it is truthy. (Playwright's wait_for_function polls with eval,
    which the page's Content-Security-Policy rightly forbids; page.evaluate is not affected.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def _edited_pixels(page: Any) -> list[int]:
    """The edited image's pixels as the browser decoded them."""
    return page.evaluate("""() => {
        const img = document.getElementById('img-edited');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
    }""")


def test_dragging_a_slider_updates_the_edited_image(page: Any) -> None:
    from latentlab.latent.edits import apply_edits, parse_edits

    assert page.locator(".slider-row").count() == 4  # a small latent: one slider per element
    before_src, before = page.get_attribute("#img-edited", "src"), _edited_pixels(page)
    box = page.locator(".slider-row input[type=range]").first.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    for k in range(1, 8):
        page.mouse.move(box["x"] + box["width"] * (0.5 + 0.06 * k), y)
        page.wait_for_timeout(40)
    # still dragging: the image has already changed
    _wait(page, f"document.getElementById('img-edited').src !== {before_src!r}")
    page.mouse.up()
    _wait(page, "!state.decode.inFlight && !state.decode.dirty")
    page.wait_for_timeout(300)
    assert _edited_pixels(page) != before

    expr = page.input_value("#expr")
    z_orig, z = page.evaluate("[state.zOrig, state.z]")
    assert expr.startswith(f"z[{page.get_attribute('.slider-row', 'data-element')}]=")
    edited = apply_edits(torch.tensor([z_orig]), parse_edits(expr))  # what `latentlab edit` would do
    assert np.allclose(edited[0].numpy(), z, rtol=1e-5, atol=1e-5)
    _wait(page, "!document.getElementById('description').textContent.startsWith('move')")
    assert "MSE" in page.inner_text("#description")


def test_upload_sample_and_reset(page: Any, tmp_path: Path, image_file: Any) -> None:
    original_src = page.get_attribute("#img-original", "src")
    png = tmp_path / "upload.png"
    png.write_bytes(image_file(np.random.default_rng(1).integers(0, 256, (90, 70, 3), dtype=np.uint8)))
    page.set_input_files("#upload", str(png))
    _wait(page, "document.getElementById('image-label').textContent.includes('upload.png')")
    assert page.get_attribute("#img-original", "src") != original_src
    assert page.evaluate("state.index") is None

    page.click("#reset")
    _wait(page, "document.getElementById('expr').value === ''")
    src = page.get_attribute("#img-edited", "src")
    page.click("#sample")
    # a sample changes every element; wait for that, not for the first new image (the reset's own
    # decode may still land after the click)
    _wait(page, "(document.getElementById('expr').value.match(/=/g) || []).length === 4")
    _wait(page, f"document.getElementById('img-edited').src !== {src!r}")
    assert page.input_value("#expr").count("=") == 4

    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "download.png"
    download.value.save_as(saved)
    assert download.value.suggested_filename.endswith(".png") and saved.read_bytes()[:4] == b"\x89PNG"
    page.click("#copy")
    _wait(page, "document.getElementById('status').textContent.startsWith('copied')")

    page.click(".thumb >> nth=2")  # back to a dataset image from the strip
    _wait(page, "state.index !== null")
    page.wait_for_timeout(500)
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert page.errors == []


def test_large_latent_shows_top_ranked_sliders_and_adds_others(browser: Any, wide_run: Path,
                                                                tmp_path: Path) -> None:
    from latentlab.web.app import create_app

    with _serving(create_app(wide_run, factors=False)) as url:
        tab = _open(browser, url)
        ranking = [s["element"] for s in tab.evaluate("state.info.ranking")]
        shown = tab.eval_on_selector_all(".slider-row", "rows => rows.map(r => Number(r.dataset.element))")
        assert shown == ranking[:16]  # 40 elements: the 16 most effective, best first
        extra = ranking[-1]
        tab.fill("#add-element", str(extra))
        tab.click("#add-element-btn")
        assert tab.locator(".slider-row").count() == 17
        row = tab.locator(f'.slider-row[data-element="{extra}"]')
        row.hover()
        row.locator(".remove").click()
        assert tab.locator(".slider-row").count() == 16

        tab.fill("#expr", f"z[{extra}]=-0.5; z[{ranking[0]}]+=1")  # apply an expression typed by hand
        tab.click("#apply")
        _wait(tab, f"Math.abs(state.z[{extra}] + 0.5) < 1e-6")
        assert tab.locator(f'.slider-row[data-element="{extra}"]').count() == 1  # its slider came back

        tab.fill("#interp-index", "3")
        tab.click("#interp-set")
        _wait(tab, "!document.getElementById('interp').disabled")
        tab.focus("#interp")
        tab.keyboard.press("End")  # t = 1: the latent of image 3
        target = tab.evaluate("fetch('/api/image/3').then(r => r.json()).then(v => v.z)")
        _wait(tab, "state.decode.inFlight === false && state.decode.dirty === false")
        assert np.allclose(tab.evaluate("state.z"), target, atol=1e-5)
        tab.screenshot(path=str(tmp_path / "explorer-wide.png"), full_page=True)
        assert tab.errors == []
        tab.close()
