"""The run report opens in a real Chromium with the network cut off, and every image loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentlab.report import write_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # 8-20 s: launches its own Chromium and renders the whole report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def open_offline(page_path: Path, screenshot: Path) -> tuple[list[dict], list[str], list[str]]:
    """Open ``page_path`` via file:// with every non-file request aborted; returns (images, headings,
    blocked URLs) and saves a full-page screenshot."""
    if not CHROMIUM.exists():
        pytest.skip(f"real-browser test: {CHROMIUM} not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright's python package not installed")
    blocked: list[str] = []

    def route(r) -> None:  # type: ignore[no-untyped-def]
        url = r.request.url
        if url.startswith(("file://", "data:")):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", route)
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            images = page.evaluate("() => Array.from(document.images).map(i => ({alt: i.alt, "
                                   "complete: i.complete, width: i.naturalWidth, src: i.src.slice(0, 22)}))")
            headings = page.locator("h2").all_inner_texts()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return images, headings, blocked


def test_report_opens_offline_and_every_image_loads(tiny_run: Path, tmp_path: Path) -> None:
    page_path = write_report(tiny_run, out=tmp_path / "report.html")
    images, headings, blocked = open_offline(page_path, tmp_path / "report.png")
    assert blocked == []
    assert headings == ["Overview", "Architecture", "Loss curves", "Reconstructions", "Latent edits",
                        "Traversal and ranking", "Samples", "What the latent learned"]
    assert len(images) == 6
    for im in images:
        assert im["complete"] and im["width"] > 0, im
        assert im["src"].startswith("data:image/png;base64")
    assert (tmp_path / "report.png").stat().st_size > 10_000
