"""``latentlab score``, ``latentlab evaluate`` and ``latentlab oneclass``: anomaly detection by reconstruction."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from latentlab.cli.common import command, console
from latentlab.errors import LatentlabError

app = typer.Typer()

SCORE_HELP = ("auto (the score the run chose for itself from its own training data), mse, course, ssim, "
              "elbo (VAE), mahalanobis, gmm, features, transforms, transform-features (runs with a transform "
              "classifier: --recipe anomaly) or combined")
COMBINE_HELP = "how a combined score joins its standardised parts: sum or max"
PARTS_HELP = "what a combined score mixes; |mse| or |ssim| (quoted) for a two-sided part"


def say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def _parts(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.replace(" ", "").split(",") if p)


@command(app, "score")
def score_cmd(
    run: Path = typer.Argument(..., help="a run folder"),
    data: str = typer.Option(..., "--data", help="images to score, e.g. npy:testingset.npy"),
    out: Path = typer.Option(Path("prediction.csv"), "--out", help="CSV to write: ID,score (IDs from 0)"),
    score: str = typer.Option("auto", "--score", help=SCORE_HELP),
    parts: str = typer.Option("mse,mahalanobis", "--parts", help=PARTS_HELP),
    combine: str = typer.Option("sum", "--combine", help=COMBINE_HELP),
    train_data: str | None = typer.Option(None, "--train-data",
                                          help="normal images to fit latent/combined scores on (default: the run's)"),
    train_where: str | None = typer.Option(None, "--train-where",
                                           help="fit on the training rows that match, e.g. 'label==3'"),
    fit_limit: int = typer.Option(5000, "--fit-limit", help="at most this many training images to fit on"),
    components: int = typer.Option(8, "--components", help="Gaussian components of a gmm score"),
    labels_out: Path | None = typer.Option(None, "--labels-out",
                                           help="also write 0/1 predictions (ID,label; 1 = anomaly) to this CSV"),
    contamination: float = typer.Option(0.05, "--contamination",
                                        help="expected anomaly fraction: the threshold of --labels-out"),
    batch_size: int = typer.Option(256, "--batch-size"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing --out"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Write the course's Kaggle file: one anomaly score per image (higher = more anomalous)."""
    from latentlab.anomaly.evaluate import score_run

    result = score_run(run, data, out, score=score, parts=_parts(parts), combine=combine, train_data=train_data,
                       train_where=train_where, fit_limit=fit_limit, n_components=components,
                       contamination=contamination, labels_out=labels_out, batch_size=batch_size,
                       progress=not quiet, overwrite=overwrite)
    say(f"{result.n} scores ({result.score}) written to {out}")
    if result.choice is not None:
        say(result.choice.sentence)
    if result.labels_out is not None:
        say(f"0/1 predictions written to {result.labels_out}: {result.flagged} of {result.n} flagged (score > "
            f"{result.threshold:.6g}, {result.threshold_from})")


@command(app, "evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="a run folder"),
    data: str = typer.Option(..., "--data", help="labelled images to evaluate on"),
    labels: str = typer.Option(..., "--labels",
                               help="0/1 per image (1 = anomaly): a .npy/.csv/.txt file, or a filter like 'label!=3'"),
    score: str = typer.Option("auto", "--score", help=SCORE_HELP),
    parts: str = typer.Option("mse,mahalanobis", "--parts", help=PARTS_HELP),
    combine: str = typer.Option("sum", "--combine", help=COMBINE_HELP),
    train_data: str | None = typer.Option(None, "--train-data",
                                          help="normal images to fit on and set the threshold (default: the run's)"),
    train_where: str | None = typer.Option(None, "--train-where",
                                           help="fit on the training rows that match, e.g. 'label==3'"),
    fit_limit: int = typer.Option(5000, "--fit-limit", help="at most this many training images to fit on"),
    contamination: float = typer.Option(0.05, "--contamination",
                                        help="expected anomaly fraction: the threshold is this quantile of the "
                                             "held-out normal images' scores"),
    k: int = typer.Option(8, "--k", help="how many most and least anomalous images to show"),
    out_dir: Path = typer.Option(Path("."), "--out-dir", help="folder for the figures"),
    prefix: str = typer.Option("", "--prefix", help="prefix of the figure file names"),
    components: int = typer.Option(8, "--components", help="Gaussian components of a gmm score"),
    batch_size: int = typer.Option(256, "--batch-size"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing figures"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """ROC AUC and PR AUC against labels; precision, recall and F1 at the threshold set without
    labels and at the F1-best one; ROC curve, score histogram, trade-off and the extreme images."""
    from latentlab.anomaly.evaluate import evaluate_run

    result = evaluate_run(run, data, labels, out_dir, score=score, parts=_parts(parts), combine=combine,
                          train_data=train_data, train_where=train_where, fit_limit=fit_limit,
                          contamination=contamination, k=k, prefix=prefix, n_components=components,
                          batch_size=batch_size, progress=not quiet, overwrite=overwrite)
    e = result.evaluation
    say(f"{e.n} images, {e.n_anomalies} anomalous; score {result.score}")
    if result.choice is not None:
        say(result.choice.sentence)
    say(f"ROC AUC {e.roc_auc:.4f}")
    say(f"PR AUC  {e.pr_auc:.4f}")
    say(f"threshold {e.threshold:.6g} without labels ({result.threshold_from}): "
        f"precision {e.precision:.3f}, recall {e.recall:.3f}, F1 {e.f1:.3f}")
    if e.best is not None:
        b = e.best
        say(f"threshold {b.threshold:.6g} with the best F1 (chosen with the labels): "
            f"precision {b.precision:.3f}, recall {b.recall:.3f}, F1 {b.f1:.3f}")
    say("figures: " + ", ".join(str(p) for p in result.files))


@command(app, "oneclass")
def oneclass_cmd(
    data: str = typer.Option(..., "--data", help="labelled data with a test split: idx:DIR, mnist, fashion-mnist"),
    normal: str = typer.Option(..., "--normal", help="the normal class (e.g. 3), several (0,5) or all"),
    config: Path | None = typer.Option(None, "--config",
                                       help="protocol config (default: latentlab/configs/oneclass.json)"),
    epochs: int | None = typer.Option(None, "--epochs", help="override the config's epochs (not the fixed protocol)"),
    workers: int = typer.Option(1, "--workers", help="classes trained at once, one process and thread each"),
    out: Path | None = typer.Option(None, "--out", help="keep one run folder per class here"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing --out folder"),
    quiet: bool = typer.Option(False, "--quiet", help="no training progress bars"),
) -> None:
    """One-class protocol: train on one class's training images, score the whole test split."""
    from latentlab.anomaly.oneclass import load_config, run_oneclass

    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise LatentlabError(f"{out}: exists and is not empty; pass --overwrite to replace the run folders in it")
    cfg = load_config(config)
    table = Table(title=f"one-class ROC AUC, {data} ({cfg.score} score)", title_justify="left")
    for name in ("normal", "ROC AUC", "PR AUC", "parts alone", "train s", "score s"):
        table.add_column(name, justify="right")

    def show(res) -> None:  # type: ignore[no-untyped-def]
        alone = ", ".join(f"{k} {v:.4f}" for k, v in res.part_auc.items())
        console.print(f"class {res.normal}: ROC AUC {res.roc_auc:.4f} ({alone}); "
                      f"train {res.train_seconds:.1f}s, score {res.score_seconds:.1f}s",
                      highlight=False, soft_wrap=True)
        table.add_row(str(res.normal), f"{res.roc_auc:.4f}", f"{res.pr_auc:.4f}", alone,
                      f"{res.train_seconds:.1f}", f"{res.score_seconds:.1f}")

    t0 = time.perf_counter()
    results = run_oneclass(data, normal, cfg, out, progress=not quiet and workers == 1, epochs=epochs,
                           workers=workers, on_result=show)
    mean = sum(r.roc_auc for r in results) / len(results)
    table.add_row("mean", f"{mean:.4f}", "", "", "", "")
    console.print(table)
    console.print(f"{len(results)} classes in {time.perf_counter() - t0:.0f} s wall clock "
                  f"({workers} worker{'s' if workers > 1 else ''})", highlight=False, soft_wrap=True)

