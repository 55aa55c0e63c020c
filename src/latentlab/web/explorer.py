"""What the browser explorer computes: one trained run, loaded once, and its encoded data.

The run folder is opened read-only at startup (``latentlab.runs.open_run``); the latents of
(up to ``stats_limit``) dataset images stay in memory for the typical ranges, the fitted
Gaussian the "random sample" button draws from, the ranking of latent elements and the
anomaly-score percentiles. Everything is a call into the latent tools
(``latentlab.latent.explore`` / ``describe``) and ``latentlab.anomaly.scores``; the web routes
in ``web/app.py`` only parse requests and call :class:`Explorer`.

The explorer keeps no per-user state: a client sends the latent it wants decoded, so any
number of browser tabs share one model without locks (the model is in eval mode and is only
read).
"""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentlab.anomaly.scores import score_images
from latentlab.data.batches import BatchSpec, to_uint8
from latentlab.data.imageset import ImageSet
from latentlab.data.rule import decode_geometry, model_inputs
from latentlab.errors import LatentlabError
from latentlab.latent import explore
from latentlab.latent.describe import describe_change
from latentlab.latent.edits import MAX_LENGTH, apply_edits, parse_edits
from latentlab.latent.tools import encode_run_data, factor_model_for, rank_run
from latentlab.runs import Run, open_run
from latentlab.web.batcher import DecodeBatcher
from latentlab.web.images import data_url, decode_upload, png_bytes

STATS_LIMIT = 2000  # dataset images encoded at startup for ranges, ranking and percentiles
ANOMALY_SCORE = "auto"  # the score the run chose for itself (latentlab.anomaly.auto), stored in the run
BOUND_WIDTHS = 10.0  # a latent value may lie this many typical-range widths outside the range
EDIT_MAX_LENGTH = 20 * MAX_LENGTH  # characters of a ';'-joined edit string from the page


@dataclass
class Explorer:
    """A loaded run plus its encoded data; every method is safe to call from many threads."""

    run: Run
    data: ImageSet
    z_data: Tensor  # (M, D) latents of the first M dataset images
    lo: Tensor  # (D,) typical range of each element
    hi: Tensor  # (D,)
    ranking: list[explore.ElementScore]  # best first
    train_scores: np.ndarray  # (M,) sorted anomaly scores of the reference images (see _score_data)
    factor_model: Any | None = None
    detector: Any | None = None  # the fitted ReconstructionDetector of ANOMALY_SCORE
    reference: str = "training images"  # what train_scores are the scores of, for the page
    batcher: DecodeBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.batcher = DecodeBatcher(self.model.decode)

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, run_dir: str | Path | Run, data_spec: str | ImageSet | None = None, *,
             stats_limit: int = STATS_LIMIT, factors: bool = True) -> Explorer:
        """Open the run and encode its data; LatentlabError for a bad run folder or data spec.

        ``run_dir`` may also be an opened :class:`Run` and ``data_spec`` a loaded image set of the
        model's input shape (what :mod:`latentlab.notebook` passes)."""
        run = run_dir if isinstance(run_dir, Run) else open_run(run_dir)
        run.model.eval().requires_grad_(False)
        data = data_spec if isinstance(data_spec, ImageSet) else run.data(data_spec)
        with torch.inference_mode():
            z_data = encode_run_data(run, data, stats_limit)  # (M, D)
            lo, hi = explore.latent_ranges(run.model, z_data)
        ranking, _ = rank_run(run, data, z_data)  # the ranking `latentlab traverse` shows
        explorer = cls(run=run, data=data, z_data=z_data, lo=lo.float(), hi=hi.float(), ranking=ranking,
                       train_scores=np.zeros(0))
        explorer.train_scores = explorer._score_data(len(z_data))
        if factors:
            explorer.factor_model = factor_model_for(run, data.spec)
        return explorer

    def _score_data(self, m: int) -> np.ndarray:
        """Sorted anomaly scores of the reference images a shown image is ranked among.

        The detector is fitted as ``score`` and ``evaluate`` fit it (so the page shows their
        scores): on the run's normal training images, standardised and thresholded on its
        held-out ones, which are the reference.
        When the training data can no longer be read, the first m shown images stand in (they
        may hold anomalies; ``reference`` says which). The run folder stays read-only: a run
        without a stored ``auto`` choice gets one made in memory (``latentlab evaluate`` or
        ``score`` store it)."""
        from latentlab.anomaly.auto import AUTO, choose_for_images, resolve_auto
        from latentlab.anomaly.detector import ReconstructionDetector
        from latentlab.anomaly.evaluate import normal_images

        shown = self.data.subset(np.arange(m))
        try:
            normal = normal_images(self.run)  # as `score` and `evaluate` fit: the page shows their scores
        except LatentlabError:
            normal = None
        with torch.inference_mode():
            choice = None
            if ANOMALY_SCORE == AUTO:
                try:
                    choice = resolve_auto(self.run, store=False)
                except LatentlabError:
                    choice = choose_for_images(self.run, shown)
            det = ReconstructionDetector(self.run, score=ANOMALY_SCORE, choice=choice)
            if normal is None:
                det.fit(shown)
                scores, self.reference = det.decision_scores_, "shown images (the training data cannot be read)"
            else:
                det.fit(normal.fit, held_out=normal.held_out)
                held = det.held_out_scores_
                scores = held if held is not None else det.decision_scores_
                self.reference = f"normal images ({normal.held_out_from})"
            self.detector = det
        return np.sort(np.asarray(scores, dtype=np.float64))

    # ----------------------------------------------------------------------------- properties

    @property
    def model(self) -> Any:
        return self.run.model

    @property
    def latent_dim(self) -> int:
        return int(self.model.latent_dim)

    @property
    def sample_source(self) -> str:
        """Where "random sample" draws from: the prior for a VAE, a Gaussian fitted to the data for an AE."""
        return "prior" if self.model.is_variational else "fitted"

    def bounds(self) -> tuple[Tensor, Tensor]:
        """(D,), (D,): the widest values a request may send; far outside the typical range."""
        width = (self.hi - self.lo).clamp_min(1e-3)
        return self.lo - BOUND_WIDTHS * width, self.hi + BOUND_WIDTHS * width

    # ----------------------------------------------------------------------------- checks

    def check_latent(self, values: list[float], what: str = "z") -> Tensor:
        """A latent from a request -> (1, D) float tensor; LatentlabError when it does not fit."""
        if len(values) != self.latent_dim:
            raise LatentlabError(f"{what}: expected {self.latent_dim} values, got {len(values)}")
        z = torch.tensor(values, dtype=torch.float32)[None]  # (1, D)
        bad = ~torch.isfinite(z[0])
        if bad.any():
            i = int(bad.nonzero()[0])
            raise LatentlabError(f"{what}[{i}]: {values[i]} is not a finite number")
        low, high = self.bounds()
        outside = (z[0] < low) | (z[0] > high)
        if outside.any():
            i = int(outside.nonzero()[0])
            raise LatentlabError(
                f"{what}[{i}] = {values[i]:.6g} is far outside its typical range "
                f"[{self.lo[i]:.4g}, {self.hi[i]:.4g}]; expected a value in [{low[i]:.4g}, {high[i]:.4g}]")
        return z

    def check_index(self, index: int) -> int:
        if not 0 <= index < len(self.data):
            raise LatentlabError(f"image {index}: expected an index from 0 to {len(self.data) - 1}")
        return index

    # ----------------------------------------------------------------------------- model calls

    def png_of(self, x_hat: Tensor) -> bytes:
        """A decoded image (C, H, W) in model space -> PNG bytes."""
        return png_bytes(to_uint8(x_hat, self.run.value_range)[0])

    def decode_png(self, z: Tensor) -> Future[bytes]:
        """(1, D) -> a future of the PNG bytes: the slider fast path, batched with concurrent updates."""
        return self.batcher.submit(z, self.png_of)

    def anomaly_scores(self, x: Tensor) -> np.ndarray:
        """(N, C, H, W) -> (N,) anomaly scores, higher = more anomalous."""
        det = self.detector
        assert det is not None
        with torch.inference_mode():
            found = score_images(self.model, x, kind=det.score_, parts=det.parts_, value_range=self.run.value_range,
                                 stats=det.stats_)
        return found.float().numpy()

    def anomaly(self, x: Tensor) -> dict[str, Any]:
        """Score of one image (1, C, H, W) and its percentile among the encoded training images."""
        score = float(self.anomaly_scores(x)[0])
        below = np.searchsorted(self.train_scores, score, side="right")
        assert self.detector is not None
        return {"kind": self.detector.score_name_, "score": score,
                "percentile": 100.0 * float(below) / len(self.train_scores),
                "n_reference": len(self.train_scores), "reference": self.reference}

    def view(self, x: Tensor) -> dict[str, Any]:
        """One model input (1, C, H, W) -> its latent, images and anomaly score for the page."""
        with torch.inference_mode():
            z = self.model.embed(x)  # (1, D)
            x_hat = self.model.decode(z)
        original, recon = to_uint8(torch.cat([x, x_hat]), self.run.value_range)
        return {"z": z[0].tolist(), "original": data_url(png_bytes(original)),
                "reconstruction": data_url(png_bytes(recon)), "anomaly": self.anomaly(x)}

    def image_view(self, index: int) -> dict[str, Any]:
        index = self.check_index(index)
        out = self.view(self.run.inputs(self.data, [index]))
        out["index"] = index
        if self.data.labels is not None:
            label = int(self.data.labels[index])
            names = self.data.label_names
            out["label"] = names[label] if names and 0 <= label < len(names) else str(label)
        out["factors"] = {k: float(v[index]) for k, v in self.data.factors.items()}
        return out

    def upload_view(self, data: bytes, name: str) -> dict[str, Any]:
        """An uploaded PNG/JPEG, cut and sized by the run's input rule as a ``folder:`` image is
        (to the model's size where the rule has no resize), then viewed."""
        rule = self.run.rule
        geometry = decode_geometry(rule)
        if geometry.resize is None:
            geometry = dataclasses.replace(geometry, resize=self.model.in_shape[1:])
        pixels = decode_upload(data, name, self.model.in_shape, geometry)  # (1, H, W, C)
        out = self.view(model_inputs(BatchSpec(value_range=rule.value_range), pixels))
        out["index"] = None
        return out

    def thumbnail_png(self, index: int) -> bytes:
        return png_bytes(np.asarray(self.data.images[self.check_index(index)]))

    def describe(self, z_ref: Tensor, z: Tensor) -> dict[str, Any]:
        """The measured change from decoding ``z_ref`` to decoding ``z`` (both (1, D))."""
        before, after = self.batcher(z_ref), self.batcher(z)  # (C, H, W) each
        change = describe_change(before, after, self.run.value_range, factor_model=self.factor_model)
        out: dict[str, Any] = _jsonable(change.to_dict())
        return out

    def sample(self, seed: int) -> Tensor:
        """(1, D): a random latent from the prior (VAE) or the Gaussian fitted to the data (AE)."""
        generator = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            z, _ = explore.sample(self.model, 1, source=self.sample_source, z_data=self.z_data,
                                  generator=generator)
        return z.float()

    def apply_edit(self, z_orig: Tensor, text: str) -> Tensor:
        """Apply an edit expression (``z[3]=1.25;z[7]+=0.4``) to ``z_orig`` (1, D), as ``latentlab edit``."""
        if len(text) > EDIT_MAX_LENGTH:
            raise LatentlabError(f"edit: {len(text)} characters is too long (at most {EDIT_MAX_LENGTH})")
        edits = parse_edits(text)
        for edit in edits:
            edit.positions(self.latent_dim)  # index errors name the edit
        return apply_edits(z_orig, edits)

    # ----------------------------------------------------------------------------- page info

    def info(self) -> dict[str, Any]:
        from latentlab.latent.active import active_count
        from latentlab.latent.tools import QUANTISED_NOTE

        model = self.model
        c, h, w = model.in_shape
        low, high = self.bounds()
        return {
            "run": self.run.name, "model": model.describe(), "kind": model.kind,
            "variational": bool(model.is_variational), "latent_dim": self.latent_dim,
            "in_shape": [c, h, w], "value_range": list(self.run.value_range),
            "data": self.data.spec, "n_images": len(self.data), "n_reference": len(self.z_data),
            "has_labels": self.data.labels is not None, "sample_source": self.sample_source,
            "lo": self.lo.tolist(), "hi": self.hi.tolist(), "bound_lo": low.tolist(),
            "bound_hi": high.tolist(),
            "active_units": active_count(self.z_data),  # Cov_x(E[z|x]) > 0.01 over the reference images
            "note": QUANTISED_NOTE if getattr(model, "quantised_latent", False) else "",  # what the sliders move
            "ranking": [_jsonable({"element": int(s.element), "effect": s.effect, "spread": s.spread, "kl": s.kl})
                        for s in self.ranking],
        }


def _jsonable(value: Any) -> Any:
    """Floats that JSON can carry (non-finite -> None), recursively; tensors and numpy scalars to Python."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
