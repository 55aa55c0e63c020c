"""The notebook explorer driven from code: every image and description it shows is what
:class:`latentlab.web.explorer.Explorer` (the object behind ``latentlab serve``) computes for the
same latent; bad input is a one-line LatentlabError."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from latentlab.errors import LatentlabError

pytest.importorskip("ipywidgets", reason="the notebook extra installs ipywidgets")


def _pixels(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture(scope="module")
def widget(tiny_run: Path) -> Any:
    from latentlab.notebook import explore

    return explore(tiny_run, "faces:64", stats_limit=64, factors=False)


@pytest.fixture(autouse=True)
def _fresh(widget: Any) -> None:
    widget.select(0)


def _matches_explorer(w: Any) -> None:
    """What the widget shows for its current latent equals what the Explorer computes for it."""
    ex = w.explorer
    assert w.edited_png == ex.decode_png(w.z).result()
    assert w.edited_image.value == w.edited_png
    assert w.description == ex.describe(w.z_ref, w.z)
    from latentlab.notebook import difference_png

    expected, _ = difference_png(ex.batcher(w.z), ex.batcher(w.z_ref), ex.run.value_range)
    assert w.difference_png == expected == w.diff_image.value


def test_select_shows_the_image_its_reconstruction_and_no_edit(widget: Any) -> None:
    view = widget.explorer.image_view(3)
    widget.index_box.value = 3  # as a user types the index
    assert widget.index == 3
    assert widget.z_ref[0].tolist() == pytest.approx(view["z"])
    assert torch.equal(widget.z, widget.z_ref)
    assert widget.original_image.value == _png(view["original"])
    assert widget.recon_image.value == _png(view["reconstruction"])
    assert widget.description["mse"] == 0.0 and widget.expression == ""
    assert widget.anomaly == view["anomaly"] and "anomaly score" in widget.anomaly_html.value
    _matches_explorer(widget)


def _png(url: str) -> bytes:
    import base64

    return base64.b64decode(url.split(",", 1)[1])


def test_a_slider_edits_its_element_and_the_explorer_agrees(widget: Any) -> None:
    element = widget.shown[0]
    slider = widget.sliders[element]
    target = (slider.min + 3 * slider.max) / 4  # a value well inside the slider's range
    before = widget.z.clone()
    slider.value = target  # as a user drags it
    assert float(widget.z[0, element]) == pytest.approx(target, abs=1e-6)
    others = [d for d in range(widget.explorer.latent_dim) if d != element]
    assert torch.equal(widget.z[0, others], before[0, others])
    assert widget.description["mse"] > 0
    assert widget.expression == f"z[{element}]={target:.6g}"
    _matches_explorer(widget)


def test_edit_expression_gives_the_latent_the_explorer_gives(widget: Any) -> None:
    text = "z[0]*=3;z[2]=1"
    widget.edit_text.value = text
    widget.apply_button.click()  # as a user presses "apply"
    expected = widget.explorer.apply_edit(widget.z_ref, text)
    assert torch.allclose(widget.z, expected)
    assert float(widget.sliders[2].value) == pytest.approx(1.0)
    assert "applied" in widget.status.value
    _matches_explorer(widget)
    # the expression the widget offers reproduces the edit through the same grammar
    again = widget.explorer.apply_edit(widget.z_ref, widget.expression)
    assert torch.allclose(again, widget.z, rtol=1e-5, atol=1e-5)


def test_reset_returns_to_the_reconstruction(widget: Any) -> None:
    widget.apply_edit("z[1]+=0.5")
    assert widget.description["mse"] > 0
    widget.reset_button.click()
    assert torch.equal(widget.z, widget.z_ref) and widget.description["mse"] == 0.0
    _matches_explorer(widget)


def test_sample_takes_the_explorers_seeded_latent(widget: Any) -> None:
    widget.sample(7)
    assert widget.index is None
    assert torch.equal(widget.z_ref, widget.explorer.sample(7))
    assert widget.recon_image.value == widget.explorer.decode_png(widget.z_ref).result()
    _matches_explorer(widget)


def test_difference_map_is_white_without_change_and_coloured_where_the_edit_changed(widget: Any) -> None:
    still = _pixels(widget.difference_png)
    assert (still == still[0, 0]).all()  # one colour: the centre of the diverging scale
    widget.apply_edit("z[0]+=2")
    moved = _pixels(widget.difference_png)
    assert moved.shape == still.shape and (moved != still[0, 0]).any()


@pytest.mark.parametrize("text", ["z[99]=1", "z[0]=", "import os", "z[0]=1e308*10"])
def test_a_bad_edit_raises_from_code_and_shows_in_the_status_from_the_widget(widget: Any, text: str) -> None:
    before = widget.z.clone()
    with pytest.raises(LatentlabError) as caught:
        widget.apply_edit(text)
    assert "\n" not in str(caught.value)
    widget.edit_text.value = text
    widget.apply_button.click()  # a callback cannot raise to the user: the message is shown instead
    assert str(caught.value).split(":")[0] in widget.status.value.replace("&#x27;", "'")
    assert torch.equal(widget.z, before)


def test_bad_index_and_far_values_are_one_line_errors(widget: Any) -> None:
    with pytest.raises(LatentlabError, match="expected an index from 0 to 63"):
        widget.select(64)
    with pytest.raises(LatentlabError, match="far outside its typical range"):
        widget.set_element(0, 1e6)
    with pytest.raises(LatentlabError, match="element 9: expected 0 to 3"):
        widget.set_element(9, 0.0)


@pytest.mark.parametrize(("images", "message"), [
    (np.zeros((2, 32, 32, 3), np.uint8), r"shape \(32, 32, 3\) give model input \(3, 32, 32\); the model expects "
                                         r"\(3, 64, 64\)"),
    (np.zeros((2, 64, 64, 1), np.uint8), r"the model expects \(3, 64, 64\)"),
    (np.zeros((2, 64, 64, 3), np.float32), "expected uint8 images"),
    (np.zeros((64, 64, 3), np.uint8), r"expected images of shape \(N, H, W, C\)"),
    ([[1, 2]], "expected a data spec, an ImageSet or uint8 images"),
])
def test_images_of_another_shape_are_a_one_line_error(tiny_run: Path, images: Any, message: str) -> None:
    from latentlab.notebook import explore

    with pytest.raises(LatentlabError, match=message) as caught:
        explore(tiny_run, images)
    assert "\n" not in str(caught.value)


def test_a_loaded_model_and_an_array_work_as_a_run_and_a_spec(tiny_run: Path) -> None:
    import latentlab
    from latentlab.data.sources import load_source
    from latentlab.notebook import explore

    pixels = np.asarray(load_source("faces:16").images)
    w = explore(latentlab.load(tiny_run), torch.from_numpy(pixels), index=2, stats_limit=16, factors=False)
    assert w.index == 2 and len(w.explorer.data) == 16
    with torch.no_grad():
        model = w.explorer.model
        x = torch.from_numpy(pixels[2:3]).permute(0, 3, 1, 2).float() / 127.5 - 1  # the default rule: [-1, 1]
        assert torch.allclose(w.z_ref, model.embed(x), atol=1e-5)
    w.apply_edit("z[1]-=1")
    _matches_explorer(w)


def test_a_large_latent_shows_its_top_ranked_elements_and_more_on_request() -> None:
    from latentlab.data.sources import load_source
    from latentlab.models import FCNConfig, build
    from latentlab.notebook import TOP_ELEMENTS, explore

    torch.manual_seed(0)
    model = build(FCNConfig(hidden=(), latent_dim=TOP_ELEMENTS + 4))
    w = explore(model, load_source("faces:16").images, stats_limit=16, factors=False)
    ranked = [s.element for s in w.explorer.ranking]
    assert list(w.sliders) == ranked[:TOP_ELEMENTS] == w.shown
    hidden = ranked[-1]
    w.add_box.value = hidden
    w.add_button.click()  # as a user adds a slider
    assert list(w.sliders)[-1] == hidden and hidden in w.shown
    w.apply_edit(f"z[{ranked[-2]}]+=0.5")  # an edit of an element without a slider gives it one
    assert ranked[-2] in w.sliders
    assert float(w.sliders[ranked[-2]].value) == pytest.approx(float(w.z[0, ranked[-2]]))
    _matches_explorer(w)
