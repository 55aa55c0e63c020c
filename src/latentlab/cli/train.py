"""``latentlab train``: train an autoencoder on image data into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from latentlab.cli.common import command, console, parse_ints
from latentlab.errors import LatentlabError

if TYPE_CHECKING:  # the library is imported in the command bodies: `latentlab --help` needs no torch
    from latentlab.data.batches import BatchSpec

app = typer.Typer()


def model_config_from_options(kind: str | None, preset: str | None, in_shape: tuple[int, int, int],
                              value_range: tuple[float, float], **options: Any) -> Any:
    """Build the model config from ``--model KIND`` or ``--preset NAME`` plus option overrides."""
    from latentlab.models.presets import kind_config, preset_config

    if kind and preset:
        raise LatentlabError("--model and --preset: give one, not both")
    backbone = options.pop("backbone", None)
    if preset and backbone:
        raise LatentlabError(f"--backbone {backbone} with --preset {preset}: a preset is one architecture; "
                             f"use --model FAMILY --backbone {backbone}")
    out_act = "sigmoid" if tuple(value_range) == (0.0, 1.0) else "tanh"
    if options.get("recon_loss") == "bce" and out_act != "sigmoid":
        shown = ",".join(f"{v:g}" for v in value_range)
        raise LatentlabError(f"--recon-loss bce: expected --range 0,1 (bce compares values in 0..1), not {shown}")
    overrides = {"in_shape": tuple(in_shape), "out_activation": out_act, **options}
    if preset or not (kind or backbone):
        return preset_config(preset or "hw8-fcn", **overrides)
    return kind_config(kind or "ae", backbone=backbone, **overrides)


def batch_spec_from_options(crop: str | None, center_crop: int | None, resize: str | None,
                            value_range: str, noise: float) -> BatchSpec:
    from latentlab.data.batches import BatchSpec, parse_crop, parse_range, parse_size

    return BatchSpec(crop=parse_crop(crop) if crop else None, center_crop=center_crop,
                     resize=parse_size(resize) if resize else None, value_range=parse_range(value_range),
                     noise=noise)


def given_options(ctx: typer.Context, values: dict[str, Any]) -> dict[str, Any]:
    """The options the user typed (not left at their defaults), by parameter name."""
    sources = {name: ctx.get_parameter_source(name) for name in values}
    return {name: value for name, value in values.items()
            if sources[name] is not None and getattr(sources[name], "name", "") != "DEFAULT"}


def resume_given(ctx: typer.Context, values: dict[str, Any], rule: BatchSpec, model_options: dict[str, Any],
                 kind: str | None, preset: str | None, out: Path) -> dict[str, Any]:
    """What a ``--resume`` was told, in the run config's terms (see ``check_resume_options``)."""
    from latentlab.models.base import config_to_dict
    from latentlab.runs import read_config, rule_from_config

    typed = given_options(ctx, values)
    given: dict[str, Any] = {k: v for k, v in typed.items() if k in TRAIN_OPTIONS}
    if "data" in typed:
        given["data"] = typed["data"]
    if RULE_OPTIONS & typed.keys():
        given["rule"] = rule
    if MODEL_OPTIONS & typed.keys():
        config = read_config(out)
        recorded = rule_from_config(config, str(out))
        in_shape = tuple(config.get("model", {}).get("in_shape", ()))
        if kind or preset or model_options.get("backbone"):
            given["model"] = config_to_dict(model_config_from_options(kind, preset, in_shape, recorded.value_range,
                                                                      **model_options))
        else:  # options alone: the run's own model with them applied (a family option needs its family)
            from latentlab.models.presets import with_overrides
            from latentlab.models.registry import config_from_dict

            run_model = config_from_dict(config.get("model"), source=str(out))
            given["model"] = config_to_dict(with_overrides(run_model, {k: v for k, v in model_options.items()
                                                                       if k != "backbone"}, "the run's model"))
    return given


TRAIN_OPTIONS = {"batch_size", "lr", "optimizer", "weight_decay", "val_fraction", "patience", "seed", "precision",
                 "accelerator", "devices", "strategy", "num_nodes", "checkpoint_every", "lr_schedule", "warmup_steps",
                 "grad_clip", "ema", "accumulate", "budget", "deterministic"}
# the model families' own hyper-parameters (docs/models.md): option name = config field
FAMILY_OPTIONS = ("noise_std", "sparsity", "sparsity_weight", "contractive_weight", "mmd_weight", "codebook_size",
                  "code_dim", "commitment")
RULE_OPTIONS = {"crop", "center_crop", "resize", "value_range", "noise"}
MODEL_OPTIONS = {"model", "preset", "beta", "latent_dim", "hidden", "channels", "batchnorm", "activation",
                 "backbone", "recon_loss", *FAMILY_OPTIONS}


@command(app, "train")
def train(
    ctx: typer.Context,
    data: str = typer.Option("faces", "--data", help="data spec: npy:PATH, idx:DIR, folder:DIR, tar:PATH, faces, ..."),
    out: Path = typer.Option(..., "--out", help="run folder to write"),
    model: str | None = typer.Option(None, "--model", help="model family (ae, vae, beta-vae, denoising, sparse, "
                                     "contractive, beta-tcvae, wae, vq-vae; see `latentlab models`) or a kind "
                                     "such as vae-conv"),
    backbone: str | None = typer.Option(None, "--backbone", help="fcn, conv or resnet (residual conv, 64x64)"),
    recon_loss: str | None = typer.Option(None, "--recon-loss", help="mse (default), l1, bce (--range 0,1) or ssim"),
    noise_std: float | None = typer.Option(None, "--noise-std", help="denoising: std of the model's input "
                                           "corruption while training (default 0.1)"),
    sparsity: str | None = typer.Option(None, "--sparsity", help="sparse: kl (Ng, default) or l1"),
    sparsity_weight: float | None = typer.Option(None, "--sparsity-weight", help="sparse: penalty weight (3)"),
    contractive_weight: float | None = typer.Option(None, "--contractive-weight",
                                                    help="contractive: Jacobian penalty weight (0.1)"),
    mmd_weight: float | None = typer.Option(None, "--mmd-weight", help="wae: MMD weight lambda (10)"),
    codebook_size: int | None = typer.Option(None, "--codebook-size", help="vq-vae: codebook entries (512)"),
    code_dim: int | None = typer.Option(None, "--code-dim", help="vq-vae: elements per code vector"),
    commitment: float | None = typer.Option(None, "--commitment", help="vq-vae: commitment weight (0.25)"),
    preset: str | None = typer.Option(None, "--preset", help="a named architecture, e.g. hw8-fcn, hw8-conv, hw8-vae"),
    epochs: int | None = typer.Option(None, "--epochs", help="epochs (default 10, or as many as --budget allows); "
                                      "with --resume, a new total"),
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
    lr_schedule: str = typer.Option("constant", "--lr-schedule", help="constant, cosine, onecycle or plateau"),
    warmup_steps: int = typer.Option(0, "--warmup-steps", help="optimizer steps of linear lr warm-up"),
    grad_clip: float | None = typer.Option(None, "--grad-clip", help="max global gradient norm (logged unclipped)"),
    ema: float | None = typer.Option(None, "--ema", help="decay of a moving average of the weights, e.g. 0.999"),
    accumulate: int = typer.Option(1, "--accumulate", help="batches of --batch-size per optimizer step"),
    budget: str | None = typer.Option(None, "--budget", help="wall-clock training time: 90s, 10m, 2h"),
    deterministic: bool = typer.Option(False, "--deterministic", help="bit-identical runs (one CPU thread: slower)"),
    recipe: str | None = typer.Option(None, "--recipe", help="anomaly: a model, input rule and budget chosen for "
                                      "anomaly detection (docs/anomaly.md); typed options override it"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run folder"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    logger: str = typer.Option("csv", "--logger", help="csv (metrics.csv, steps.csv: always written) and/or "
                               "tensorboard (RUN/tensorboard/), comma-separated"),
) -> None:
    """Train an autoencoder and write a run folder (config, weights, metrics, loss curve, checkpoints)."""
    from latentlab.data.rule import load_prepared
    from latentlab.durations import parse_duration
    from latentlab.runs import LOSS_PLOT
    from latentlab.train.api import is_global_zero, resume_run, train_run
    from latentlab.train.trainer import TrainConfig
    from latentlab.viz.plots import LossPlot

    rule = batch_spec_from_options(crop, center_crop, resize, value_range, noise)
    options = {"latent_dim": latent_dim, "beta": beta, "batchnorm": batchnorm, "activation": activation,
               "hidden": tuple(parse_ints(hidden, "--hidden") or ()) or None,
               "channels": tuple(parse_ints(channels, "--channels") or ()) or None,
               "backbone": backbone, "recon_loss": recon_loss, "noise_std": noise_std, "sparsity": sparsity,
               "sparsity_weight": sparsity_weight, "contractive_weight": contractive_weight, "mmd_weight": mmd_weight,
               "codebook_size": codebook_size, "code_dim": code_dim, "commitment": commitment}
    from latentlab.train.loggers import logger_callbacks

    plot = [LossPlot(out / LOSS_PLOT), *logger_callbacks(logger, out)]  # --logger: not in the run config
    budget_s = parse_duration(budget, option="--budget") if budget is not None else None
    if resume:
        typed = {**locals(), "budget": budget_s}
        given = resume_given(ctx, typed, rule, options, model, preset, out) if out.is_dir() else {}
        resume_run(out, progress=not quiet, epochs=epochs, given=given, callbacks=plot)
        if is_global_zero():  # with --devices N, every process runs this command
            finish_recipe(out, None, progress=not quiet)
            console.print(f"run resumed and finished: [bold]{out}[/]")
            from latentlab.anomaly.recipe import load_recipe
            from latentlab.runs import read_config

            config = read_config(out)
            recorded = config.get("recipe")
            if isinstance(recorded, dict) and isinstance(recorded.get("name"), str):
                val_fraction = float(config.get("train", {}).get("val_fraction", 0.0) or 0.0)
                choose_recipe_score(out, load_recipe(recorded["name"]).score, val_fraction)
        return
    settings: dict[str, Any] = {
        "epochs": epochs if epochs is not None or budget_s else 10, "batch_size": batch_size, "lr": lr,
        "optimizer": optimizer, "weight_decay": weight_decay, "val_fraction": val_fraction, "patience": patience,
        "seed": seed, "precision": precision, "accelerator": accelerator, "devices": devices, "strategy": strategy,
        "num_nodes": num_nodes, "checkpoint_every": checkpoint_every, "lr_schedule": lr_schedule,
        "warmup_steps": warmup_steps, "grad_clip": grad_clip, "ema": ema, "accumulate": accumulate,
        "budget": budget_s, "deterministic": deterministic}
    found = None
    if recipe is not None:
        found, rule, settings = apply_recipe(ctx, recipe, locals(), rule, settings)
    cfg = TrainConfig(**settings)
    images = load_prepared(data, rule)
    if found is not None:
        model_config = found.model_config(images.input_shape, rule.value_range)
    else:
        model_config = model_config_from_options(model, preset, images.input_shape, rule.value_range, **options)
    extra = {"recipe": {"name": found.name, "transforms": found.transforms}} if found is not None else None
    trained = train_run(model_config, images, rule, cfg, out, overwrite=overwrite, progress=not quiet,
                        callbacks=plot, extra=extra)
    if not is_global_zero():
        return
    console.print(f"{trained.describe()}\nrun written to [bold]{out}[/]")
    if trained.is_variational:  # collapsed elements get a warning (latentlab.latent imports scikit-learn)
        from latentlab.latent.active import collapse_line

        if (collapsed := collapse_line(out, images)) is not None:
            console.print(f"[yellow]warning:[/] {collapsed}", highlight=False, soft_wrap=True)
    if found is not None:
        finish_recipe(out, images, progress=not quiet)
    if found is not None:
        choose_recipe_score(out, found.score, cfg.val_fraction)


def choose_recipe_score(out: Path, score: str, val_fraction: float) -> None:
    """A recipe run that scores with ``auto`` chooses now (a resumed one too), from its own
    validation images; the choice is stored in the run (a stored one is reused)."""
    if score != "auto" or val_fraction <= 0:
        return
    from latentlab.anomaly.auto import resolve_auto

    choice = resolve_auto(out)
    console.print(choice.sentence, highlight=False, soft_wrap=True)


def finish_recipe(out: Path, images: Any, *, progress: bool) -> None:
    """Train the transform classifier the run's recipe asks for, unless the run has one."""
    from latentlab.anomaly.recipe import finish_run

    seconds = finish_run(out, images, progress=progress)
    if seconds is not None:
        console.print(f"transform classifier trained in {seconds:.0f} s ({out / 'transforms.json'})", highlight=False)


def apply_recipe(ctx: typer.Context, name: str, values: dict[str, Any], rule: BatchSpec,
                 settings: dict[str, Any]) -> tuple[Any, BatchSpec, dict[str, Any]]:
    """The recipe ``name`` under the options the user typed: a typed training or input option
    wins over the recipe's value; model options are refused (the recipe is the model)."""
    import dataclasses

    from latentlab.anomaly.recipe import load_recipe

    found = load_recipe(name)
    typed = given_options(ctx, {k: values[k] for k in TRAIN_OPTIONS | RULE_OPTIONS | MODEL_OPTIONS | {"epochs"}})
    clash = sorted(MODEL_OPTIONS & typed.keys())
    if clash:
        flags = ", ".join("--" + k.replace("_", "-") for k in clash)
        raise LatentlabError(f"--recipe {name} chooses the model; drop {flags} (or train without --recipe)")
    rule = dataclasses.replace(rule, **{k: v for k, v in found.rule.items() if k not in typed})
    recipe_train = found.train_overrides()
    if "budget" in typed and "epochs" not in typed:
        recipe_train.pop("epochs", None)  # a typed budget decides how long, as without a recipe
    settings = {**settings, **{k: v for k, v in recipe_train.items() if k not in typed}}
    return found, rule, settings
