"""``latentlab compare``: N model families side by side; ``latentlab compare-ae-vae``: its two-model case."""

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


@command(app, "compare")
def compare(
    models: str | None = typer.Option(None, "--models", help="families to train, e.g. ae,vae,beta-vae,vq-vae,wae "
                                                             "(`latentlab models` lists them)"),
    runs: str | None = typer.Option(None, "--runs", help="existing run folders to compare instead, DIR1,DIR2,..."),
    data: str | None = typer.Option(None, "--data", help="data spec (with --runs the default is the first "
                                                         "run's training data)"),
    budget: str | None = typer.Option(None, "--budget", help="wall-clock training time per model, e.g. 10m"),
    epochs: int | None = typer.Option(None, "--epochs", help="at most this many epochs per model"),
    backbone: str = typer.Option("conv", "--backbone", help="fcn, conv or resnet: the same for every family"),
    latent_dim: int = typer.Option(16, "--latent-dim", help="latent elements of every model"),
    hidden: str | None = typer.Option(None, "--hidden", help="fcn backbone widths, e.g. 256,64"),
    channels: str | None = typer.Option(None, "--channels", help="conv backbone widths, e.g. 32,64,128"),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr"),
    precision: str = typer.Option("32", "--precision", help="32 or bf16-mixed"),
    seed: int = typer.Option(0, "--seed"),
    samples: int = typer.Option(128, "--samples", help="decoded samples per model and sample source"),
    out: Path = typer.Option(..., "--out", help="folder for compare.html, compare.csv and one run per family"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the page, and retrain runs in --out made "
                                                              "with other settings"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
) -> None:
    """N autoencoder families side by side: same backbone, latent size, data and budget.

    Trains each family into OUT/FAMILY (a complete run there is reused, an interrupted one
    resumed) or takes --runs, then writes one self-contained HTML page and a CSV: reconstruction
    MSE/PSNR/SSIM, sharpness, sample realism and coverage, interpolations, active units, KL per
    element, planted-anomaly ROC AUC, parameters, training time, and each family's textbook claims
    with a "holds here?" verdict.
    """
    from latentlab.cli.common import parse_ints
    from latentlab.compare_claims import summary
    from latentlab.compare_many import Plan, parse_families, run_comparison
    from latentlab.durations import parse_duration
    from latentlab.viz.compare_page import CSV, PAGE, write_many_page

    if (models is None) == (runs is None):
        raise LatentlabError("--models or --runs: give one (e.g. --models ae,vae --data faces:2000 --budget 2m)")
    if out.exists() and not out.is_dir():
        raise LatentlabError(f"--out {out}: exists and is not a folder")
    check_out_file(out / PAGE, overwrite)
    check_out_file(out / CSV, overwrite)
    seconds = parse_duration(budget, option="--budget") if budget is not None else None
    plan = None
    if models is not None:
        if seconds is None and epochs is None:
            raise LatentlabError("--budget: needed to train the models (e.g. --budget 10m), or --epochs")
        plan = Plan(families=parse_families(models), backbone=backbone, latent_dim=latent_dim, budget=seconds,
                    epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, precision=precision,
                    hidden=tuple(parse_ints(hidden, "--hidden") or ()) or None,
                    channels=tuple(parse_ints(channels, "--channels") or ()) or None)
    folders = [Path(p.strip()) for p in runs.split(",") if p.strip()] if runs is not None else None
    comparison = run_comparison(out, data, plan=plan, runs=folders, n_samples=samples, overwrite=overwrite,
                                progress=not quiet, say=lambda text: console.print(text, highlight=False))
    page = write_many_page(comparison, out)
    console.print(summary(comparison), highlight=False)
    console.print(f"page written to {page.resolve().as_uri()}  ({out / PAGE}, {out / CSV})", highlight=False)
