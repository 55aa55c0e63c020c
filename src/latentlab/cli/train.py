"""``latentlab train``: train an autoencoder on image data into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from latentlab.cli.common import command, console, parse_ints
from latentlab.data.batches import BatchSpec, parse_crop, parse_range, parse_size
from latentlab.data.imageset import ImageSet
from latentlab.errors import LatentlabError
from latentlab.models.presets import kind_config, preset_config

app = typer.Typer()


def model_config_from_options(kind: str | None, preset: str | None, in_shape: tuple[int, int, int],
                              value_range: tuple[float, float], **options: Any) -> Any:
    """Build the model config from ``--model KIND`` or ``--preset NAME`` plus option overrides."""
    if kind and preset:
        raise LatentlabError("--model and --preset: give one, not both")
    out_act = "sigmoid" if tuple(value_range) == (0.0, 1.0) else "tanh"
    overrides = {"in_shape": tuple(in_shape), "out_activation": out_act, **options}
    if preset or not kind:
        return preset_config(preset or "hw8-fcn", **overrides)
    return kind_config(kind, **overrides)


def batch_spec_from_options(crop: str | None, center_crop: int | None, resize: str | None,
                            value_range: str, noise: float) -> BatchSpec:
    return BatchSpec(crop=parse_crop(crop) if crop else None, center_crop=center_crop,
                     resize=parse_size(resize) if resize else None, value_range=parse_range(value_range),
                     noise=noise)


def load_training_data(spec: str, batch: BatchSpec) -> ImageSet:
    from latentlab.data.sources import load_source

    # folders and tars are decoded image by image: resize while decoding (mixed sizes need it)
    at_load = batch.resize if spec.startswith(("folder:", "tar:")) and batch.crop is None \
        and batch.center_crop is None else None
    return load_source(spec, resize=at_load)


@command(app, "train")
def train(
    data: str = typer.Option("faces", "--data", help="data spec: npy:PATH, idx:DIR, folder:DIR, tar:PATH, faces, ..."),
    out: Path = typer.Option(..., "--out", help="run folder to write"),
    model: str | None = typer.Option(None, "--model", help="model kind: fcn, multi-fcn, conv, vae-fcn, vae-conv"),
    preset: str | None = typer.Option(None, "--preset", help="a named architecture, e.g. hw8-fcn, hw8-conv, hw8-vae"),
    epochs: int | None = typer.Option(None, "--epochs", help="epochs (default 10); with --resume, a new total"),
    batch_size: int = typer.Option(128, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr"),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam, adamw or sgd"),
    weight_decay: float = typer.Option(0.0, "--weight-decay"),
    val_fraction: float = typer.Option(0.1, "--val-fraction"),
    patience: int | None = typer.Option(None, "--patience", help="stop after this many epochs without improvement"),
    seed: int = typer.Option(0, "--seed"),
    precision: str = typer.Option("32", "--precision", help="32 or bf16-mixed"),
    accelerator: str = typer.Option("cpu", "--accelerator", help="cpu, cuda, auto"),
    devices: int = typer.Option(1, "--devices"),
    strategy: str = typer.Option("auto", "--strategy", help="auto, ddp"),
    num_nodes: int = typer.Option(1, "--num-nodes"),
    crop: str | None = typer.Option(None, "--crop", help="top,left,height,width"),
    center_crop: int | None = typer.Option(None, "--center-crop"),
    resize: str | None = typer.Option(None, "--resize", help="size or height,width"),
    value_range: str = typer.Option("-1,1", "--range", help="-1,1 (Tanh output) or 0,1 (Sigmoid)"),
    noise: float = typer.Option(0.0, "--noise", help="input noise std for a denoising autoencoder"),
    beta: float | None = typer.Option(None, "--beta", help="KL weight of a VAE"),
    latent_dim: int | None = typer.Option(None, "--latent-dim"),
    hidden: str | None = typer.Option(None, "--hidden", help="hidden layer sizes, e.g. 2048,512,128"),
    channels: str | None = typer.Option(None, "--channels", help="conv widths, e.g. 12,24,48"),
    batchnorm: bool | None = typer.Option(None, "--batchnorm/--no-batchnorm"),
    activation: str | None = typer.Option(None, "--activation"),
    checkpoint_every: int = typer.Option(0, "--checkpoint-every", help="steps between checkpoints (0: each epoch)"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run folder"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Train an autoencoder and write a run folder (config, weights, metrics, loss curve, checkpoints)."""
    from latentlab.train.api import is_global_zero, resume_run, train_run
    from latentlab.train.trainer import TrainConfig

    if resume:
        resume_run(out, progress=not quiet, epochs=epochs)
        if is_global_zero():  # with --devices N, every process runs this command
            console.print(f"run resumed and finished: [bold]{out}[/]")
        return
    batch = batch_spec_from_options(crop, center_crop, resize, value_range, noise)
    cfg = TrainConfig(epochs=10 if epochs is None else epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                      weight_decay=weight_decay, val_fraction=val_fraction, patience=patience, seed=seed,
                      precision=precision, accelerator=accelerator, devices=devices, strategy=strategy,
                      num_nodes=num_nodes, checkpoint_every=checkpoint_every)
    images = load_training_data(data, batch)
    options = {"latent_dim": latent_dim, "beta": beta, "batchnorm": batchnorm, "activation": activation,
               "hidden": tuple(parse_ints(hidden, "--hidden") or ()) or None,
               "channels": tuple(parse_ints(channels, "--channels") or ()) or None}
    model_config = model_config_from_options(model, preset, batch.output_shape(images.image_shape),
                                             batch.value_range, **options)
    trained = train_run(model_config, images, batch, cfg, out, overwrite=overwrite, progress=not quiet)
    if is_global_zero():
        console.print(f"{trained.describe()}\nrun written to [bold]{out}[/]")
