"""The notebook explorer in a live JupyterLab, in a real Chromium (Debian's /usr/bin/chromium via Playwright).

A one-cell notebook calling ``latentlab.notebook.explore(run, data)`` is written into a temporary
folder; ``jupyter lab`` serves that folder headless on a free 127.0.0.1 port (no token, every
Jupyter folder temporary so nothing under ~ is touched); Chromium opens the notebook, runs the
cell with Shift+Enter and the test checks what JupyterLab rendered: one slider per latent element,
the four image panels, and that dragging a slider changes the edited image (browser -> kernel ->
browser, the widget protocol's round trip). No custom front-end build is involved: the page uses
the ``@jupyter-widgets/jupyterlab-manager`` extension that ``jupyterlab_widgets`` ships.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK = "explore.ipynb"



def _notebook(folder: Path, run: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    source = ("import latentlab.notebook\n"
              f"w = latentlab.notebook.explore({str(run)!r}, 'faces:64', stats_limit=64, factors=False)\n"
              "w")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, folder / NOTEBOOK)


@contextlib.contextmanager
def _jupyter_lab(root: Path, home: Path) -> Iterator[str]:
    """``jupyter lab`` serving ``root`` on a free 127.0.0.1 port; yields its base URL.
    Config, runtime, data, settings, workspaces and IPython folders all live under ``home``."""
    pytest.importorskip("jupyterlab", reason="the test extra installs jupyterlab")
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_DATA_DIR": str(home / "data"), "IPYTHONDIR": str(home / "ipython"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_NO_CONFIG": "1"}
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no "notified about Jupyter news?" toast over the page
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", "--port=0",
         f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--ServerApp.password=",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",  # no network: no news, no update check
         "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = _server_url(home / "runtime", server)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)  # the server stops its kernels and exits
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        assert server.returncode is not None


def _server_url(runtime: Path, server: subprocess.Popen[bytes], timeout: float = 45.0) -> str:
    """The URL from the server's own ``jpserver-PID.json`` (written once it listens)."""
    info = runtime / f"jpserver-{server.pid}.json"
    deadline = time.monotonic() + timeout
    while not info.exists():
        assert server.poll() is None, f"jupyter lab exited with {server.returncode}; see {runtime.parent}/server.log"
        assert time.monotonic() < deadline, f"jupyter lab did not start in {timeout:.0f} s"
        time.sleep(0.1)
    for _ in range(50):  # the file may be seen before it is fully written
        with contextlib.suppress(json.JSONDecodeError):
            return f"http://127.0.0.1:{json.loads(info.read_text())['port']}/"
        time.sleep(0.1)
    raise AssertionError(f"unreadable {info}")


def _wait(page: Any, expression: str, what: str, timeout: float = 40.0) -> None:
    """Poll ``expression`` in the page until truthy; on timeout say what did not happen and what the output shows."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            shown = page.evaluate("Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
                                  ".map(e => e.innerText).join(' | ')")
            raise AssertionError(f"timed out waiting for {what}; output: {shown[:500]!r}; errors: {page.errors[:3]}")
        page.wait_for_timeout(100)


def _pixels(page: Any, selector: str) -> list[int]:
    """The pixels of the image at ``selector`` as the browser decoded them."""
    pixels: list[int] = page.evaluate("""(sel) => {
        const img = document.querySelector(sel);
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
    }""", selector)
    return pixels


OUTPUT = ".jp-Notebook .jp-OutputArea-output"
IMAGES = f"{OUTPUT} .widget-image"
KERNEL = "window.jupyterapp.shell.currentWidget.sessionContext"  # the open notebook's session
EDITED = f"{OUTPUT} .widget-hbox .widget-vbox:nth-child(3) .widget-image"  # original, reconstruction, edited, diff


def test_the_browsers_snap_of_a_slider_value_is_not_an_edit() -> None:
    """What JupyterLab showed first: noUiSlider snaps each value the kernel sets onto the slider's
    step grid and sends it back (continuous_update), which turned every element into an edit."""
    pytest.importorskip("ipywidgets", reason="the notebook extra installs ipywidgets")
    import torch

    from latentlab.data.sources import load_source
    from latentlab.models import FCNConfig, build
    from latentlab.notebook import explore

    torch.manual_seed(0)
    w = explore(build(FCNConfig(hidden=(), latent_dim=3)), load_source("faces:16").images, stats_limit=16,
                factors=False)
    for slider in w.sliders.values():  # as the browser answers: the value rounded to the step grid
        slider.value = slider.min + round((slider.value - slider.min) / slider.step) * slider.step
    assert torch.equal(w.z, w.z_ref) and w.expression == "" and w.description["mse"] == 0.0
    slider = w.sliders[1]
    slider.value = float(w.z[0, 1]) + slider.step  # one arrow-key step is an edit
    assert w.expression == f"z[1]={float(w.z[0, 1]):.6g}" and float(w.z[0, 1]) == pytest.approx(slider.value)


@pytest.mark.slow
@pytest.mark.browser
def test_explore_renders_and_round_trips_in_jupyterlab(browser: Any, tiny_run: Path, tmp_path: Path) -> None:
    root, home = tmp_path / "notebooks", tmp_path / "jupyter"
    root.mkdir()
    home.mkdir()
    _notebook(root, tiny_run)
    with _jupyter_lab(root, home) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(f"{url}lab/tree/{NOTEBOOK}")
        _wait(page, f"window.jupyterapp && window.jupyterapp.shell.currentWidget && {KERNEL}"
                    f" && {KERNEL}.kernelDisplayStatus === 'idle'", "the notebook to open with an idle kernel")
        page.click(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")  # run the cell, as a user does

        _wait(page, f"document.querySelectorAll('{IMAGES}').length === 4"
                    f" && Array.from(document.querySelectorAll('{IMAGES}'))"
                    ".every(i => /^(blob|data):/.test(i.src) && i.complete && i.naturalWidth > 0)",
              "the widget's four images")
        sliders = page.locator(f"{OUTPUT} .widget-slider")
        assert sliders.count() == 4  # a latent of 4 elements: one slider each
        assert page.locator(f"{OUTPUT} .widget-slider .noUi-handle, {OUTPUT} input[type=range]").count() == 4
        assert "faces:64" in page.inner_text(OUTPUT)  # the header names the data
        # the browser's sliders snap the kernel's values to their step and send them back: that is no edit
        page.wait_for_timeout(1000)
        _wait(page, f"{KERNEL}.kernelDisplayStatus === 'idle'", "the kernel to settle")
        assert page.locator(f"{OUTPUT} code").count() == 0  # no edit expression shown
        assert "identical (MSE 0)" in page.inner_text(OUTPUT)
        # each slider's value readout is visible, not covered by the column beside it
        assert page.evaluate(f"""Array.from(document.querySelectorAll('{OUTPUT} .widget-slider .widget-readout'))
            .every(r => {{ const b = r.getBoundingClientRect();
                          return b.width > 0 && r.contains(document.elementFromPoint(b.x + b.width / 2,
                                                                                     b.y + b.height / 2)); }})""")

        # drag slider z[0] from its value to near the right end of its track
        before_src, before = page.get_attribute(EDITED, "src"), _pixels(page, EDITED)
        readout = sliders.first.locator(".widget-readout").inner_text()
        handle = sliders.first.locator(".noUi-handle").bounding_box()
        track = sliders.first.locator(".noUi-target").bounding_box()
        y = handle["y"] + handle["height"] / 2
        page.mouse.move(handle["x"] + handle["width"] / 2, y)
        page.mouse.down()
        for k in range(1, 9):
            page.mouse.move(handle["x"] + (track["x"] + 0.9 * track["width"] - handle["x"]) * k / 8, y)
            page.wait_for_timeout(40)
        page.mouse.up()
        _wait(page, f"document.querySelector('{EDITED}').src !== {before_src!r}"
                    f" && document.querySelector('{EDITED}').complete", "the kernel's new edited image")
        page.wait_for_timeout(500)  # let the last update of the drag land
        assert sliders.first.locator(".widget-readout").inner_text() != readout
        assert _pixels(page, EDITED) != before  # a different picture, not only a new blob URL
        expression = page.locator(f"{OUTPUT} code").first.inner_text()
        assert expression.startswith("z[0]=") and ";" not in expression  # the one element dragged, no other
        page.screenshot(path=str(tmp_path / "jupyterlab-explorer.png"), full_page=True)
        assert not page.errors, page.errors
        page.close()
