"""What the model is: a Keras-style layer table (torchinfo), and a block diagram.

The diagram is drawn after the usual autoencoder figure (Hinton & Salakhutdinov, 2006; the
course's "show the architecture" task): input -> encoder -> latent -> decoder -> output, one block
per layer with its output shape and parameter count. Parallel encoders (``fcn-multi3``) are drawn
side by side and merge into the latent; a VAE's ``mu`` and ``logvar`` heads likewise. A VQ-VAE's
codebook is drawn between the (pre-quantisation) latent and the decoder, as the quantiser it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder


class _Traced(nn.Module):
    """torchinfo follows tensors only: present ``forward`` as (x_hat, z) and name the layers as
    the model does (``encoder.0``, ``decoder.2``, ...)."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.model.embed(x)  # (N, D); the posterior mean for a VAE
        return self.model.decode(z), z


def summary_table(model: Autoencoder, batch_size: int = 1, depth: int = 5) -> str:
    """torchinfo's table of layers with output shapes and parameter counts, and the totals.

    The model runs once on zeros of its input shape; BatchNorm needs more than one sample in
    training mode, so the table is taken in eval mode.
    """
    from torchinfo import summary

    was_training = model.training
    model.eval()
    try:
        table = summary(_Traced(model), input_size=(batch_size, *model.in_shape), depth=depth, verbose=0,
                        col_names=("output_size", "num_params"), row_settings=("var_names",),
                        device=torch.device("cpu"))
    finally:
        model.train(was_training)
    return _unit_names(str(table))


def _unit_names(text: str) -> str:
    """torchinfo 1.8 writes its unit enum as ``(Units.MEGABYTES)`` on Python 3.11+ (``format`` of a
    str-mixin Enum changed there); write the unit it means, ``(M)``."""
    from torchinfo.enums import Units

    return re.sub(r"Units\.([A-Z]+)", lambda m: Units[m.group(1)].value if m.group(1) in Units.__members__
                  else m.group(0), text)


# ---------------------------------------------------------------- tracing the layers

# Layers that start a block; the BatchNorm / activation layers after one join its block.
_MAIN = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Flatten, nn.Unflatten, nn.Embedding)
_SHORT = {"BatchNorm1d": "BN", "BatchNorm2d": "BN", "ConvTranspose2d": "ConvT"}


@dataclass
class Block:
    """One drawn block: a main layer and the normalisation / activation layers after it."""

    name: str  # module path of its first layer, e.g. "encoder.branches.0.3"
    layers: list[str]  # short layer texts, e.g. ["Linear 12288→3000", "BN", "ReLU"]
    shape: tuple[int, ...]  # output shape without the batch dimension
    params: int

    @property
    def label(self) -> str:
        return " · ".join(self.layers)


@dataclass
class Architecture:
    """The blocks of a model by section, in the order the forward pass runs them."""

    title: str
    in_shape: tuple[int, int, int]
    latent_dim: int
    encoder: list[list[Block]]  # one list per parallel branch (one branch for most models)
    heads: list[tuple[str, list[Block]]] = field(default_factory=list)  # VAE: ("mu", ...), ("logvar", ...)
    decoder: list[Block] = field(default_factory=list)
    quantiser: list[Block] = field(default_factory=list)  # VQ-VAE: the codebook lookup before the decoder

    @property
    def encoder_params(self) -> int:
        return sum(b.params for branch in self.encoder for b in branch) + \
            sum(b.params for _, head in self.heads for b in head)

    @property
    def decoder_params(self) -> int:
        return sum(b.params for b in self.decoder)


def layer_text(module: nn.Module) -> str:
    """'Linear 12288→128', 'Conv2d 3→12 k4 s2', 'BN', 'ReLU' ..."""
    name = _SHORT.get(type(module).__name__, type(module).__name__)
    if isinstance(module, nn.Linear):
        return f"{name} {module.in_features}→{module.out_features}"
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
        k, s = module.kernel_size[0], module.stride[0]
        return f"{name} {module.in_channels}→{module.out_channels} k{k} s{s}"
    if isinstance(module, nn.Embedding):
        return f"codebook {module.num_embeddings} x {module.embedding_dim}"
    return name


def _section(name: str, n_branches: int) -> str:
    """'encoder/0', 'encoder/2', 'head/mu_head', 'decoder' or '' for a layer path."""
    top = name.split(".", 1)[0]
    if top == "encoder":
        parts = name.split(".")
        if n_branches > 1 and len(parts) > 2 and parts[1] == "branches":
            return f"encoder/{parts[2]}"
        return "encoder/0"
    if top == "decoder":
        return "decoder"
    return f"head/{top}"


@torch.no_grad()
def trace_architecture(model: Autoencoder) -> Architecture:
    """Run the model once on zeros (eval mode, on its own device; a meta-device model works too)
    and group its layers into blocks with output shapes and parameter counts."""
    branches = getattr(model.encoder, "branches", None)
    n_branches = len(branches) if isinstance(branches, nn.ModuleList) else 1
    calls: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            def hook(mod: nn.Module, _inp: Any, out: Any, name: str = name) -> None:
                if isinstance(out, Tensor):
                    calls.append((name, mod, tuple(out.shape[1:])))
            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        x = torch.zeros(1, *model.in_shape, device=param.device if param is not None else "cpu")
        model.decode(model.embed(x))  # a VAE's embed runs both heads (encode, then the mean)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    sections: dict[str, list[Block]] = {}
    seen: set[str] = set()
    for name, module, shape in calls:
        if name in seen:
            continue
        seen.add(name)
        if isinstance(module, nn.Identity):  # output activation "none"
            continue
        blocks = sections.setdefault(_section(name, n_branches), [])
        params = sum(p.numel() for p in module.parameters(recurse=False))
        text = layer_text(module)
        if blocks and not isinstance(module, _MAIN):
            blocks[-1].layers.append(text)
            blocks[-1].shape = shape
            blocks[-1].params += params
        else:
            blocks.append(Block(name=name, layers=[text], shape=shape, params=params))
    heads = [(key.split("/", 1)[1].removesuffix("_head"), blocks)
             for key, blocks in sections.items() if key.startswith("head/") and key != "head/codebook"]
    return Architecture(title=model.describe().split(";")[0], in_shape=model.in_shape, latent_dim=model.latent_dim,
                        encoder=[sections.get(f"encoder/{i}", []) for i in range(n_branches)],
                        heads=heads, decoder=sections.get("decoder", []), quantiser=sections.get("head/codebook", []))


# ---------------------------------------------------------------- drawing

_W, _H, _GAP, _COL = 3.0, 0.62, 0.34, 3.3  # block width/height, vertical gap, column pitch (inches)
_LEFT, _TOP = 1.5, 0.9  # margin for section labels, title
_COLOURS = {"input": "#eeeeee", "encoder": "#dbe8f6", "head": "#e8dcf3", "latent": "#ffd9a8",
            "decoder": "#dcefd9", "output": "#eeeeee"}
DIAGRAM_FORMATS = ("png", "svg", "pdf")


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _box(ax: Any, cx: float, top: float, lines: list[str], colour: str, bold: bool = False) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((cx - _W / 2, top), _W, _H, boxstyle="round,pad=0,rounding_size=0.08",
                                facecolor=colour, edgecolor="#555555", linewidth=0.8))
    ax.text(cx, top + _H * 0.33, lines[0], ha="center", va="center", fontsize=8,
            fontweight="bold" if bold else "normal")
    if len(lines) > 1:
        ax.text(cx, top + _H * 0.72, lines[1], ha="center", va="center", fontsize=7, color="#333333")


def _arrow(ax: Any, x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 0.8, "shrinkA": 0, "shrinkB": 0})


def _block_lines(block: Block) -> list[str]:
    params = f"{block.params:,} params" if block.params else "no params"
    return [block.label, f"out {_fmt_shape(block.shape)} · {params}"]


def _column(ax: Any, cx: float, top: float, blocks: list[Block], colour: str,
            start: tuple[float, float] | None) -> tuple[float, float]:
    """Draw ``blocks`` downwards from ``top``; returns the (x, y) of the last block's bottom."""
    for block in blocks:
        if start is not None:
            _arrow(ax, start[0], start[1], cx, top)
        _box(ax, cx, top, _block_lines(block), colour)
        start = (cx, top + _H)
        top += _H + _GAP
    return start if start is not None else (cx, top)


def _section_label(ax: Any, top: float, bottom: float, text: str) -> None:
    ax.plot([_LEFT - 0.25, _LEFT - 0.25], [top, bottom], color="#888888", lw=1.2)
    ax.text(_LEFT - 0.35, (top + bottom) / 2, text, ha="right", va="center", fontsize=8, rotation=90)


def diagram_figure(model: Autoencoder) -> Any:
    """The block diagram as a matplotlib Figure (Agg; no pyplot)."""
    from latentlab.viz.plots import figure

    arch = trace_architecture(model)
    n_cols = max(len(arch.encoder), len(arch.heads), 1)
    enc_rows = max((len(b) for b in arch.encoder), default=0)
    head_rows = max((len(b) for _, b in arch.heads), default=0)
    rows = 1 + enc_rows + head_rows + 1 + len(arch.quantiser) + len(arch.decoder) + 1
    width = _LEFT + n_cols * _COL + 0.3
    height = _TOP + rows * (_H + _GAP) + 0.2
    fig = figure(figsize=(width, height))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    ax.text(width / 2, 0.35, arch.title, ha="center", va="center", fontsize=10, fontweight="bold")
    mid = _LEFT + n_cols * _COL / 2

    def xs(n: int) -> list[float]:  # centres of n columns, centred in the figure
        return [mid + (i - (n - 1) / 2) * _COL for i in range(n)]

    top = _TOP
    first = arch.encoder[0][0] if arch.encoder and arch.encoder[0] else None
    flat = first is not None and first.layers[0].startswith("Linear")
    _box(ax, mid, top, ["input x", _fmt_shape(arch.in_shape) + (
        f" → flattened to {math.prod(arch.in_shape):,}" if flat else "")], _COLOURS["input"], bold=True)
    entry = (mid, top + _H)
    top += _H + _GAP
    enc_top = top
    ends = [_column(ax, cx, top, branch, _COLOURS["encoder"], entry)
            for cx, branch in zip(xs(len(arch.encoder)), arch.encoder, strict=True)]
    if len(arch.encoder) > 1:
        per = arch.latent_dim // len(arch.encoder)
        for i, cx in enumerate(xs(len(arch.encoder))):
            part = f"z[{i * per}]" if per == 1 else f"z[{i * per}:{(i + 1) * per}]"
            ax.text(cx - _W / 2, top - 0.06, f"encoder {i + 1} → {part}", fontsize=7, color="#1f4e8c",
                    va="bottom")
    top += enc_rows * (_H + _GAP)
    if arch.heads:
        trunk = ends[0]
        ends = [_column(ax, cx, top, blocks, _COLOURS["head"], trunk)
                for cx, (_, blocks) in zip(xs(len(arch.heads)), arch.heads, strict=True)]
        for cx, (name, _) in zip(xs(len(arch.heads)), arch.heads, strict=True):
            ax.text(cx - _W / 2, top - 0.06, f"{name} head", fontsize=7, color="#5b3a87", va="bottom")
        top += head_rows * (_H + _GAP)
    _section_label(ax, enc_top, top - _GAP, f"encoder · {arch.encoder_params:,} params")
    for x0, y0 in ends:
        if y0 < top - _GAP:  # a shorter branch: run down beside the others before merging
            ax.plot([x0, x0], [y0, top - _GAP], color="#555555", lw=0.8)
            y0 = top - _GAP
        _arrow(ax, x0, y0, mid, top)
    _box(ax, mid, top, _latent_lines(arch), _COLOURS["latent"], bold=True)
    for block in arch.quantiser:  # VQ-VAE: decode snaps the code to its nearest codebook vectors
        top += _H + _GAP
        _arrow(ax, mid, top - _GAP, mid, top)
        _box(ax, mid, top, [f"quantise: nearest of {block.label}",
                            f"out {_fmt_shape(block.shape)} · {block.params:,} params · straight-through"],
             _COLOURS["head"], bold=True)
    bottom = _column(ax, mid, top + _H + _GAP, arch.decoder, _COLOURS["decoder"], (mid, top + _H))
    dec_top = top + _H + _GAP
    top = dec_top + len(arch.decoder) * (_H + _GAP)
    if arch.decoder:
        _section_label(ax, dec_top, top - _GAP, f"decoder · {arch.decoder_params:,} params")
    _arrow(ax, bottom[0], bottom[1], mid, top)
    reshaped = bool(arch.decoder) and arch.decoder[-1].shape != arch.in_shape
    _box(ax, mid, top, ["output x_hat", ("reshaped to " if reshaped else "") + _fmt_shape(arch.in_shape)],
         _COLOURS["output"], bold=True)
    return fig


def _latent_lines(arch: Architecture) -> list[str]:
    if arch.quantiser:
        first = "latent z, before quantisation (edits act here)"
    elif arch.heads:
        first = "latent z = mu + exp(logvar / 2) · e,  e ~ N(0, I)"
    elif len(arch.encoder) > 1:
        first = f"latent z: the {len(arch.encoder)} encoder outputs concatenated"
    else:
        first = "latent z"
    ends = arch.heads[0][1] if arch.heads else arch.encoder[0] if len(arch.encoder) == 1 else []
    last = ends[-1].shape if ends else None
    shape = f" = {_fmt_shape(last)} flattened" if last is not None and len(last) > 1 else ""
    return [first, f"{arch.latent_dim:,} elements{shape}"]


def draw_diagram(model: Autoencoder, path: str | Path) -> Path:
    """Draw the architecture to ``path`` (PNG, SVG or PDF by its extension), written atomically."""
    from latentlab.io import save_figure

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in DIAGRAM_FORMATS:
        raise LatentlabError(f"{path}: expected a file name ending in .png, .svg or .pdf")
    return save_figure(diagram_figure(model), path, dpi=110)
