"""The ``transforms`` scores: a classifier that learned which way up a normal image is.

Golan & El-Yaniv (NeurIPS 2018, "Deep anomaly detection using geometric transformations") and
Hendrycks et al. (NeurIPS 2019, "Using self-supervised learning can improve model robustness and
uncertainty") train a network on normal images only to tell which of a set of geometric
transformations was applied to an image. To do that it must learn what an upright normal image
looks like; shown an image unlike the normal ones it is unsure which way is up. Here the
transformations are the four rotations by multiples of 90 degrees (two, 0 and 180, for images
that are not square). As in Hendrycks et al.'s multi-task version, the classifier also learns,
in two more heads, whether each image was shifted left, right or not at all, and up, down or
not at all (by an eighth of its side, reflected at the border): that makes it learn where
things sit in a normal image. The shift heads only train the classifier; two scores come from it:

=======================  ==========================================================================
kind                     score of one image x
=======================  ==========================================================================
``transforms``           sum over rotations r of -log p(r | rot_r(x)), the classifier's surprise at
                         the rotations it is shown (Hendrycks et al.'s rotation score)
``transform-features``   the ``features`` score (:mod:`latentlab.anomaly.features`) on the
                         classifier's hidden layers: pooled statistics of the upright image,
                         averaged with those of its mirror image, one Gaussian per layer fitted
                         on normal training images
=======================  ==========================================================================

The classifier is a small convolutional network (stride-2 3x3 convolutions, BatchNorm, ReLU,
then one linear layer per head), trained on the run's training rows only (never on its validation rows,
which ``--score auto`` holds out). It lives in the run folder beside the autoencoder
(``transforms.json`` + ``transforms.safetensors``); ``train --recipe anomaly`` trains it, and
:func:`train_for_run` adds one to any run. A run opened with one has it attached to its model
(:func:`attached`), which is how the scoring functions find it.
"""

from __future__ import annotations

import dataclasses
import math
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentlab.anomaly.features import pool
from latentlab.data.batches import BatchSpec
from latentlab.errors import LatentlabError

TRANSFORM_KINDS = ("transforms", "transform-features")
CONFIG_FILE = "transforms.json"
WEIGHTS_FILE = "transforms.safetensors"
VERSION = 2  # 2: the shift heads (a version-1 classifier, rotations only, still loads)
SHIFT_FRACTION = 0.125  # of the shorter side: how far the shift heads' images are moved


# ---------------------------------------------------------------- the classifier


@dataclass(frozen=True)
class TransformConfig:
    """The classifier: ``in_shape`` (C, H, W) of the model input; one stride-2 convolution per
    entry of ``channels`` (fewer when the image cannot be halved that often); ``shift`` pixels
    the shift heads tell apart (0: no shift heads)."""

    in_shape: tuple[int, int, int]
    channels: tuple[int, ...] = (32, 64, 128, 256)
    shift: int = 0

    def __post_init__(self) -> None:
        if len(self.in_shape) != 3 or min(self.in_shape) < 1:
            raise LatentlabError(f"transform classifier in_shape {self.in_shape}: expected (C, H, W)")
        if not self.channels or min(self.channels) < 1:
            raise LatentlabError(f"transform classifier channels {self.channels}: expected positive widths")
        _, h, w = self.in_shape
        if not 0 <= self.shift < min(h, w):
            raise LatentlabError(f"transform classifier shift {self.shift}: expected 0 to {min(h, w) - 1} pixels "
                                 f"for {h}x{w} images")
        if not self.layers:
            raise LatentlabError(f"transform classifier: images of {self.in_shape[1]}x{self.in_shape[2]} cannot be "
                                 "halved; expected at least 4x4 pixels")

    @property
    def rotations(self) -> int:
        """4 for square images (0, 90, 180, 270 degrees), else 2 (0 and 180)."""
        return 4 if self.in_shape[1] == self.in_shape[2] else 2

    @property
    def layers(self) -> tuple[int, ...]:
        """The widths actually used: one per halving the image allows."""
        _, h, w = self.in_shape
        out = []
        for c in self.channels:
            if min(h, w) < 4:
                break
            h, w = (h + 1) // 2, (w + 1) // 2
            out.append(c)
        return tuple(out)

    def final_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        for _ in self.layers:
            h, w = (h + 1) // 2, (w + 1) // 2
        return self.layers[-1], h, w


class TransformNet(nn.Module):
    """Which rotation was applied: (N, C, H, W) -> logits (N, rotations); with ``config.shift``,
    also which horizontal and which vertical shift (:meth:`heads`)."""

    def __init__(self, config: TransformConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.in_shape[0]
        for c in config.layers:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.body = nn.Sequential(*layers)
        size = math.prod(config.final_shape())
        self.head = nn.Linear(size, config.rotations)
        self.shift_x = nn.Linear(size, 3) if config.shift else None  # left, none, right
        self.shift_y = nn.Linear(size, 3) if config.shift else None  # up, none, down

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.body(x).flatten(1))  # (N, rotations)
        return logits

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(rotation logits (N, rotations), horizontal and vertical shift logits (N, 3) each)."""
        if self.shift_x is None or self.shift_y is None:
            raise LatentlabError("transform classifier: this one has no shift heads (shift 0)")
        h = self.body(x).flatten(1)
        return self.head(h), self.shift_x(h), self.shift_y(h)


def rotate(x: Tensor, r: int, rotations: int) -> Tensor:
    """x rotated by the r-th of ``rotations`` equal turns (4: quarter turns; 2: half turns)."""
    return torch.rot90(x, r * (4 // rotations), dims=(-2, -1))


def shift(x: Tensor, dx: Tensor, dy: Tensor, pixels: int) -> Tensor:
    """Each image of x (N, C, H, W) moved by (dx, dy) * ``pixels`` (dx, dy in {-1, 0, 1} per
    image; positive: right and down), the border reflected."""
    if pixels == 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (pixels, pixels, pixels, pixels), mode="reflect")
    out = torch.empty_like(x)
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            chosen = (dx == a) & (dy == b)
            if bool(chosen.any()):
                top, left = pixels - b * pixels, pixels - a * pixels
                out[chosen] = padded[chosen][..., top:top + h, left:left + w]
    return out


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class TransformTraining:
    """How the classifier is trained (the ``transforms`` section of a recipe)."""

    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    precision: str = "bf16-mixed"
    channels: tuple[int, ...] = (32, 64, 128, 256)
    shift: float = SHIFT_FRACTION  # of the shorter side, for the shift heads; 0: rotations only

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise LatentlabError(f"transform classifier training {self}: expected positive epochs, batch size, lr")
        if not 0 <= self.shift < 0.5:
            raise LatentlabError(f"transform classifier shift {self.shift}: expected a fraction of the side in "
                                 "[0, 0.5)")
        if self.precision not in ("32-true", "bf16-mixed"):
            raise LatentlabError(f"transform classifier precision {self.precision!r}: expected 32-true or bf16-mixed")

    @classmethod
    def from_dict(cls, data: Any, source: str = "transforms") -> TransformTraining:
        if not isinstance(data, dict):
            raise LatentlabError(f"{source}: expected an object of transform-classifier settings")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise LatentlabError(f"{source}: unknown transform-classifier setting(s) {', '.join(unknown)}")
        values = dict(data)
        if "channels" in values:
            values["channels"] = tuple(int(c) for c in values["channels"])
        return cls(**values)


def _augment(x: Tensor, generator: torch.Generator, shift_heads: bool) -> Tensor:
    """A random horizontal flip per image, then (without shift heads) one random shift of up to
    1/16 of the side."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    if shift_heads:
        return x  # the shift heads' own shifts move the images
    h, w = x.shape[-2:]
    p = min(h, w) // 16
    if p == 0:
        return x
    i, j = (int(v) for v in torch.randint(0, 2 * p + 1, (2,), generator=generator))
    return F.pad(x, (p, p, p, p), mode="reflect")[..., i:i + h, j:j + w]


def train_transforms(images: Any, rule: BatchSpec, settings: TransformTraining = TransformTraining(), *,
                     device: torch.device | str = "cpu", progress: bool = False) -> TransformNet:
    """Train the classifier on normal ``images`` (a PreparedSet, uint8 NHWC rows or model input),
    every batch shown in all its rotations; returns it in eval mode."""
    from latentlab.anomaly.progress import progress_bar
    from latentlab.data.rule import model_inputs

    n = len(images)
    if n < 2:
        raise LatentlabError(f"transform classifier: needs at least 2 training images, got {n}")
    x0 = model_inputs(rule, images, np.arange(1))
    pixels = round(settings.shift * min(x0.shape[-2:]))
    torch.manual_seed(settings.seed)  # before the weights are drawn: the same seed, the same classifier
    net = TransformNet(TransformConfig(tuple(x0.shape[1:]), settings.channels,  # type: ignore[arg-type]
                                       pixels)).to(device)
    generator = torch.Generator().manual_seed(settings.seed)
    steps = settings.epochs * math.ceil(n / settings.batch_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=steps)
    rotations = net.config.rotations
    autocast = settings.precision == "bf16-mixed"
    device_type = torch.device(device).type
    net.train()
    with progress_bar(settings.epochs * n, "transform classifier", enabled=progress) as advance:
        for _ in range(settings.epochs):
            order = torch.randperm(n, generator=generator).numpy()
            for start in range(0, n, settings.batch_size):
                x = _augment(model_inputs(rule, images, np.sort(order[start:start + settings.batch_size]),
                                          device=device).float(), generator, pixels > 0)
                if pixels:
                    dx, dy = (torch.randint(-1, 2, (len(x),), generator=generator) for _ in range(2))
                    x = shift(x, dx.to(x.device), dy.to(x.device), pixels)
                xs = torch.cat([rotate(x, r, rotations) for r in range(rotations)])  # (R*n, C, H, W)
                y = torch.arange(rotations, device=xs.device).repeat_interleave(len(x))
                with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
                    if pixels:
                        by_rotation, by_x, by_y = net.heads(xs)
                        loss = (F.cross_entropy(by_rotation.float(), y)
                                + F.cross_entropy(by_x.float(), (dx + 1).repeat(rotations).to(xs.device))
                                + F.cross_entropy(by_y.float(), (dy + 1).repeat(rotations).to(xs.device)))
                    else:
                        loss = F.cross_entropy(net(xs).float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                advance(len(x))
    return net.eval()


# ---------------------------------------------------------------- scoring


@torch.no_grad()
def transform_outputs(net: TransformNet, x: Tensor, features: bool = False) -> tuple[Tensor, list[Tensor]]:
    """(the ``transforms`` score (N,), the pooled hidden-layer statistics of the upright images
    averaged with those of their mirror images (a test-time flip), one (N, F_l) per layer, empty
    unless ``features``) for model input x (N, C, H, W)."""
    net.eval()
    first = next(net.parameters())
    if first.device != x.device:
        net.to(x.device)
    x = x.to(first.dtype)
    found: list[Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: found.append(pool(out)))
             for m in net.body if isinstance(m, nn.ReLU)] if features else []
    rotations = net.config.rotations
    surprise = torch.zeros(len(x), device=x.device)
    try:
        if features:
            net(x.flip(-1))  # the mirror images' features; the upright ones come with rotation 0
        for r in range(rotations):
            logits = net(rotate(x, r, rotations)).float()
            surprise -= F.log_softmax(logits, dim=1)[:, r]
            for hook in hooks:  # features of the upright images only
                hook.remove()
    finally:
        for hook in hooks:
            hook.remove()
    half = len(found) // 2
    return surprise, [(mirrored + upright) / 2 for mirrored, upright in zip(found[:half], found[half:], strict=True)]


def collect_outputs(net: TransformNet, images: Any, batch: BatchSpec, *, features: bool = True,
                    batch_size: int = 256, device: torch.device | str | None = None) -> tuple[Tensor, list[Tensor]]:
    """:func:`transform_outputs` over a whole set (uint8 rows, a PreparedSet or model input), on CPU."""
    from latentlab.anomaly.scores import input_batches

    scores, layers = [], []
    for x in input_batches(images, batch, batch_size, device):
        s, f = transform_outputs(net, x.float(), features)
        scores.append(s.cpu())
        layers.append([a.cpu() for a in f])
    by_layer = [torch.cat([b[i] for b in layers]) for i in range(len(layers[0]))] if features and layers else []
    return torch.cat(scores) if scores else torch.zeros(0), by_layer


# ---------------------------------------------------------------- stored with a run, attached to its model

_ATTACHED: weakref.WeakKeyDictionary[nn.Module, TransformNet] = weakref.WeakKeyDictionary()


def attach(model: nn.Module, net: TransformNet | None) -> None:
    """Make ``net`` the classifier the scores use for ``model`` (None: detach it)."""
    if net is None:
        _ATTACHED.pop(model, None)
    else:
        _ATTACHED[model] = net


def attached(model: nn.Module) -> TransformNet | None:
    """The transform classifier of ``model``, if its run has one."""
    return _ATTACHED.get(model)


def save_transforms(net: TransformNet, folder: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``transforms.safetensors`` then ``transforms.json`` (the config and how it was trained)."""
    from latentlab.io import write_json
    from latentlab.models.registry import save_weights

    folder = Path(folder)
    save_weights(net, folder / WEIGHTS_FILE)
    config = {"version": VERSION, "in_shape": list(net.config.in_shape), "channels": list(net.config.channels),
              "shift": net.config.shift, "rotations": net.config.rotations, **(info or {})}
    write_json(folder / CONFIG_FILE, config)
    return folder / CONFIG_FILE


def load_transforms(folder: str | Path) -> TransformNet | None:
    """The run's classifier, or None when it has none; a damaged one is a one-line error."""
    from latentlab.io import read_json
    from latentlab.models.registry import load_weights

    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        return None
    again = (f"; remove {folder / 'transforms.*'} and train it again (latentlab train --resume --out {folder} "
             "for a recipe run)")
    try:
        data = read_json(path, "transform classifier config")
        if data["version"] not in (1, VERSION):
            raise LatentlabError(f"{path}: version {data['version']}, expected 1 or {VERSION}{again}")
        config = TransformConfig(tuple(int(v) for v in data["in_shape"]),  # type: ignore[arg-type]
                                 tuple(int(c) for c in data["channels"]), int(data.get("shift", 0)))
        net = TransformNet(config)
        load_weights(net, folder / WEIGHTS_FILE)
    except (KeyError, TypeError, ValueError):
        raise LatentlabError(f"{path}: expected 'version', 'in_shape' and 'channels' of a transform classifier"
                             f"{again}") from None
    except LatentlabError as exc:
        if again in str(exc):
            raise
        raise LatentlabError(f"{exc}{again}") from None
    return net.eval()


def train_for_run(run: Any, images: Any = None, settings: TransformTraining = TransformTraining(), *,
                  progress: bool = False) -> TransformNet:
    """Train a classifier for ``run`` on its training rows (not its validation split), store it in
    the run folder and attach it to the run's model."""
    from latentlab.anomaly.auto import held_out_rows, training_images
    from latentlab.runs import as_run

    run = as_run(run)
    data = training_images(run, images)
    fit, _, _ = held_out_rows(run, len(data))
    rows = data.subset(fit) if hasattr(data, "subset") else data[fit]
    t0 = time.perf_counter()
    net = train_transforms(rows, run.rule, settings, device=run.model.device, progress=progress)
    if run.path is not None:
        info = {"trained_on": len(fit), "seconds": round(time.perf_counter() - t0, 1),
                "training": {**dataclasses.asdict(settings), "channels": list(settings.channels)}}
        save_transforms(net, run.path, info)
    attach(run.model, net)
    return net
