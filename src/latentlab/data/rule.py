"""The input rule: how a stored image becomes a model input, applied by one function per stage.

A run records its rule (a :class:`~latentlab.data.batches.BatchSpec`: crop, centre crop,
resize, value range, plus the training noise) with the data spec it was trained on. The rule
is applied in two stages, and where each geometric step happens depends only on the source:

==========================  ===================================  ==============================
source                      while the files are decoded          for each batch
==========================  ===================================  ==============================
``folder:`` / ``tar:``      crop -> centre crop -> resize (PIL)  value range
arrays (``npy``, ``idx``,   --                                   crop -> centre crop -> resize
``faces``, ...)                                                  (torch) -> value range
an uploaded image           the rule's geometry, then the        value range
                            model's size if the rule has none
==========================  ===================================  ==============================

So a large JPEG set is held at the model's size, never at the files'. :func:`load_prepared`
is the set stage; :func:`model_inputs` the batch stage. Training, resuming, every latent tool,
the scores, the detector, the explorer, the report and the comparison go through these two.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentlab.data.batches import BatchSpec, to_model_input
from latentlab.data.decode import Geometry
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError

__all__ = ["DECODED_KINDS", "PreparedSet", "decode_geometry", "load_prepared", "model_inputs", "split_rule"]

DECODED_KINDS = ("folder", "tar", "celeba")  # decoded from image files: the geometry is applied while decoding


@dataclass
class PreparedSet(ImageSet):
    """An :class:`ImageSet` loaded for an input rule: ``images`` as the first stage left them
    (at the model's size for decoded sources) and ``batch``, the rest of the rule that makes a
    batch of them model input (never noise: that is training's own)."""

    batch: BatchSpec = dataclasses.field(default_factory=BatchSpec)

    def inputs(self, rows: Any = None, device: torch.device | str | None = None) -> torch.Tensor:
        """The model input (N, C, H, W) of ``rows`` (all images when None)."""
        images = self.images if rows is None else self.images[np.asarray(rows, dtype=np.int64)]
        return to_model_input(images, self.batch, device=device)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the model input these images make."""
        return self.batch.output_shape(self.image_shape)


def decode_geometry(rule: BatchSpec) -> Geometry:
    return Geometry(crop=rule.crop, center_crop=rule.center_crop, resize=rule.resize)


def with_source_defaults(rule: BatchSpec, spec: str) -> BatchSpec:
    """``rule`` with the geometry a source implies when the rule gives none: ``celeba:`` is cut
    to its usual 64x64 preparation (centred 140x140 crop, resized to 64x64)."""
    from latentlab.data.celeba import DEFAULT_GEOMETRY
    from latentlab.data.sources import parse_spec

    if parse_spec(spec).kind == "celeba" and (rule.crop, rule.center_crop, rule.resize) == (None, None, None):
        return dataclasses.replace(rule, center_crop=DEFAULT_GEOMETRY.center_crop, resize=DEFAULT_GEOMETRY.resize)
    return rule


def split_rule(rule: BatchSpec, kind: str) -> tuple[Geometry | None, BatchSpec]:
    """(the geometry applied while decoding, the rest applied to each batch) for a source kind."""
    clean = dataclasses.replace(rule, noise=0.0)
    if kind in DECODED_KINDS:
        return decode_geometry(rule), BatchSpec(value_range=rule.value_range)
    return None, clean


def load_prepared(spec: str, rule: BatchSpec, *, cache_dir: Path | None = None,
                  ready_ok: bool = False) -> PreparedSet:
    """The images a data spec names, loaded for ``rule``: the set stage of the input rule.

    ``ready_ok`` (a trained run reading other data): an array source whose images the rule's crop
    does not fit, but which already have the size the rule makes, is used as it is, with a warning
    (:func:`already_prepared`). Training leaves it off: a crop that does not fit is an error there."""
    from latentlab.data.sources import load_source, parse_spec

    geometry, batch = split_rule(with_source_defaults(rule, spec), parse_spec(spec).kind)
    data = load_source(spec, geometry=geometry, cache_dir=cache_dir)
    prepared = PreparedSet(images=data.images, labels=data.labels, label_names=data.label_names,
                           factors=data.factors, spec=data.spec, batch=batch)
    try:
        prepared.input_shape  # noqa: B018 (raises when an array source's crop does not fit its images)
    except LatentlabError as exc:
        plain = already_prepared(prepared.image_shape, batch) if ready_ok else None
        if plain is None:
            raise
        import warnings

        _, h, w = prepared.image_shape
        warnings.warn(f"{spec}: {exc}; its {h}x{w} images are already the model's size, so they are used "
                      "as they are (the rule's crop and resize skipped)", stacklevel=2)
        prepared = dataclasses.replace(prepared, batch=plain)
    return prepared


def already_prepared(image_shape: tuple[int, int, int], batch: BatchSpec) -> BatchSpec | None:
    """``batch`` without its geometry when images of ``image_shape`` (C, H, W) are already the
    size that geometry makes (a course-style 64x64 array scored by a run trained on JPEGs with
    ``--center-crop 140 --resize 64``); None when the rule has no geometry or they are not."""
    if batch.resize is not None:
        size: tuple[int, ...] = tuple(batch.resize)
    elif batch.center_crop is not None:
        size = (batch.center_crop, batch.center_crop)
    elif batch.crop is not None:
        size = tuple(batch.crop[2:])
    else:
        return None
    if tuple(image_shape[1:]) != size:
        return None
    return dataclasses.replace(batch, crop=None, center_crop=None, resize=None)


def refuse_undecoded(images: ImageSet, rule: BatchSpec) -> None:
    """An image set read from image files without the rule's decode stage would be cut by torch
    per batch instead of by the decoder: other pixels than training saw. Refuse it."""
    from latentlab.data.sources import parse_spec

    kind = parse_spec(images.spec).kind
    geometry, _ = split_rule(with_source_defaults(rule, images.spec), kind)
    if geometry is not None and geometry != Geometry():
        raise LatentlabError(f"{images.spec}: an image set read without the input rule; pass the data spec "
                             "(or Run.data(spec) / latentlab.data.rule.load_prepared(spec, rule)) so the crop and "
                             "resize are made while decoding, as in training")


def model_inputs(rule: BatchSpec, images: Any, rows: Any = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """The batch stage: model input (N, C, H, W) from ``images`` under ``rule`` (without noise).

    ``images`` is a :class:`PreparedSet` (its own remaining rule is applied), any other
    :class:`ImageSet` or a uint8 array (N, H, W, C) of stored images (the whole rule is applied,
    as to an array source), or a float tensor that already is model input (returned as it is).
    """
    if isinstance(images, PreparedSet):
        return images.inputs(rows, device=device)
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        x = images if rows is None else images[torch.as_tensor(np.asarray(rows, dtype=np.int64))]
        return x if device is None else x.to(device)
    if isinstance(images, ImageSet) and images.spec:
        refuse_undecoded(images, rule)
    pixels = images.images if isinstance(images, ImageSet) else images
    if rows is not None:
        pixels = pixels[np.asarray(rows, dtype=np.int64)]
    if not isinstance(pixels, (np.ndarray, torch.Tensor)):
        raise LatentlabError(f"images: expected uint8 (N, H, W, C) pixels or an ImageSet, got {type(pixels).__name__}")
    return to_model_input(pixels, dataclasses.replace(rule, noise=0.0), device=device)
