"""N model families side by side: train each with the same backbone, latent size, data, split and
wall-clock budget (or take existing runs), then measure every one on the same held-out images.

A *family* is a model kind without its backbone: the registry's ``fcn`` and ``conv`` are the
family ``ae``, ``vae-fcn`` and ``vae-conv`` the family ``vae``, and a kind ``sparse-conv`` (or a
kind ``sparse`` whose config has a ``backbone`` field) the family ``sparse``. Families are read
from :data:`latentlab.models.registry.MODELS`, so every kind registered there can be compared.

``DIR/<family>/`` is each family's run folder. A second ``compare`` into the same ``DIR`` reuses
a complete run of the same settings and resumes an interrupted one
(:func:`latentlab.train.api.resume_run`); a run folder of other settings is refused, or retrained
with ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from latentlab.compare import ModelEvidence, default_channels, evaluate, evaluation_rows, nearest_distance, to_unit
from latentlab.compare_measures import (
    active_units,
    code_sensitivity,
    knn_precision_recall,
    noisy_psnr,
    planted_anomaly_auc,
    posterior_means,
    psnr,
    ssim,
)
from latentlab.errors import LatentlabError
from latentlab.runs import COMPLETE, Run

BACKBONES = ("fcn", "conv", "resnet")
DEFAULT_HIDDEN = (256, 64)  # the fcn backbone's hidden widths unless given


# ---------------------------------------------------------------- families in the registry


def family_of(kind: str) -> str:
    """The family of a registry kind: ``conv`` -> ``ae``, ``vae-conv`` -> ``vae``, ``sparse`` -> ``sparse``."""
    if kind in BACKBONES:
        return "ae"
    backbone = backbone_of(kind)
    return kind[: -len(backbone) - 1] if backbone else kind


def backbone_of(kind: str) -> str | None:
    """The backbone a kind's name fixes (``vae-fcn`` -> ``fcn``), or None when its config chooses."""
    if kind in BACKBONES:
        return kind
    return next((b for b in BACKBONES if kind.endswith("-" + b)), None)


def known_families() -> list[str]:
    from latentlab.models.registry import MODELS

    return list(dict.fromkeys(family_of(k) for k in MODELS))


def family_kinds(family: str) -> list[str]:
    from latentlab.models.registry import MODELS

    return [k for k in MODELS if family_of(k) == family]


def _fields(kind: str) -> set[str]:
    from latentlab.models.registry import config_class

    return {f.name for f in dataclasses.fields(config_class(kind))}


def family_config(family: str, backbone: str, in_shape: tuple[int, int, int], latent_dim: int, *,
                  hidden: tuple[int, ...] | None = None, channels: tuple[int, ...] | None = None) -> Any:
    """The config of ``family`` on ``backbone`` with this input shape and latent size (the same
    backbone widths for every family: ``hidden`` for fcn, ``channels`` for conv)."""
    from latentlab.models.presets import kind_config

    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise LatentlabError(f"--latent-dim {latent_dim}: expected a positive integer")
    if backbone not in BACKBONES:
        raise LatentlabError(f"--backbone {backbone}: expected one of {', '.join(BACKBONES)}")
    kinds = family_kinds(family)
    if not kinds:
        raise LatentlabError(f"--models {family}: unknown family; expected one of {', '.join(known_families())}")
    named = [k for k in kinds if backbone_of(k) == backbone]
    chosen = [k for k in kinds if backbone_of(k) is None and "backbone" in _fields(k)]
    if not named and not chosen:
        has = sorted({b for k in kinds if (b := backbone_of(k))})
        raise LatentlabError(f"--models {family}: cannot use the {backbone} backbone "
                             f"(it comes with: {', '.join(has) or 'its own'}); choose another --backbone")
    kind = (named or chosen)[0]
    names = _fields(kind)
    widths: dict[str, Any] = {"hidden": hidden or DEFAULT_HIDDEN} if backbone == "fcn" else \
        {"channels": channels or default_channels(in_shape, backbone)} if backbone == "conv" else \
        ({"channels": channels} if channels else {})  # resnet: its own default widths
    overrides = {"in_shape": tuple(in_shape), "latent_dim": latent_dim, **widths}
    if not named:
        overrides["backbone"] = backbone
    try:
        return kind_config(kind, **{k: v for k, v in overrides.items() if k in names})
    except LatentlabError as exc:
        raise LatentlabError(f"--models {family} with --backbone {backbone}: {exc}") from None


# ---------------------------------------------------------------- training (or reusing) the runs


@dataclass(frozen=True)
class Plan:
    """What every family is trained with: the same everything but the family."""

    families: tuple[str, ...]
    backbone: str = "conv"
    latent_dim: int = 16
    budget: float | None = None  # seconds per model
    epochs: int | None = None  # at most this many epochs (None: as many as the budget allows)
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    precision: str = "32"
    hidden: tuple[int, ...] | None = None
    channels: tuple[int, ...] | None = None

    def train_config(self) -> Any:
        from latentlab.train.config import TrainConfig

        return TrainConfig(epochs=self.epochs, budget=self.budget, batch_size=self.batch_size, lr=self.lr,
                           val_fraction=0.2, seed=self.seed, precision=self.precision)


def parse_families(text: str) -> tuple[str, ...]:
    """``'ae,vae, beta-vae'`` -> ('ae', 'vae', 'beta-vae'); unknown or repeated names are errors."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    known = known_families()
    for name in names:
        if name not in known:
            raise LatentlabError(f"--models {name}: unknown family; expected one of {', '.join(known)}")
    if len(names) < 1 or len(set(names)) != len(names):
        raise LatentlabError(f"--models {text!r}: expected distinct family names separated by commas, "
                             f"from {', '.join(known)}")
    return tuple(names)


def _state(folder: Path, config: dict[str, Any], overwrite: bool) -> str:
    """'new', 'complete', 'partial' -- or 'replace' (with ``overwrite``) for a run folder meant
    to hold ``config`` that holds something else; without ``overwrite`` that is an error."""
    from latentlab.models.base import tuples
    from latentlab.models.registry import CONFIG
    from latentlab.runs import read_config

    if not folder.is_dir() or not any(folder.iterdir()):
        return "new"
    other = "holds no run" if not (folder / CONFIG).is_file() else ""
    if not other:
        recorded = read_config(folder)
        for section in ("model", "data", "train"):
            want, have = config[section], recorded.get(section, {})
            if section != "model" and isinstance(have, dict):
                have = {k: have.get(k) for k in want}
            if tuples(want) != tuples(have):
                other = f"holds a run with other {section} settings"
                break
    if other and not overwrite:
        raise LatentlabError(f"{folder}: {other}; pass --overwrite to retrain it or choose another --out")
    if other:
        return "replace"
    return "complete" if (folder / COMPLETE).is_file() else "partial"


def train_families(data: Any, out: Path, plan: Plan, *, overwrite: bool = False, progress: bool = True,
                   say: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Train (or reuse, or resume) one run per family of ``plan`` under ``out``; ``data`` is a
    PreparedSet. Every family's config is checked before any model trains."""
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import with_source_defaults
    from latentlab.train.api import resume_run, run_config, train_run

    train = plan.train_config()
    configs = {f: family_config(f, plan.backbone, data.input_shape, plan.latent_dim, hidden=plan.hidden,
                                channels=plan.channels) for f in plan.families}
    rule = with_source_defaults(BatchSpec(), data.spec) if data.spec else BatchSpec()
    states = {f: _state(out / f, run_config(c, data, rule, train), overwrite) for f, c in configs.items()}
    for i, (family, config) in enumerate(configs.items(), 1):
        folder = out / family
        if states[family] == "complete":
            say(f"[{i}/{len(configs)}] {family}: reusing the complete run in {folder}")
            continue
        if states[family] == "partial":
            say(f"[{i}/{len(configs)}] {family}: resuming the interrupted run in {folder}")
            resume_run(folder, data, progress=progress)
        else:
            say(f"[{i}/{len(configs)}] {family}: training {config.kind} into {folder}")
            train_run(config, data, BatchSpec(), train, folder, overwrite=states[family] == "replace",
                      progress=progress)
    return [out / f for f in configs]


# ---------------------------------------------------------------- evidence per model


@dataclass
class FamilyEvidence:
    """Everything measured for one model; images in [0, 1]. NaN where a measure does not apply."""

    base: ModelEvidence  # the AE-vs-VAE measures (reconstruction, sharpness, samples, midpoints)
    family: str
    kind: str
    latent_dim: int
    parameters: int
    train_seconds: float
    steps: int
    psnr: float
    ssim: float
    precision: dict[str, float]  # sample source -> k-NN precision
    recall: dict[str, float]
    active_units: int
    kl_per_element: float  # mean over elements and images; NaN for models without a posterior
    anomaly_auc: float
    code_sensitivity: float
    noisy_psnr: float
    codebook_usage: float  # from the run's last logged usage/perplexity term; NaN when none
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.base.name

    def value(self, measure: str) -> float:
        """A measure by its key (see :data:`latentlab.compare_claims.MEASURES`)."""
        b = self.base
        values: dict[str, float] = {
            "recon_mse": b.recon_mse, "psnr": self.psnr, "ssim": self.ssim, "sharpness": b.laplacian_ratio,
            "hf_energy": b.hf_ratio, "sample_sharpness": b.sample_laplacian_ratio["prior"],
            "sample_distance": b.plausibility("prior"), "fitted_sample_distance": b.plausibility("fitted"),
            "precision": self.precision["prior"], "recall": self.recall["prior"],
            "fitted_precision": self.precision["fitted"], "fitted_recall": self.recall["fitted"],
            "midpoint_distance": b.midpoint_distance / max(b.recon_distance, 1e-12),
            "active_fraction": self.active_units / max(self.latent_dim, 1), "kl_per_element": self.kl_per_element,
            "anomaly_auc": self.anomaly_auc, "code_sensitivity": self.code_sensitivity,
            "noisy_psnr": self.noisy_psnr, "parameters": float(self.parameters),
            "train_seconds": self.train_seconds, "step_seconds": self.train_seconds / max(self.steps, 1),
            "codebook_usage": self.codebook_usage,
            "prior_gap": b.z_mean_abs + abs(float(torch.tensor(max(b.z_std, 1e-12)).log())),
        }
        return values[measure]

    def row(self) -> dict[str, Any]:
        """One CSV row: the name, family, kind and every measure."""
        from latentlab.compare_claims import MEASURES

        return {"model": self.name, "family": self.family, "kind": self.kind, "latent_dim": self.latent_dim,
                "active_units": self.active_units, "steps": self.steps,
                **{key: self.value(key) for key in MEASURES}, **self.extra, "parameters": self.parameters}


def _training_record(run: Run) -> tuple[float, int, float]:
    """(seconds of training, optimizer steps, last logged codebook usage or NaN) of a run."""
    rows = run.metrics
    seconds = float(sum(r.get("seconds", 0.0) for r in rows))
    done = (run.path / COMPLETE).read_text() if run.path is not None and run.complete else ""
    steps = int(m.group(1)) if (m := re.search(r"steps (\d+)", done)) else 0
    usage = float("nan")
    for key in sorted(rows[-1] if rows else {}, key=lambda k: not k.startswith("val_")):
        if key.endswith(("codes_used", "usage")):  # the fraction of the codebook a batch uses (VQ-VAE)
            usage = rows[-1][key]
            break
    return seconds, steps, usage


def measure(run: Run, data: Any, eval_rows: Any, ref_rows: Any, *, name: str, n_samples: int = 128,
            seed: int = 0) -> FamilyEvidence:
    """Every measure of one run on rows ``eval_rows`` of ``data`` (``ref_rows``: the training reference)."""
    model, vr = run.model, run.value_range
    base = evaluate(name, run, data, eval_rows, ref_rows, n_samples=n_samples, seed=seed)
    x = run.inputs(data, eval_rows)  # (N, C, H, W) model space
    mu, kl = posterior_means(model, x)
    real = base.images["originals"][:n_samples]
    pr = {s: knn_precision_recall(real, base.images[s]) for s in ("prior", "fitted")}
    seconds, steps, usage = _training_record(run)
    with torch.no_grad():
        auc = planted_anomaly_auc(model, x, vr, seed)
        sensitivity, noisy = code_sensitivity(model, x, vr, seed), noisy_psnr(model, x, vr, seed)
    return FamilyEvidence(
        base=base, family=family_of(model.kind), kind=model.kind, latent_dim=model.latent_dim,
        parameters=model.num_parameters(), train_seconds=seconds, steps=steps,
        psnr=psnr(base.images["reconstructions"], base.images["originals"]),
        ssim=ssim(base.images["reconstructions"], base.images["originals"]),
        precision={s: p for s, (p, _) in pr.items()}, recall={s: r for s, (_, r) in pr.items()},
        active_units=active_units(mu), kl_per_element=float(kl.mean()) if kl is not None else float("nan"),
        anomaly_auc=auc, code_sensitivity=sensitivity, noisy_psnr=noisy, codebook_usage=usage,
        extra=factor_scores(mu, data, eval_rows, seed))


FACTOR_SCORES = {"mig": "MIG (factors of the data)", "sap": "SAP (factors of the data)",
                 "dci_disentanglement": "DCI disentanglement", "dci_completeness": "DCI completeness",
                 "dci_informativeness": "DCI informativeness"}


def factor_scores(codes: Tensor, data: Any, rows: Any, seed: int = 0) -> dict[str, float]:
    """MIG, SAP and DCI of the held-out codes against the data's known factors (``faces``,
    ``shapes``, sets with factor columns): half the rows fit, half test. Empty when the data has
    no factors, or when they cannot be scored here (a factor with one value among these rows, a
    one-element latent)."""
    import numpy as np

    from latentlab.metrics.evaluate import evaluate_observed

    factors = getattr(data, "factors", None)
    if not factors:
        return {}
    picked = {name: np.asarray(values)[np.asarray(rows)] for name, values in factors.items()}
    try:
        scores = evaluate_observed(codes.float().cpu().numpy().astype(np.float64), picked, seed=seed,
                                   num_eval=len(codes) // 2)["scores"]
    except LatentlabError:
        return {}
    return {key: float(scores[key]) for key in FACTOR_SCORES if key in scores}


# ---------------------------------------------------------------- the comparison


@dataclass
class ManyComparison:
    models: list[FamilyEvidence]
    data_spec: str
    n_eval: int
    n_ref: int
    held_out: str
    real_distance: float  # nearest-training-image MSE of held-out originals: the floor of realism
    budget: float | None = None

    def get(self, family: str) -> FamilyEvidence | None:
        return next((m for m in self.models if m.family == family), None)


def check_runs(runs: Sequence[Run]) -> None:
    """Runs can be compared when they take the same input shape, prepared the same way."""
    first = runs[0]
    for run in runs[1:]:
        if run.model.in_shape != first.model.in_shape:
            raise LatentlabError(f"--runs {run.path}: input shape {run.model.in_shape} differs from "
                                 f"{first.path}'s {first.model.in_shape}")
        if dataclasses.replace(run.rule, noise=0.0) != dataclasses.replace(first.rule, noise=0.0):
            raise LatentlabError(f"--runs {run.path}: prepares images differently from {first.path} "
                                 f"({run.rule} vs {first.rule}); compare runs trained with the same input rule")


def run_names(runs: Sequence[Run]) -> list[str]:
    """A distinct name per run: its family, or its folder name when two runs share a family."""
    families = [family_of(r.model.kind) for r in runs]
    return [f if families.count(f) == 1 else (r.name if r.path is not None else f"{f}-{i}")
            for i, (f, r) in enumerate(zip(families, runs, strict=True))]


def compare_many(runs: Sequence[Run], data: Any, *, n_samples: int = 128, seed: int = 0,
                 budget: float | None = None, progress: bool = True) -> ManyComparison:
    """Measure every run on the same held-out images of ``data`` (a PreparedSet)."""
    from latentlab.anomaly.progress import progress_bar

    if not runs:
        raise LatentlabError("--models/--runs: expected at least one model to compare")
    check_runs(runs)
    eval_rows, ref_rows, how = evaluation_rows(runs, data)
    first = runs[0]
    x_real: Tensor = to_unit(first.inputs(data, eval_rows[:n_samples]), first.value_range)
    real = nearest_distance(x_real, to_unit(first.inputs(data, ref_rows), first.value_range))
    models = []
    with progress_bar(len(runs) * len(eval_rows), "measuring", enabled=progress) as advance:
        for name, run in zip(run_names(runs), runs, strict=True):
            models.append(measure(run, data, eval_rows, ref_rows, name=name, n_samples=n_samples, seed=seed))
            advance(len(eval_rows))
    return ManyComparison(models=models, data_spec=data.spec, n_eval=len(eval_rows), n_ref=len(ref_rows),
                          held_out=how, real_distance=float(real.mean()), budget=budget)


def run_comparison(out: Path, data: str | None, *, plan: Plan | None = None, runs: Sequence[Path] | None = None,
                   n_samples: int = 128, overwrite: bool = False, progress: bool = True,
                   say: Callable[[str], None] = lambda _: None) -> ManyComparison:
    """What ``latentlab compare`` does: train ``plan``'s families under ``out`` on the data spec
    ``data`` (reusing or resuming runs there), or open ``runs``; then measure them all."""
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import load_prepared

    images = None
    if plan is not None:
        if not data:
            raise LatentlabError("--data: needed to train the models (e.g. --data faces:2000); or give --runs")
        plan.train_config()  # option errors before any data is loaded
        images = load_prepared(data, BatchSpec())
        runs = train_families(images, out, plan, overwrite=overwrite, progress=progress, say=say)
    opened = [Run.open(folder) for folder in runs or []]
    if not opened:
        raise LatentlabError("--models/--runs: expected at least one model to compare")
    if images is None:
        images = opened[0].data(data)
    return compare_many(opened, images, n_samples=n_samples, seed=plan.seed if plan else 0,
                        budget=plan.budget if plan else None, progress=progress)
