"""ONNX export of a run: ``encoder.onnx``, ``decoder.onnx`` and ``scorer.onnx``, dynamic batch size.

============  =====================================  =========================================
file          input                                  output
============  =====================================  =========================================
encoder.onnx  ``x`` float32 (N, C, H, W), model       ``z`` float32 (N, D): ``model.embed(x)``
              input by the run's input rule          (the posterior mean for a VAE)
decoder.onnx  ``z`` float32 (N, D)                   ``x_hat`` float32 (N, C, H, W)
scorer.onnx   ``images`` uint8 (N, H, W, C), the     ``scores`` float32 (N,), higher = more
              pixels as the run's data source holds  anomalous
              them (see below)
============  =====================================  =========================================

The scorer takes the images as :meth:`latentlab.runs.Run.data` holds them: for array sources
(``npy``, ``idx``, ``faces``, ...) the stored pixels, and the scorer applies the whole input rule
(crop, centre crop, resize, value range); for image files (``folder``, ``tar``, ``celeba``) the
pixels after the decode stage (cut and sized by PIL while decoding, as in training), and the
scorer applies the value range. The score built in is the run's stored ``auto`` choice when it
is a reconstruction score that needs no fitted statistics (``mse``, ``course``, ``elbo``),
else ``mse``; :attr:`Exported.score` and :attr:`Exported.why` say which and why, and
``export.json`` records it with the input formats.

The legacy TorchScript exporter of ``torch.onnx`` is used: it needs only the ``onnx`` package
(``pip install latentlab[export]``); the dynamo exporter needs ``onnxscript`` as well.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentlab.data.batches import BatchSpec
from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder, DiagonalGaussian

__all__ = ["EXPORTABLE_SCORES", "FILES", "Exported", "export_onnx"]

FILES = ("encoder.onnx", "decoder.onnx", "scorer.onnx")
MANIFEST = "export.json"
EXPORTABLE_SCORES = ("mse", "course", "elbo")  # computed from one forward pass, no fitted statistics
OPSET = 18  # Resize with antialias (the rule's resize) needs opset 18
INSTALL = "pip install latentlab[export]"


@dataclass(frozen=True)
class Exported:
    """What :func:`export_onnx` wrote: the files, the score built into the scorer and why."""

    folder: Path
    files: tuple[Path, ...]
    score: str
    why: str
    scorer_input: str  # "stored" (array sources: the whole rule) or "decoded" (image files: value range only)


# ---------------------------------------------------------------- the exported modules


class Encoder(nn.Module):
    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.embed(x)  # (N, D)


class Decoder(nn.Module):
    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: Tensor) -> Tensor:
        return self.model.decode(z)  # (N, C, H, W)


class Scorer(nn.Module):
    """uint8 pixels (N, H, W, C) -> scores (N,): the batch stage of the input rule, then the score
    (the same arithmetic as :func:`latentlab.anomaly.scores.score_images` for ``score``)."""

    def __init__(self, model: Autoencoder, batch: BatchSpec, score: str, stored_hw: tuple[int, int]) -> None:
        super().__init__()
        self.model, self.batch, self.score = model, batch, score
        self.resize: tuple[Tensor, Tensor] | None = None  # fixed for the stored size: constants of the graph
        cut = BatchSpec(crop=batch.crop, center_crop=batch.center_crop).output_shape((1, *stored_hw))[1:]
        if batch.resize is not None and tuple(cut) != tuple(batch.resize):
            self.resize = (resize_matrix(cut[0], batch.resize[0]), resize_matrix(cut[1], batch.resize[1]))

    def forward(self, images: Tensor) -> Tensor:
        x = rule_stage(images, self.batch, self.resize)  # (N, C, H, W) float32
        posterior = self.model.encode(x)
        z = posterior.mode() if isinstance(posterior, DiagonalGaussian) else posterior
        x_hat = self.model.decode(z)
        sq = (x_hat - x).pow(2).flatten(1)  # (N, C*H*W)
        if self.score == "course":
            lo, hi = self.batch.value_range
            return (sq * (2.0 / (hi - lo)) ** 2).sum(1).sqrt()
        if self.score == "elbo":
            assert isinstance(posterior, DiagonalGaussian)
            beta = float(getattr(self.model.config, "beta", 1.0))
            return sq.mean(1) + beta * posterior.kl() / x[0].numel()
        return sq.mean(1)


def rule_stage(images: Tensor, batch: BatchSpec, resize: tuple[Tensor, Tensor] | None) -> Tensor:
    """:func:`~latentlab.data.batches.to_model_input` in traceable ops (its in-place uint8 -> float
    copy and antialiased resize have no ONNX form): the same steps, the resize as two matrix products
    (``resize``: :func:`resize_matrix` of each axis); tests/test_export.py checks they agree."""
    if batch.crop is not None:
        top, left, h, w = batch.crop
        images = images[:, top:top + h, left:left + w]
    if batch.center_crop is not None:
        s, (h, w) = batch.center_crop, images.shape[1:3]
        images = images[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    x = images.permute(0, 3, 1, 2).float()  # (N, C, H, W)
    if resize is not None:  # resize_matrix of each axis
        x = torch.einsum("oh,nchw,pw->ncop", resize[0], x, resize[1])  # (N, C, H', W')
    lo, hi = batch.value_range
    x = x * ((hi - lo) / 255.0) + lo
    return x.clamp(lo, hi)


def resize_matrix(size: int, out: int) -> Tensor:
    """(out, size) weights of torch's antialiased bilinear resize along one axis (it is separable):
    the resize of each one-hot row, so ``A @ v`` resizes ``v`` as ``F.interpolate`` does; ONNX has no
    antialiased Resize in the legacy exporter, but a matrix product it has."""
    eye = torch.eye(size).reshape(size, 1, 1, size)  # one 1-row image per input position (a column
    # image (size, 1, size, 1) would also be channels-last contiguous, and torch misreads it)
    rows = F.interpolate(eye, size=(1, out), mode="bilinear", antialias=True, align_corners=False)
    return rows.reshape(size, out).T.contiguous()


# ---------------------------------------------------------------- choosing the score


def built_in_score(run: Any) -> tuple[str, str]:
    """(score, why): the run's stored auto choice if exportable, else ``mse``."""
    from latentlab.anomaly.auto import stored_choice

    choice = stored_choice(run)
    if choice is None:
        return "mse", "the run has no stored auto score choice; the scorer uses the reconstruction error (mse)"
    if choice.kind in EXPORTABLE_SCORES:
        return choice.kind, f"the run's stored auto choice, {choice.kind}"
    return "mse", (f"the run's auto choice, {choice.name}, needs statistics fitted on training data that "
                   "are not exported; the scorer uses the reconstruction error (mse)")


def _check_onnx() -> None:
    try:
        import onnx  # noqa: F401 (torch.onnx.export writes through it)
    except ImportError:
        raise LatentlabError(f"export --format onnx: needs the onnx package; {INSTALL}") from None


def _export(module: nn.Module, example: Tensor, path: Path, input_name: str, output_name: str) -> None:
    from latentlab.io import atomic_path

    axes = {input_name: {0: "batch"}, output_name: {0: "batch"}}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(module, (example,), str(tmp), input_names=[input_name], output_names=[output_name],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def export_onnx(run: Any, out: str | os.PathLike[str], *, overwrite: bool = False) -> Exported:
    """Write ``encoder.onnx``, ``decoder.onnx``, ``scorer.onnx`` and ``export.json`` of ``run``
    (a run folder, a :class:`~latentlab.runs.Run` or a model) into the folder ``out``."""
    from latentlab.data.rule import split_rule, with_source_defaults
    from latentlab.data.sources import parse_spec
    from latentlab.io import write_json
    from latentlab.models.registry import WEIGHTS
    from latentlab.outputs import refuse_existing
    from latentlab.runs import as_run

    _check_onnx()
    if isinstance(run, (str, os.PathLike)) and not (Path(run) / WEIGHTS).is_file():
        raise LatentlabError(f"{run}: no {WEIGHTS}; expected a trained run folder (export after training ends)")
    run = as_run(run)
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise LatentlabError(f"{folder}: exists and is not a folder")
    refuse_existing([folder / name for name in (*FILES, MANIFEST)], overwrite)
    model = run.model
    score, why = built_in_score(run)
    kind = parse_spec(run.data_spec).kind if run.data_spec else "npy"
    _, batch = split_rule(with_source_defaults(run.rule, run.data_spec) if run.data_spec else run.rule, kind)
    c, h, w = model.in_shape
    stored = (c, h, w) if batch == dataclasses.replace(batch, crop=None, center_crop=None, resize=None) else None
    shape = stored or tuple(run.config.get("data", {}).get("stored_shape", (c, h, w)))
    sc, sh, sw = (int(v) for v in shape)
    folder.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(2, c, h, w, dtype=model.dtype, device=model.device)
            _export(Encoder(model), x, folder / FILES[0], "x", "z")
            z = model.embed(x)
            _export(Decoder(model), z, folder / FILES[1], "z", "x_hat")
            pixels = torch.zeros(2, sh, sw, sc, dtype=torch.uint8, device=model.device)
            _export(Scorer(model, batch, score, (sh, sw)), pixels, folder / FILES[2], "images", "scores")
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LatentlabError(f"export --format onnx: the {model.config.kind} model cannot be exported "
                             f"({first[:160]})") from None
    finally:
        model.train(was_training)
    scorer_input = "decoded" if kind in ("folder", "tar", "celeba") else "stored"
    write_json(folder / MANIFEST, {
        "format": "onnx", "opset": OPSET, "run": str(run.path) if run.path else None, "kind": model.config.kind,
        "score": score, "why": why, "higher_is_anomalous": True,
        "encoder": {"input": f"x float32 (N, {c}, {h}, {w}), values in {list(run.rule.value_range)}",
                    "output": f"z float32 (N, {model.latent_dim})"},
        "decoder": {"input": f"z float32 (N, {model.latent_dim})", "output": f"x_hat float32 (N, {c}, {h}, {w})"},
        "scorer": {"input": f"images uint8 (N, {sh}, {sw}, {sc}) ({scorer_input} pixels)",
                   "output": "scores float32 (N,)"},
    })
    return Exported(folder, tuple(folder / name for name in FILES), score, why, scorer_input)
