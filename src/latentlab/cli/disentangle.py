"""``latentlab disentanglement`` and ``latentlab sweep``: what a latent space learned, and how big
it should be."""

from __future__ import annotations

from pathlib import Path

import typer

from latentlab.cli.common import OVERWRITE, command, console

app = typer.Typer()


@command(app, "disentanglement")
def disentanglement(
    run: Path = typer.Argument(..., help="a run folder"),
    data: str = typer.Option("shapes", "--data", help="data with known factors: shapes, faces, or a set with "
                             "named factor columns"),
    out: Path | None = typer.Option(None, "--out", help="the JSON file (default RUN/disentanglement.json)"),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(64, "--batch-size", help="images per BetaVAE / FactorVAE batch"),
    num_train: int = typer.Option(10_000, "--num-train", help="training points per score"),
    num_eval: int = typer.Option(5_000, "--num-eval", help="held-out points per score"),
    estimator: str = typer.Option("forest", "--dci-estimator", help="forest (fast) or gbt (disentanglement_lib's)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    overwrite: bool = OVERWRITE,
) -> None:
    """BetaVAE, FactorVAE, MIG, SAP and DCI scores of RUN's code; printed and saved as JSON."""
    from latentlab.io import write_json
    from latentlab.metrics.evaluate import disentanglement as score
    from latentlab.outputs import refuse_existing
    from latentlab.viz.scores import scores_table

    path = out or run / "disentanglement.json"
    refuse_existing([path], overwrite)
    result = score(run, data, seed=seed, batch_size=batch_size, num_train=num_train, num_eval=num_eval,
                   num_variance_estimate=num_train, estimator=estimator, progress=not quiet)
    console.print(scores_table(result), highlight=False)
    if "images_encoded" in result["details"]:
        first = result["seconds"].get("encoding")
        how = f" (every factor combination, first: {first:.0f} s)" if first is not None else ""
        console.print(f"{result['details']['images_encoded']:,} images encoded{how}; "
                      f"{result['total_seconds']:.0f} s in all", highlight=False)
    write_json(path, result)
    console.print(f"written to {path}")


@command(app, "sweep")
def sweep(
    latent_dim: str = typer.Option("2,4,8,16,32,64", "--latent-dim", help="latent sizes, e.g. 2,4,8,16,32,64"),
    model: str = typer.Option("ae", "--model", help="model kind, e.g. fcn, conv, vae-conv"),
    data: str = typer.Option(..., "--data", help="data spec"),
    budget: str = typer.Option("5m", "--budget", help="training time per size, e.g. 90s, 5m"),
    out: Path = typer.Option(..., "--out", help="the sweep folder: one run per size, sweep.csv/png/json"),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(64, "--batch-size"),
    value_range: str = typer.Option("-1,1", "--range", help="pixel value range LO,HI for the model input"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Train one model per latent size, then compare held-out error (beside PCA) and active units."""
    from latentlab.data.batches import BatchSpec, parse_range
    from latentlab.durations import parse_duration
    from latentlab.metrics.sweep import FIGURE_NAME, parse_sizes
    from latentlab.metrics.sweep import sweep as run_sweep

    sizes = parse_sizes(latent_dim)
    seconds = parse_duration(budget, option="--budget")
    result = run_sweep(sizes, model, data, seconds, out, rule=BatchSpec(value_range=parse_range(value_range)),
                       seed=seed, batch_size=batch_size, progress=not quiet, overwrite=overwrite,
                       log=lambda line: console.print(line, highlight=False))
    console.print(f"suggested latent size: [bold]{result.suggested}[/] ({result.rule})")
    console.print(f"figure and table written to {out / FIGURE_NAME} and {out / 'sweep.csv'}")
