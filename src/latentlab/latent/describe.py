"""Measured, plain-words description of the difference between two images.

What a student otherwise writes by eye after editing a latent element ("redder", "the mouth
opens", "something changes at the bottom"), as numbers: MSE and PSNR against the reference,
the mean shift of each colour channel and of brightness (ITU-R BT.601 luma weights) and
contrast (standard deviation of luma), where the change concentrates on a 3x3 grid, and - when
a :class:`~latentlab.latent.factors.FactorRegressor` is given - how much each known generative
factor moved. All amounts are in the model's value range (e.g. [-1, 1]).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentlab.errors import LatentlabError

__all__ = ["REGION_NAMES", "ChangeDescription", "describe_change", "describe_edits"]

REGION_NAMES = [["upper left", "upper centre", "upper right"],
                ["middle left", "centre", "middle right"],
                ["lower left", "lower centre", "lower right"]]
THIRDS = {"row": ["upper third", "middle band", "lower third"],
          "col": ["left third", "central column", "right third"]}
CHANNEL_WORDS = {"red": "redder", "green": "greener", "blue": "bluer"}
LUMA = (0.299, 0.587, 0.114)
FACTOR_MIN = 0.02  # factor changes smaller than this are not named in the text


@dataclass
class ChangeDescription:
    """The measured change from ``before`` to ``after`` (see :func:`describe_change`)."""

    mse: float
    psnr: float  # dB; inf when nothing changed
    channel_shift: dict[str, float]  # mean after - before per colour channel; empty for grey images
    brightness: float  # mean luma change
    contrast: float  # change of the standard deviation of luma
    regions: list[list[float]]  # 3x3 shares of the absolute change, rows top to bottom, summing to 1
    top_region: str
    top_share: float
    factors: dict[str, float] | None  # estimated factor change after - before, when a regressor is given
    text: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["psnr"] = self.psnr if math.isfinite(self.psnr) else None  # strict JSON has no Infinity
        return out

    def _repr_html_(self) -> str:
        """A notebook shows the description as a table of its measurements."""
        from latentlab.viz.html import esc, table

        rows: list[list[Any]] = [["MSE", self.mse], ["PSNR (dB)", self.psnr if math.isfinite(self.psnr) else "inf"]]
        rows += [[f"{name} shift", v] for name, v in self.channel_shift.items()]
        rows += [["brightness", self.brightness], ["contrast", self.contrast],
                 ["most change", f"{self.top_region} ({100 * self.top_share:.0f}%)"]]
        rows += [[f"factor {name}", v] for name, v in (self.factors or {}).items()]
        return f"<p>{esc(self.text)}</p>" + table(["measure", "after - before"], rows)

    def caption(self) -> str:
        """Two short lines for a figure panel."""
        psnr = "identical" if not math.isfinite(self.psnr) else f"PSNR {self.psnr:.1f} dB"
        colour = max(self.channel_shift.items(), key=lambda kv: abs(kv[1]), default=None)
        if colour and abs(colour[1]) >= 0.005:
            first = f"{psnr}, {CHANNEL_WORDS[colour[0]]} {colour[1]:+.2f}"
        else:
            first = f"{psnr}, brightness {self.brightness:+.2f}"
        second = f"{100 * self.top_share:.0f}% {self.top_region}" if self.top_share else "no change"
        if self.factors:
            name, value = max(self.factors.items(), key=lambda kv: abs(kv[1]))
            if abs(value) >= FACTOR_MIN:
                second += f", {name} {value:+.2f}"
        return f"{first}\n{second}"


def _as_chw(t: Tensor | np.ndarray, what: str) -> Tensor:
    t = torch.as_tensor(t).detach().to("cpu", torch.float64)
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise LatentlabError(f"describe: {what} has shape {tuple(t.shape)}; expected (C, H, W) with C 1 or 3")
    return t


def _luma(x: Tensor) -> Tensor:
    if x.shape[0] == 1:
        return x[0]
    w = torch.tensor(LUMA, dtype=x.dtype)[:, None, None]
    return (x * w).sum(0)  # (H, W)


def _shares(change: Tensor) -> tuple[np.ndarray, dict[str, float]]:
    """3x3 shares of a non-negative (H, W) change map, and the shares of the four halves."""
    total = float(change.sum())
    h, w = change.shape
    row_parts = np.array_split(np.arange(h), 3)
    col_parts = np.array_split(np.arange(w), 3)
    cells = np.array([[float(change[r[0]:r[-1] + 1, c[0]:c[-1] + 1].sum()) for c in col_parts]
                      for r in row_parts])
    if total <= 0:
        return np.full((3, 3), 1.0 / 9.0), {}
    halves = {"upper half": float(change[: h // 2].sum()), "lower half": float(change[h - h // 2:].sum()),
              "left half": float(change[:, : w // 2].sum()),
              "right half": float(change[:, w - w // 2:].sum())}
    return cells / total, {k: v / total for k, v in halves.items()}


def where_text(cells: np.ndarray, halves: dict[str, float]) -> str:
    """The smallest region holding most of the change: a cell (>= 50%), a third (>= 70%), a
    half (>= 80%), else "spread over the image"."""
    if not halves:
        return "nothing changed"
    r, c = np.unravel_index(int(cells.argmax()), cells.shape)
    top, share = REGION_NAMES[r][c], float(cells[r, c])
    if share >= 0.5:
        return f"{100 * share:.0f}% of the change is in the {top}"
    thirds = [(float(s), THIRDS["row"][i]) for i, s in enumerate(cells.sum(1))] + \
             [(float(s), THIRDS["col"][i]) for i, s in enumerate(cells.sum(0))]
    best_third = max(thirds)
    best_half = max((s, name) for name, s in halves.items())
    for (s, name), need in ((best_third, 0.7), (best_half, 0.8)):
        if s >= need:
            return f"{100 * s:.0f}% of the change is in the {name} (most in the {top}, {100 * share:.0f}%)"
    return f"the change is spread over the image (at most {100 * share:.0f}% in the {top})"


def _colour_text(shift: dict[str, float], span: float) -> str:
    named = [f"{CHANNEL_WORDS[k]} by {v:.3g}" for k, v in shift.items() if abs(v) >= 0.005 * span]
    return ", ".join(named) if named else "no colour shift"


def _factor_text(factors: dict[str, float]) -> str:
    moved = sorted(((v, k) for k, v in factors.items() if abs(v) >= FACTOR_MIN), key=lambda t: -abs(t[0]))
    if not moved:
        return f"no known factor moved by {FACTOR_MIN} or more"
    return "factors: " + ", ".join(f"{k} {v:+.2f}" for v, k in moved[:4])


def describe_change(before: Tensor, after: Tensor, value_range: tuple[float, float],
                    factor_model: Any = None) -> ChangeDescription:
    """Describe ``after - before``; both (C, H, W) in model space with values in ``value_range``.

    ``factor_model``: an object with ``predict(uint8 NHWC) -> {name: (N,)}`` (a fitted
    :class:`~latentlab.latent.factors.FactorRegressor`); its estimates of both images are compared.
    """
    x0, x1 = _as_chw(before, "before"), _as_chw(after, "after")
    if x0.shape != x1.shape:
        raise LatentlabError(
            f"describe: before {tuple(x0.shape)} and after {tuple(x1.shape)} differ in shape")
    lo, hi = float(value_range[0]), float(value_range[1])
    span = hi - lo
    diff = x1 - x0  # (C, H, W)
    mse = float(diff.pow(2).mean())
    psnr = 10.0 * math.log10(span * span / mse) if mse > 0 else math.inf
    colours = ("red", "green", "blue")
    shift = {} if x0.shape[0] == 1 else {k: float(diff[i].mean()) for i, k in enumerate(colours)}
    l0, l1 = _luma(x0), _luma(x1)
    brightness, contrast = float(l1.mean() - l0.mean()), float(l1.std() - l0.std())
    cells, halves = _shares(diff.abs().mean(0))  # (H, W) per-pixel change, averaged over channels
    r, c = np.unravel_index(int(cells.argmax()), cells.shape)
    top_region, top_share = (REGION_NAMES[r][c], float(cells[r, c])) if halves else ("none", 0.0)
    factors = None
    if factor_model is not None:
        from latentlab.data.batches import to_uint8

        est = factor_model.predict(to_uint8(torch.stack([x0, x1]).float(), (lo, hi)))
        factors = {k: float(v[1] - v[0]) for k, v in est.items()}
    size = "identical (MSE 0)" if mse == 0 else f"MSE {mse:.4g}, PSNR {psnr:.1f} dB"
    parts = [f"{size} against the reference"]
    if shift:
        parts.append(_colour_text(shift, span))
    parts.append(f"brightness {brightness:+.3f}, contrast {contrast:+.3f}")
    parts.append(where_text(cells, halves))
    if factors is not None:
        parts.append(_factor_text(factors))
    return ChangeDescription(mse=mse, psnr=psnr, channel_shift=shift, brightness=brightness,
                             contrast=contrast, regions=cells.tolist(), top_region=top_region,
                             top_share=top_share, factors=factors, text="; ".join(parts) + ".")


def describe_edits(result: Any, value_range: tuple[float, float],
                   factor_model: Any = None) -> list[list[ChangeDescription]]:
    """For an :class:`~latentlab.latent.apply.EditResult`: per image, per edit, the change of the
    edited image against the reconstruction."""
    return [[describe_change(result.x_hat[n], xe[n], value_range, factor_model) for xe in result.x_edited]
            for n in range(result.x.shape[0])]
