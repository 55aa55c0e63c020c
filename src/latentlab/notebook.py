"""The latent explorer of ``latentlab serve`` inside a notebook (JupyterLab, Jupyter, Colab).

``explore(run, data)`` shows the same tool as the browser page, built from ipywidgets (no
front-end build, so it works wherever ipywidgets does): the original image, its
reconstruction, the edited image and the signed difference map (edited minus reconstruction,
the map of ``latentlab edit``); one slider per latent element (the top-ranked ones for large
latents); an edit expression (``z[3]=1.25;z[7]+=0.4``, the grammar of ``latentlab edit``);
reset and random sample; the measured description of the edit and the image's anomaly score.

Every number and image comes from :class:`latentlab.web.explorer.Explorer`, the object the web
routes call: the widget only holds the current image and latent and shows what the Explorer
returns. It can be driven from code as well as by hand::

    from latentlab.notebook import explore

    w = explore("runs/fcn", "faces:256")      # a run folder, a Run or a model; a data spec or uint8 images
    w                                          # shows the widget
    w.set_element(0, 1.5)                      # as dragging slider z[0] to 1.5
    w.apply_edit("z[0]*=3;z[2]=-1")            # as typing an edit expression
    print(w.description["text"])               # the measured change against the reconstruction

ipywidgets is an optional dependency (``pip install latentlab[notebook]``); it is imported when
this module is.
"""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError
from latentlab.runs import Run, as_run
from latentlab.web.explorer import STATS_LIMIT, Explorer
from latentlab.web.images import png_bytes

try:
    import ipywidgets as widgets
except ImportError as exc:  # an optional dependency: say how to get it
    raise ImportError("latentlab.notebook needs ipywidgets: pip install 'latentlab[notebook]'") from exc

__all__ = ["ExplorerWidget", "explore", "notebook_data"]

TOP_ELEMENTS = 16  # sliders shown for a latent larger than this: the top-ranked ones (as the web page)
IMAGE_PX = 160  # displayed size of each image panel
DIFF_FLOOR = 0.02  # the difference map's colour scale spans at least this fraction of the value range


# ---------------------------------------------------------------------------------- inputs


def notebook_data(run: Run, data: Any) -> ImageSet:
    """The images to explore for ``run``: None (what it was trained on), a data spec, an image
    set, or uint8 pixels (N, H, W, C) as a numpy array or tensor (prepared by the run's input
    rule, as training prepares an array set). LatentlabError when they do not make the model's input."""
    if data is None or isinstance(data, str):
        return run.data(data)  # checks the input shape itself
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        data = ImageSet(images=data)  # one-line errors for dtype, rank, channels, emptiness
    if not isinstance(data, ImageSet):
        raise LatentlabError(f"data: expected a data spec, an ImageSet or uint8 images (N, H, W, C), "
                             f"got {type(data).__name__}")
    from latentlab.train.api import prepare_data

    prepared = prepare_data(data, run.rule)
    if prepared.input_shape != run.model.in_shape:
        _, h, w, c = prepared.images.shape
        raise LatentlabError(f"images {data.spec or 'in memory'} of shape ({h}, {w}, {c}) give model input "
                             f"{prepared.input_shape}; the model expects {run.model.in_shape}")
    return prepared


def explore(run: Any, data: Any = None, *, index: int = 0, stats_limit: int = STATS_LIMIT,
            factors: bool = True) -> ExplorerWidget:
    """The explorer widget over ``run`` (a run folder, a :class:`~latentlab.runs.Run` or a model)
    and ``data`` (see :func:`notebook_data`), showing image ``index`` first. The first
    ``stats_limit`` images give the typical ranges, the ranking and the anomaly percentiles.
    The model is put in eval mode with its gradients off, as ``latentlab serve`` does."""
    opened = as_run(run)
    images = notebook_data(opened, data)
    return ExplorerWidget(Explorer.load(opened, images, stats_limit=stats_limit, factors=factors), index=index)


# ---------------------------------------------------------------------------------- the widget


def _png_of_data_url(url: str) -> bytes:
    return base64.b64decode(url.split(",", 1)[1])


def _image(title: str) -> tuple[widgets.Image, widgets.VBox]:
    image = widgets.Image(format="png", width=IMAGE_PX, height=IMAGE_PX)
    caption = widgets.HTML(f"<div style='text-align:center;font-size:0.85em'>{html.escape(title)}</div>")
    return image, widgets.VBox([image, caption], layout=widgets.Layout(align_items="center"))


class ExplorerWidget:
    """Sliders, edit expression, difference map and measured description over an
    :class:`~latentlab.web.explorer.Explorer`; displayable in a notebook, drivable from code.

    State: ``index`` (the dataset image, None after a random sample), ``z_ref`` (its latent,
    (1, D)) and ``z`` (the edited latent). The shown images and the description always belong
    to the current ``z``: ``edited_png``, ``difference_png``, ``description``.
    """

    def __init__(self, explorer: Explorer, index: int = 0) -> None:
        self.explorer = explorer
        d = explorer.latent_dim
        ranked = [s.element for s in explorer.ranking] or list(range(d))
        self.shown: list[int] = list(range(d)) if d <= TOP_ELEMENTS else ranked[:TOP_ELEMENTS]
        self.index: int | None = None
        self.z_ref = torch.zeros(1, d)
        self.z = torch.zeros(1, d)
        self.edited_png = b""
        self.difference_png = b""
        self.description: dict[str, Any] = {}
        self.anomaly: dict[str, Any] | None = None
        self._syncing = False
        self._build()
        self.select(index)

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        ex = self.explorer
        info = ex.info()
        self.header = widgets.HTML(
            f"<b>{html.escape(str(info['run']))}</b> &middot; {html.escape(str(info['model']))} &middot; "
            f"data {html.escape(str(info['data']) or 'in memory')} ({info['n_images']} images)")
        self.index_box = widgets.BoundedIntText(value=0, min=0, max=len(ex.data) - 1, description="image",
                                                layout=widgets.Layout(width="180px"))
        self.index_box.observe(self._on_index, names="value")
        self.reset_button = widgets.Button(description="reset", tooltip="back to the image's own latent")
        self.sample_button = widgets.Button(description="random sample", tooltip=(
            "decode z ~ N(0, I): the VAE's prior" if ex.sample_source == "prior"
            else "decode z from a Gaussian fitted to the encoded data"))
        self.reset_button.on_click(lambda _: self._guard(self.reset))
        self.sample_button.on_click(lambda _: self._guard(lambda: self.sample(int(np.random.randint(2**31)))))
        self.original_image, original = _image("original")
        self.recon_image, recon = _image("reconstruction")
        self.edited_image, edited = _image("edited")
        self.diff_image, diff = _image("edited - reconstruction")
        self.diff_caption = diff.children[1]
        self.sliders: dict[int, widgets.FloatSlider] = {}
        self.slider_box = widgets.VBox()
        for element in self.shown:
            self._add_slider(element)
        self.add_box = widgets.BoundedIntText(value=0, min=0, max=ex.latent_dim - 1, description="element",
                                              layout=widgets.Layout(width="180px"))
        self.add_button = widgets.Button(description="add slider")
        self.add_button.on_click(lambda _: self._guard(lambda: self.show_element(self.add_box.value)))
        adding = [widgets.HBox([self.add_box, self.add_button])] if ex.latent_dim > TOP_ELEMENTS else []
        self.edit_text = widgets.Text(placeholder="z[0]*=3;z[2]=1.5", description="edit",
                                      layout=widgets.Layout(width="420px"))
        self.apply_button = widgets.Button(description="apply")
        self.apply_button.on_click(lambda _: self._guard(lambda: self.apply_edit(self.edit_text.value)))
        self.expression_html = widgets.HTML()
        self.description_html = widgets.HTML()
        self.anomaly_html = widgets.HTML()
        self.status = widgets.HTML()
        self.widget = widgets.VBox([
            self.header,
            widgets.HBox([self.index_box, self.reset_button, self.sample_button]),
            widgets.HBox([original, recon, edited, diff]),
            widgets.HBox([widgets.VBox([self.slider_box, *adding], layout=widgets.Layout(flex="0 0 auto")),
                          widgets.VBox([widgets.HBox([self.edit_text, self.apply_button]), self.expression_html,
                                        self.description_html, self.anomaly_html],
                                       layout=widgets.Layout(flex="1 1 320px", min_width="320px"))],
                         layout=widgets.Layout(flex_flow="row wrap")),  # side by side, never overlapping
            self.status,
        ])

    def _add_slider(self, element: int) -> None:
        slider = widgets.FloatSlider(description=f"z[{element}]", continuous_update=True, readout_format=".3f",
                                     layout=widgets.Layout(width="420px"))
        slider.observe(lambda change, e=element: self._on_slider(e, change), names="value")
        self.sliders[element] = slider
        self.slider_box.children = tuple(self.sliders.values())

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ what a user does

    def select(self, index: int) -> None:
        """Show dataset image ``index``: its latent becomes the reference and the edit is cleared."""
        view = self.explorer.image_view(int(index))  # LatentlabError for an index outside the data
        self.index = int(view["index"])
        self.original_image.value = _png_of_data_url(view["original"])
        self.recon_image.value = _png_of_data_url(view["reconstruction"])
        self.anomaly = view["anomaly"]
        self._sync(lambda: setattr(self.index_box, "value", self.index))
        self._set_reference(torch.tensor([view["z"]], dtype=torch.float32))
        self._show_anomaly()

    def set_element(self, element: int, value: float) -> None:
        """Set latent element ``element`` to ``value`` (as its slider does)."""
        d = self.explorer.latent_dim
        if not 0 <= int(element) < d:
            raise LatentlabError(f"element {element}: expected 0 to {d - 1}")
        z = self.z.clone()
        z[0, int(element)] = float(value)
        self.set_latent(z)

    def show_element(self, element: int) -> None:
        """Give element ``element`` a slider (a large latent shows only its top-ranked ones at first)."""
        d = self.explorer.latent_dim
        if not 0 <= int(element) < d:
            raise LatentlabError(f"element {element}: expected 0 to {d - 1}")
        if int(element) not in self.sliders:
            self.shown.append(int(element))
            self._add_slider(int(element))
            self._sync(self._sync_sliders)

    def apply_edit(self, text: str) -> None:
        """Apply an edit expression to the reference latent, as the page's edit box and ``latentlab edit`` do."""
        text = text.strip()
        if not text:
            self.reset()
            return
        z = self.explorer.apply_edit(self.z_ref, text)
        changed = ((z[0] - self.z_ref[0]).abs() > 1e-9).nonzero()[:, 0].tolist()
        if len([e for e in changed if e not in self.sliders]) <= 32:
            for element in changed:
                self.show_element(element)
        self.set_latent(z, what="edited z")
        self._show_status(f"applied {text}")

    def reset(self) -> None:
        """Back to the reference latent (no edit)."""
        self.set_latent(self.z_ref.clone())

    def sample(self, seed: int = 0) -> None:
        """A random latent (the prior for a VAE, a Gaussian fitted to the data for an AE) becomes
        the reference; the original panel keeps the last dataset image."""
        z = self.explorer.sample(seed)
        self.index = None
        self.anomaly = None
        self.recon_image.value = self.explorer.decode_png(z).result()
        self._set_reference(z)
        self._show_anomaly()
        source = "prior N(0, I)" if self.explorer.sample_source == "prior" else "Gaussian fitted to the data"
        self._show_status(f"random sample from the {source} (seed {seed})")

    def set_latent(self, z: Tensor | list[float], what: str = "z") -> None:
        """Show latent ``z`` ((1, D) or D values); LatentlabError when it is not finite or far
        outside the typical ranges (as the web API answers 422)."""
        values = torch.as_tensor(z, dtype=torch.float32).reshape(-1).tolist()
        self.z = self.explorer.check_latent(values, what)
        self._sync(self._sync_sliders)
        self._refresh()

    @property
    def expression(self) -> str:
        """The edit as an expression for ``latentlab edit`` (the elements that differ from the reference)."""
        changed = (self.z[0] - self.z_ref[0]).abs() > 1e-9
        return ";".join(f"z[{i}]={float(self.z[0, i]):.6g}" for i in changed.nonzero()[:, 0].tolist())

    # ------------------------------------------------------------------ drawing

    def _set_reference(self, z_ref: Tensor) -> None:
        self.z_ref = z_ref.float()
        self.z = self.z_ref.clone()
        self._sync(self._sync_sliders)
        self._refresh()

    def _refresh(self) -> None:
        ex = self.explorer
        self.edited_png = ex.decode_png(self.z).result()
        self.edited_image.value = self.edited_png
        before, after = ex.batcher(self.z_ref), ex.batcher(self.z)  # (C, H, W) each
        self.difference_png, vmax = difference_png(after, before, ex.run.value_range)
        self.diff_image.value = self.difference_png
        self.diff_caption.value = ("<div style='text-align:center;font-size:0.85em'>edited - reconstruction "
                                   f"(±{vmax:.3g}, mean over channels)</div>")
        self.description = ex.describe(self.z_ref, self.z)
        self.description_html.value = _description_html(self.description)
        expression = self.expression
        self.expression_html.value = "" if not expression else (
            f"<div style='overflow-wrap:anywhere'><code>{html.escape(expression)}</code>" + (
                "" if self.index is None else
                f"<br><small>latentlab edit RUN --index {self.index} --edit '{html.escape(expression)}'</small>")
            + "</div>")

    def _show_anomaly(self) -> None:
        a = self.anomaly
        self.anomaly_html.value = "" if a is None else (
            f"anomaly score ({html.escape(str(a['kind']))}) {a['score']:.4g}: higher than "
            f"{a['percentile']:.1f}% of {a['n_reference']} {a['reference']}")

    def _show_status(self, message: str, error: bool = False) -> None:
        colour = "#9b1c1c" if error else "#555"
        self.status.value = f"<span style='color:{colour}'>{html.escape(message)}</span>"

    def _span(self, element: int) -> tuple[float, float]:
        """A slider's range: the typical range widened by half its width, always holding the
        reference and current values, never beyond the values the Explorer accepts."""
        ex = self.explorer
        lo, hi = float(ex.lo[element]), float(ex.hi[element])
        bound_lo, bound_hi = (float(b[element]) for b in ex.bounds())
        w = max(hi - lo, 1e-3)
        own, now = float(self.z_ref[0, element]), float(self.z[0, element])
        return max(min(lo - 0.5 * w, own, now), bound_lo), min(max(hi + 0.5 * w, own, now), bound_hi)

    def _sync_sliders(self) -> None:
        for element, slider in self.sliders.items():
            low, high = self._span(element)
            now = float(self.z[0, element])
            with slider.hold_sync():  # one message: the browser never sees a value outside the range and clamps it
                slider.min, slider.max = min(low, slider.max), max(high, slider.min)  # never min > max on the way
                slider.min, slider.max = low, high
                slider.step = (high - low) / 1000 or 1e-3
                if abs(slider.value - now) > 1e-6 * max(1.0, abs(now)):  # not for float32 rounding of a dragged value
                    slider.value = now

    def _sync(self, action: Any) -> None:
        """Run ``action`` without the widgets' own callbacks firing."""
        self._syncing = True
        try:
            action()
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ widget callbacks

    def _guard(self, action: Any) -> None:
        """Errors a user causes become the status line (a widget callback cannot raise to the user)."""
        try:
            action()
        except LatentlabError as exc:
            self._show_status(str(exc), error=True)

    def _on_slider(self, element: int, change: dict[str, Any]) -> None:
        """A slider moved. The browser's slider (noUiSlider) snaps a value set here onto its step grid
        and sends the snapped value back: a change of at most half a step is that echo, not an edit."""
        if self._syncing or abs(change["new"] - float(self.z[0, element])) <= self.sliders[element].step / 2:
            return
        self._guard(lambda: self.set_element(element, change["new"]))

    def _on_index(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self._guard(lambda: self.select(change["new"]))


# ---------------------------------------------------------------------------------- pictures


def difference_png(after: Tensor, before: Tensor, value_range: tuple[float, float]) -> tuple[bytes, float]:
    """The signed difference map of ``latentlab edit`` (:func:`latentlab.viz.latent.diff_map`, on its
    diverging colour scale) as PNG bytes, and the half-width of the scale in model units."""
    from matplotlib import colormaps

    from latentlab.viz.latent import DIFF_CMAP, diff_map

    d = diff_map(after.detach().cpu().float().numpy(), before.detach().cpu().float().numpy())  # (H, W)
    vmax = max(float(np.abs(d).max()), DIFF_FLOOR * (value_range[1] - value_range[0]))
    rgba = colormaps[DIFF_CMAP]((d / vmax + 1.0) / 2.0)  # (H, W, 4) in [0, 1]
    return png_bytes(np.round(rgba[..., :3] * 255).astype(np.uint8)), vmax


def _description_html(d: dict[str, Any]) -> str:
    rows = [("change", d.get("text", ""))]
    if d.get("factors"):
        rows.append(("factors", ", ".join(f"{k} {v:+.3f}" for k, v in d["factors"].items() if v is not None)))
    return "".join(f"<div><b>{html.escape(k)}</b>: {html.escape(str(v))}</div>" for k, v in rows)
