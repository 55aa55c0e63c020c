"""``latentlab demo``: the whole job in under a minute on built-in data.

Trains a fully connected autoencoder on generated faces, then writes the architecture table,
the loss curve, the course's own latent edits (element 0 times 3 and divided by 3, element 2
times 3 and divided by 3) and the run's report page (``report.html``: everything on one offline
page, see :mod:`latentlab.report`) into a new run folder whose name it prints at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from latentlab.cli.common import command, console

app = typer.Typer()

COURSE_EDITS = ["z[0]*=3", "z[0]/=3", "z[2]*=3", "z[2]/=3"]


def run_demo(out: Path, n_images: int = 2400, epochs: int = 12, progress: bool = True,
             report: bool = True, overwrite: bool = False) -> Path:
    """Train the demo run into ``out`` (a new or empty folder, unless ``overwrite``) and write its files."""
    from latentlab.data.batches import BatchSpec
    from latentlab.data.sources import load_source
    from latentlab.io import write_text
    from latentlab.latent.apply import edit_images
    from latentlab.latent.edits import parse_edits
    from latentlab.models import FCNConfig
    from latentlab.outputs import refuse_full_folder
    from latentlab.runs import LOSS_PLOT, open_run
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig
    from latentlab.viz.architecture import summary_table
    from latentlab.viz.edits import edit_figure

    refuse_full_folder(out, overwrite)  # before any data is made
    data = load_source(f"faces:{n_images}")
    model_config = FCNConfig(in_shape=data.image_shape, hidden=(256, 64), latent_dim=8)
    batch = BatchSpec(value_range=(-1.0, 1.0))
    train = TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, val_fraction=0.1, seed=0)
    from latentlab.viz.plots import LossPlot

    model = train_run(model_config, data, batch, train, out, overwrite=overwrite, progress=progress,
                      callbacks=[LossPlot(out / LOSS_PLOT)])
    write_text(out / "architecture.txt", summary_table(model) + "\n")
    run = open_run(out)
    rows = [0, 1, 2, 3]
    result = edit_images(run.model, run.inputs(data, rows), parse_edits(COURSE_EDITS))
    edit_figure(result, rows, run.value_range, out / "edits.png")
    if report:
        from latentlab.report import REPORT, write_report

        write_report(out, out=out / REPORT)
    return out


@command(app, "demo")
def demo(
    out: Path | None = typer.Option(None, "--out", help="run folder (default: runs/demo-<time>)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the run in an existing --out folder"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Train a small fully connected autoencoder on generated faces and show what it learned."""
    t0 = time.perf_counter()
    out = out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    run_demo(out, progress=not quiet, overwrite=overwrite)
    console.print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s. Run folder: [bold]{out}[/]")
    for name, what in (("architecture.txt", "layers, output shapes, parameters"),
                       ("loss.png", "training and validation loss"),
                       ("edits.png", "original | reconstruction | " + " | ".join(COURSE_EDITS)),
                       ("report.html", "all of it on one page, with measured edits, traversal and samples")):
        console.print(f"  {out / name}  ({what})", highlight=False)
    console.print(f"\nopen the report: {(out / 'report.html').resolve().as_uri()}", highlight=False,
                  soft_wrap=True)
