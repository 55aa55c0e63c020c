"""``latentlab compare-ae-vae``: a plain autoencoder beside a VAE, the textbook claims as evidence."""

from __future__ import annotations

from pathlib import Path

import typer

from latentlab.cli.common import check_out_file, command, console
from latentlab.errors import LatentlabError

app = typer.Typer()


@command(app, "compare-ae-vae")
def compare_ae_vae(
    data: str | None = typer.Option(None, "--data", help="data spec, e.g. faces:2000 (with --ae/--vae the "
                                                         "default is the AE run's training data)"),
    out: Path = typer.Option(..., "--out", help="folder for compare.html, its PNGs and the runs it trains"),
    ae: Path | None = typer.Option(None, "--ae", help="a trained plain-autoencoder run (with --vae)"),
    vae: Path | None = typer.Option(None, "--vae", help="a trained VAE run (with --ae)"),
    epochs: int = typer.Option(8, "--epochs", help="epochs for each model when training"),
    latent_dim: int = typer.Option(8, "--latent-dim", help="latent size of both models when training"),
    backbone: str = typer.Option("fcn", "--backbone", help="fcn or conv, when training"),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the page and runs already in --out"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
) -> None:
    """A plain AE beside a VAE: the textbook claims measured, on one HTML page.

    Trains both with the same backbone and latent size on the same data (or takes --ae/--vae runs),
    then writes samples, interpolations, reconstructions, reconstruction error, sharpness and a
    paragraph saying what the numbers show.
    """
    from latentlab.compare import compare_runs, pair_configs, summary_paragraph, train_pair
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import load_prepared
    from latentlab.runs import open_run
    from latentlab.viz.compare_page import PAGE, write_page

    if (ae is None) != (vae is None):
        raise LatentlabError("--ae and --vae: give both run folders, or neither to train a new pair")
    if out.exists() and not out.is_dir():
        raise LatentlabError(f"--out {out}: exists and is not a folder")
    check_out_file(out / PAGE, overwrite)
    images = None
    if ae is None or vae is None:
        if not data:
            raise LatentlabError("--data: needed to train the pair (e.g. --data faces:2000); "
                                 "or give --ae RUN --vae RUN")
        images = load_prepared(data, BatchSpec())
        pair_configs(images.image_shape, latent_dim, backbone)  # option errors before any training
        console.print(f"training an AE and a VAE ({backbone}, latent {latent_dim}, {epochs} epochs) "
                      f"on {data}",
                      highlight=False)
        ae, vae = train_pair(images, out, epochs=epochs, latent_dim=latent_dim, backbone=backbone, seed=seed,
                             overwrite=overwrite, progress=not quiet)
    ae_run, vae_run = open_run(ae), open_run(vae)
    comparison = compare_runs(ae_run, vae_run, images if images is not None else ae_run.data(data), seed=seed)
    page = write_page(comparison, out)
    console.print(summary_paragraph(comparison), highlight=False)
    console.print(f"page written to {page.resolve().as_uri()}  ({out / PAGE})", highlight=False)
