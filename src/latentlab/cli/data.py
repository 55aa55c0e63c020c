"""``latentlab data``: what a data source holds, a grid of samples, and conversion to the course's .npy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from latentlab.cli.common import OVERWRITE, check_out_file, command, console

if TYPE_CHECKING:
    from latentlab.data.summary import DataSummary

app = typer.Typer()
SHOWN_LABELS = 12  # label counts printed (the rest summed)


@command(app, "data")
def data_cmd(
    spec: str = typer.Argument(..., help="data spec: npy:PATH, idx:DIR, folder:DIR, tar:PATH, celeba:PATH, faces, ..."),
    out: Path | None = typer.Option(None, "--out", help="write a grid of sample images (PNG)"),
    n: int = typer.Option(64, "--n", help="sample images in the grid"),
    to: str | None = typer.Option(None, "--to", help="convert to the course's format: npy:PATH (uint8 N,H,W,C)"),
    resize: str | None = typer.Option(None, "--resize", help="with --to: size or height,width of the images written"),
    every: bool = typer.Option(False, "--all", help="a tar of images: value range and mean over every image "
                               "(decodes all of them, cached), not a sample of 256"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Count, image shape, dtype, value range, label / factor columns; a sample grid; conversion to .npy."""
    from latentlab.data.summary import npy_target

    target = check_out_file(npy_target(to), overwrite) if to else None
    if out is not None:
        check_out_file(out, overwrite)
    size = None
    if resize is not None:
        from latentlab.data.batches import parse_size

        size = parse_size(resize)
    from latentlab.data.summary import convert, sample_grid, summarize
    from latentlab.progress import TerminalBar

    if target is not None:  # decoding (image files) and writing each show a bar on a terminal
        summary, data = convert(spec, target, resize=size, progress=TerminalBar("writing"))
    else:
        summary, data = summarize(spec, headers=not every)
    _print(summary)
    if out is not None:
        from PIL import Image

        from latentlab.io import atomic_path

        with atomic_path(out) as tmp:
            Image.fromarray(sample_grid(data, n)).save(tmp, format="PNG")
        console.print(f"samples: {out}", highlight=False, soft_wrap=True)
    if target is not None:
        n, h, w, c = data.images.shape
        h, w = size or (h, w)
        console.print(f"wrote {target} (uint8 {n} x {h} x {w} x {c})", highlight=False, soft_wrap=True)


def _print(s: DataSummary) -> None:
    h, w, c = s.shape
    console.print(f"[bold]{s.spec}[/]", highlight=False, soft_wrap=True)
    console.print(f"  images       {s.count:,}", highlight=False)
    console.print(f"  image shape  {h} x {w} x {c} (H x W x C)", highlight=False)
    console.print(f"  dtype        {s.dtype}", highlight=False)
    sampled = f" (from {s.sampled} sampled images; --all for every image)" if s.sampled is not None else ""
    console.print(f"  value range  {s.value_range[0]}..{s.value_range[1]}, mean per channel "
                  f"{', '.join(f'{m:.1f}' for m in s.mean)}{sampled}", highlight=False, soft_wrap=True)
    if s.labels:
        items = list(s.labels.items())
        shown = ", ".join(f"{k}: {v}" for k, v in items[:SHOWN_LABELS])
        rest = items[SHOWN_LABELS:]
        more = f", ... {len(rest)} more ({sum(v for _, v in rest)} images)" if rest else ""
        console.print(f"  labels       {len(items)} classes: {shown}{more}", highlight=False, soft_wrap=True)
    else:
        console.print("  labels       none", highlight=False)
    for name, (lo, mean, hi) in s.factors.items():
        console.print(f"  factor       {name}: {lo:.3g}..{hi:.3g}, mean {mean:.3g}", highlight=False)

