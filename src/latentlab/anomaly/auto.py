"""``--score auto``: the anomaly score a run chooses for itself, from its own training data only.

No labelled anomaly exists when a user trains on normal images, so the score is chosen by how
well it separates *held-out normal images* from *pseudo-anomalies made from them*
(:mod:`latentlab.anomaly.pseudo`: CutPaste, CutPaste-scar, shuffled tiles, smoothed images):

1. **Held-out normals**: the run's validation split (rows the trainer never trained on; at most
   :data:`HELD_OUT_LIMIT`). A run without one holds out a seeded tenth of its training images
   (the model saw those, and the choice says so).
2. **Fit**: the other training rows (at most ``fit_limit``) are encoded once; the latent
   densities (Mahalanobis, Gaussian mixture) and the encoder-feature Gaussians are fitted on
   them -- exactly what the detector fits. The mean and spread of each log-score on the
   held-out normals standardise the combinations (training images would be biased: the model
   was fitted to them), as the detector standardises them on the same rows.
3. **Candidates**: every single score (``mse``, ``ssim``, ``elbo`` for a VAE, ``mahalanobis``,
   ``gmm``, ``features``, and ``transforms`` and ``transform-features`` for a run with a transform
   classifier, :mod:`latentlab.anomaly.transforms`), the two-sided ``|mse|`` and ``|ssim|``
   (standardised; an image reconstructed much better than normal ones is unusual too), and, for
   every two or three of them with at most one latent density and each kind once, their
   standardised sum and their standardised maximum (``combined`` with those ``parts`` and
   ``combine``). ``course`` is left out: it ranks images exactly as ``mse`` does (both are
   monotone in the summed squared error of a fixed-size image).
4. **Choice**: the candidate with the highest mean over the pseudo-anomaly families of its ROC
   AUC (held-out normals against that family). A mean over families rewards a score that
   sees every kind of change; one family a score is blind to (a reconstruction error on smooth
   images) costs it a quarter of the mean. Near-ties (within :data:`TIE`) go to fewer parts.

The choice is written to ``anomaly_score.json`` in the run folder with the evidence (every
candidate's AUC per family) and a one-sentence explanation, keyed by a hash of the weights: it
is reused while the weights are the same and made again (and stored) when they change, or on
first use by a run trained before ``auto`` existed.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentlab.anomaly.density import fit_density
from latentlab.anomaly.features import fit_features, has_features
from latentlab.anomaly.pseudo import PSEUDO_KINDS, make_pseudo
from latentlab.anomaly.scores import (
    COMBINE_MODES,
    FITTED_KINDS,
    LATENT_KINDS,
    TWO_SIDED_KINDS,
    Collected,
    base_kind,
    collect,
    two_sided,
)
from latentlab.anomaly.scores import standardisation as scores_standardisation
from latentlab.anomaly.transforms import TRANSFORM_KINDS, WEIGHTS_FILE, attached, collect_outputs
from latentlab.data.batches import BatchSpec
from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder
from latentlab.runs import Run, split_indices

AUTO = "auto"
CHOICE_FILE = "anomaly_score.json"
METHOD = "latentlab auto score 3: mean ROC AUC of held-out normals against pseudo-anomalies"
VERSION = 3  # 2: two-sided |mse| and |ssim| among the candidates; 3: transform-features with a test-time flip
# (choices of an earlier version are made again)
HELD_OUT_LIMIT = 1000
HELD_OUT_FRACTION = 0.1  # of the training images, for a run without a validation split
TIE = 0.002  # mean ROC AUCs this close are a tie, won by fewer parts
MAX_GMM_DIM = 256  # a full-covariance mixture of larger latents is slow and ill-conditioned
MAX_PARTS = 3
_EPS = 1e-12
NAMES = {"mse": "the mean squared error", "ssim": "the SSIM error", "elbo": "the negative ELBO",
         "mahalanobis": "the latent Mahalanobis distance", "gmm": "the latent Gaussian-mixture NLL",
         "features": "the encoder-feature distance",
         "transforms": "the rotation classifier's surprise",
         "transform-features": "the rotation classifier's feature distance",
         "|mse|": "the two-sided mean squared error", "|ssim|": "the two-sided SSIM error"}


@dataclass(frozen=True)
class Candidate:
    """One candidate score: its ``parts`` (one kind, or the parts of a standardised combination
    joined by ``combine``) and its ROC AUC against each pseudo-anomaly family."""

    parts: tuple[str, ...]
    auc: dict[str, float]
    combine: str = "sum"

    @property
    def name(self) -> str:
        return spec_name(self.parts, self.combine)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.auc.values())))


@dataclass(frozen=True)
class ScoreChoice:
    """What ``auto`` resolved to, with its evidence. ``kind`` and ``parts`` are what a detector
    is built with (``combined`` and its parts, or a single kind)."""

    parts: tuple[str, ...]
    combine: str
    components: int
    sentence: str
    candidates: tuple[Candidate, ...]  # best first
    n_held_out: int
    held_out: str  # where the held-out normals came from
    n_fit: int
    weights: str = ""  # sha256 of the weights the choice was made for ("" for a bare model)
    seconds: float = 0.0
    path: Path | None = None  # where it is stored (None: not stored)

    @property
    def kind(self) -> str:
        return self.parts[0] if len(self.parts) == 1 and not two_sided(self.parts[0]) else "combined"

    @property
    def name(self) -> str:
        return spec_name(self.parts, self.combine)

    def to_dict(self) -> dict[str, Any]:
        return {"method": METHOD, "version": VERSION, "score": self.kind, "parts": list(self.parts),
                "combine": self.combine, "name": self.name, "components": self.components,
                "sentence": self.sentence, "weights": self.weights,
                "held_out": {"images": self.n_held_out, "from": self.held_out}, "fit_images": self.n_fit,
                "pseudo_anomalies": list(PSEUDO_KINDS), "seconds": round(self.seconds, 2),
                "candidates": [{"score": c.name, "mean_auc": round(c.mean, 6),
                                "auc": {k: round(v, 6) for k, v in c.auc.items()}} for c in self.candidates]}


# ---------------------------------------------------------------- candidates and their ranking


def candidate_specs(model: Autoencoder) -> list[tuple[tuple[str, ...], str]]:
    """Every candidate as (parts, combine): single kinds, then the standardised sum and the
    standardised maximum of every two or three kinds with at most one latent density."""
    kinds = ["mse", "ssim"] + (["elbo"] if model.is_variational else [])
    kinds += ["mahalanobis"] + (["gmm"] if int(model.latent_dim) <= MAX_GMM_DIM else [])
    kinds += ["features"] if has_features(model) else []
    kinds += list(TRANSFORM_KINDS) if attached(model) is not None else []
    kinds[2:2] = [f"|{k}|" for k in TWO_SIDED_KINDS]  # after mse and ssim
    out: list[tuple[tuple[str, ...], str]] = [((k,), "sum") for k in kinds]
    for size in range(2, MAX_PARTS + 1):
        for combo in itertools.combinations(kinds, size):
            bases = [base_kind(k) for k in combo]
            if sum(k in LATENT_KINDS for k in combo) <= 1 and len(set(bases)) == len(bases):
                out += [(combo, mode) for mode in COMBINE_MODES]
    return out


def spec_name(parts: Sequence[str], combine: str = "sum") -> str:
    """``mse`` / ``mse+ssim`` (standardised sum) / ``max(mse,ssim)`` (standardised maximum)."""
    if len(parts) == 1 or combine == "sum":
        return "+".join(parts)
    return f"{combine}({','.join(parts)})"


def parse_name(name: str) -> tuple[tuple[str, ...], str]:
    """The inverse of :func:`spec_name`."""
    for mode in COMBINE_MODES:
        if name.startswith(f"{mode}(") and name.endswith(")"):
            return tuple(name[len(mode) + 1:-1].split(",")), mode
    return tuple(name.split("+")), "sum"


def standardisation(normal: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, float]]:
    """(centre, scale) of each kind's log-score on normal images (:func:`scores.standardisation`)."""
    return scores_standardisation({k: torch.from_numpy(np.asarray(v)) for k, v in normal.items()})


def candidate_values(parts: Sequence[str], scores: dict[str, np.ndarray], center: dict[str, float],
                     scale: dict[str, float], combine: str = "sum") -> np.ndarray:
    """The candidate's score of each image: the kind itself, or its parts' standardised
    log-scores joined by ``combine`` (as :func:`latentlab.anomaly.scores.combine`; the absolute
    value for a two-sided part)."""
    if len(parts) == 1 and not two_sided(parts[0]):
        return scores[parts[0]].astype(np.float64)
    z = np.stack([(np.log(np.maximum(scores[k].astype(np.float64), _EPS)) - center[k]) / scale[k] for k in parts])
    z = np.where(np.array([two_sided(k) for k in parts])[:, None], np.abs(z), z)
    return np.asarray(z.max(0) if combine == "max" else z.sum(0), dtype=np.float64)


def rank_candidates(specs: Sequence[tuple[tuple[str, ...], str]], held: dict[str, np.ndarray],
                    pseudo: dict[str, dict[str, np.ndarray]]) -> list[Candidate]:
    """Candidates best first, by mean ROC AUC over the pseudo-anomaly families (held-out normals
    0, the family 1); ties within :data:`TIE` go to fewer parts, then to the order of ``specs``.
    Combinations are standardised on the held-out normals, as the detector standardises them."""
    from sklearn.metrics import roc_auc_score

    center, scale = standardisation(held)
    found = []
    for parts, mode in specs:
        normal = candidate_values(parts, held, center, scale, mode)
        auc = {}
        for family, values in pseudo.items():
            anomalous = candidate_values(parts, values, center, scale, mode)
            y = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
            auc[family] = float(roc_auc_score(y, np.r_[normal, anomalous]))
        found.append(Candidate(tuple(parts), auc, mode))
    best = max(c.mean for c in found)
    order = {(c.parts, c.combine): i for i, c in enumerate(found)}
    return sorted(found, key=lambda c: (c.mean < best - TIE, len(c.parts) if c.mean >= best - TIE else 0,
                                        -c.mean, order[(c.parts, c.combine)]))


def explain(choice: Candidate, candidates: Sequence[Candidate], n_held_out: int, held_out: str) -> str:
    """The one sentence ``evaluate`` prints."""
    names = [NAMES.get(k, k) for k in choice.parts]
    if len(names) == 1:
        what = names[0]
    else:
        joined = ", ".join(names[:-1]) + " and " + names[-1]
        what = f"the standardised {'maximum' if choice.combine == 'max' else 'sum'} of {joined}"
    families = ", ".join(f"{k} {v:.3f}" for k, v in choice.auc.items())
    mse = next((c for c in candidates if c.parts == ("mse",)), None)
    versus = f"; mse alone {mse.mean:.3f}" if mse is not None and choice.parts != ("mse",) else ""
    return (f"auto chose {choice.name} ({what}): of {len(candidates)} candidate scores it best separated "
            f"{n_held_out} held-out normal images ({held_out}) from pseudo-anomalies made from them, "
            f"mean ROC AUC {choice.mean:.3f} ({families}{versus}).")


# ---------------------------------------------------------------- scoring the sets


def _values(found: Collected, densities: dict[str, Any],
            transformed: tuple[torch.Tensor, list[torch.Tensor]] | None) -> dict[str, np.ndarray]:
    values = {k: v.numpy() for k, v in found.scores.items()}
    if transformed is not None:
        values["transforms"] = transformed[0].float().numpy()
    for k, density in densities.items():
        given = found.features if k == "features" else transformed[1] if transformed and k == "transform-features" \
            else found.z
        values[k] = density.score(given).float().numpy()
    return values


def _transformed(model: Autoencoder, images: Any, batch: BatchSpec,
                 batch_size: int) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
    """Both transform scores' inputs from one pass of the run's classifier (None without one)."""
    net = attached(model)
    if net is None:
        return None
    return collect_outputs(net, images, batch, batch_size=batch_size, device=model.device)


def measure(model: Autoencoder, batch: BatchSpec, fit_images: Any, held_images: Any, *, components: int = 8,
            seed: int = 0, batch_size: int = 256, progress: bool = False,
            ) -> tuple[list[tuple[tuple[str, ...], str]], dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """(candidate specs, base scores of the held-out normals, of each pseudo-anomaly family made
    from them). The densities are fitted on ``fit_images``. Images are uint8 sets, PreparedSets
    or model input."""
    from latentlab.data.rule import model_inputs

    model.eval()
    specs = candidate_specs(model)
    kinds = sorted({k for parts, _ in specs for k in parts}, key=list(NAMES).index)
    pixel = [k for k in kinds if k not in FITTED_KINDS and k not in TRANSFORM_KINDS]  # the classifier: below
    feats, transform_feats = "features" in kinds, "transform-features" in kinds
    fit = collect(model, fit_images, batch, [], features=feats, batch_size=batch_size, progress=progress,
                  what="auto: fitting")
    densities: dict[str, Any] = {k: fit_density(fit.z, k, n_components=components, seed=seed)
                                 for k in kinds if k in LATENT_KINDS}
    if feats:
        densities["features"] = fit_features(fit.features)
    if transform_feats:
        fitted = _transformed(model, fit_images, batch, batch_size)
        assert fitted is not None
        densities["transform-features"] = fit_features(fitted[1])
    x_held = torch.cat([model_inputs(batch, held_images, np.arange(i, min(i + batch_size, len(held_images))))
                        for i in range(0, len(held_images), batch_size)]).float().cpu()  # (M, C, H, W)
    sets = {"held-out": x_held}
    sets.update({f: make_pseudo(x_held, f, batch.value_range, seed=seed + i) for i, f in enumerate(PSEUDO_KINDS)})
    scored = {name: _values(collect(model, x.to(model.device), batch, pixel, features=feats, batch_size=batch_size,
                                    progress=progress, what=f"auto: {name}"), densities,
                            _transformed(model, x, batch, batch_size) if "transforms" in kinds else None)
              for name, x in sets.items()}
    held = scored.pop("held-out")
    return specs, held, scored


def choose(model: Autoencoder, batch: BatchSpec, fit_images: Any, held_images: Any, held_out: str, *,
           components: int = 8, seed: int = 0, batch_size: int = 256, progress: bool = False) -> ScoreChoice:
    """The choice for ``model`` from the given fitting and held-out normal images (nothing stored)."""
    if len(held_images) < 2 or len(fit_images) < 2:
        raise LatentlabError(f"score auto: needs at least 2 held-out and 2 fitting images, got "
                             f"{len(held_images)} and {len(fit_images)}")
    t0 = time.perf_counter()
    specs, held, pseudo = measure(model, batch, fit_images, held_images, components=components, seed=seed,
                                  batch_size=batch_size, progress=progress)
    ranked = rank_candidates(specs, held, pseudo)
    sentence = explain(ranked[0], ranked, len(held_images), held_out)
    return ScoreChoice(parts=ranked[0].parts, combine=ranked[0].combine, components=components, sentence=sentence,
                       candidates=tuple(ranked), n_held_out=len(held_images), held_out=held_out,
                       n_fit=len(fit_images), seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------- a run's own choice


def held_out_rows(run: Run, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(fitting rows, held-out rows, where the held-out ones come from) of a run's n training
    images: its validation split when it has one (the trainer's own seeded split), else a seeded tenth."""
    train = run.config.get("train", {}) if isinstance(run.config.get("train"), dict) else {}
    fraction, split_seed = float(train.get("val_fraction", 0.0) or 0.0), int(train.get("seed", 0) or 0)
    if fraction > 0:
        fit, held = split_indices(n, fraction, split_seed)
        if len(held) >= 2:
            return fit, held, "the run's validation split, never trained on"
    fit, held = split_indices(n, HELD_OUT_FRACTION, seed)
    return fit, held, "a tenth of the training images; the run has no validation split, so the model saw them"


def weights_hash(run: Run) -> str:
    """sha256 of the run's weights file, and of its transform classifier's when it has one ("" for
    a model without a run folder): a choice is made again when either changes."""
    from latentlab.models.registry import WEIGHTS

    if run.path is None or not (run.path / WEIGHTS).is_file():
        return ""
    h = hashlib.sha256()
    for name in (WEIGHTS, WEIGHTS_FILE):
        if name == WEIGHTS or (run.path / name).is_file():
            with open(run.path / name, "rb") as fp:
                for block in iter(lambda: fp.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def training_images(run: Run, images: Any = None) -> Any:
    """The images the run was trained on: ``images``, or its recorded data spec when that still
    gives as many images as it trained on."""
    if images is not None:
        return images
    if not run.data_spec:
        raise LatentlabError(f"score auto: {run.path or 'the model'} records no training data; pass the normal "
                             "training images (--train-data SPEC) or choose a score with --score")
    data = run.data()
    recorded = run.config.get("data", {}).get("n_images")
    if isinstance(recorded, int) and recorded != len(data):
        raise LatentlabError(f"score auto: {run.path} was trained on {recorded} images but its data spec "
                             f"{run.data_spec} gives {len(data)}; pass the training images with --train-data "
                             f"(and --train-where), or choose a score with --score")
    return data


def choose_score(run: Any, images: Any = None, *, fit_limit: int | None = 5000, components: int = 8,
                 seed: int = 0, batch_size: int = 256, store: bool = True, progress: bool = False) -> ScoreChoice:
    """Choose ``run``'s score (see the module docstring) and store it in the run folder.

    ``run`` is a run folder, a Run or a model; ``images`` the normal images it was trained on
    (default: its recorded data). The held-out rows are the run's validation split. Returns the
    choice; ``choice.path`` is where it was written (None when not stored: a bare model, or a
    run folder that cannot be written).
    """
    from latentlab.anomaly.evaluate import fit_rows
    from latentlab.runs import as_run

    run = as_run(run)
    data = training_images(run, images)
    fit, held, source = held_out_rows(run, len(data), seed)
    held = fit_rows(held, HELD_OUT_LIMIT, seed)
    fit = fit_rows(fit, fit_limit, seed)
    subset = _subset(data)
    found = choose(run.model, run.rule, subset(fit), subset(held), source, components=components, seed=seed,
                   batch_size=batch_size, progress=progress)
    found = _replace(found, weights=weights_hash(run))
    if store and run.path is not None:
        from latentlab.io import write_json

        try:
            write_json(run.path / CHOICE_FILE, found.to_dict())
            found = _replace(found, path=run.path / CHOICE_FILE)
        except (OSError, LatentlabError):
            pass  # a read-only run folder: the choice is used for this command only
    return found


def choose_for_images(run: Any, images: Any, *, fit_limit: int | None = 5000, components: int = 8, seed: int = 0,
                      batch_size: int = 256, progress: bool = False) -> ScoreChoice:
    """The choice for a model without a run folder, from the normal ``images`` it is fitted on:
    a seeded tenth of them held out (the model may have trained on them; nothing is stored)."""
    from latentlab.anomaly.evaluate import fit_rows
    from latentlab.runs import as_run

    run = as_run(run)
    fit, held = split_indices(len(images), HELD_OUT_FRACTION, seed)
    subset = _subset(images)
    return choose(run.model, run.rule, subset(fit_rows(fit, fit_limit, seed)),
                  subset(fit_rows(held, HELD_OUT_LIMIT, seed)),
                  "a tenth of the images the detector was fitted on", components=components, seed=seed,
                  batch_size=batch_size, progress=progress)


def _subset(data: Any) -> Any:
    def rows(index: np.ndarray) -> Any:
        if hasattr(data, "subset"):
            return data.subset(index)
        return data[index]
    return rows


def _replace(choice: ScoreChoice, **changes: Any) -> ScoreChoice:
    import dataclasses

    return dataclasses.replace(choice, **changes)


def stored_choice(run: Any) -> ScoreChoice | None:
    """The run's stored choice when it was made for these weights by this method; else None."""
    from latentlab.io import read_json
    from latentlab.runs import as_run

    run = as_run(run)
    if run.path is None or not (run.path / CHOICE_FILE).is_file():
        return None
    try:
        data = read_json(run.path / CHOICE_FILE, "auto score choice")
        if data.get("version") != VERSION or data.get("weights") != weights_hash(run):
            return None
        candidates = tuple(Candidate(parse_name(c["score"])[0], {k: float(v) for k, v in c["auc"].items()},
                                     parse_name(c["score"])[1]) for c in data["candidates"])
        if data["combine"] not in COMBINE_MODES or not data["parts"]:
            return None
        return ScoreChoice(parts=tuple(data["parts"]), combine=str(data["combine"]),
                           components=int(data["components"]),
                           sentence=str(data["sentence"]), candidates=candidates,
                           n_held_out=int(data["held_out"]["images"]), held_out=str(data["held_out"]["from"]),
                           n_fit=int(data["fit_images"]), weights=str(data["weights"]),
                           seconds=float(data.get("seconds", 0.0)), path=run.path / CHOICE_FILE)
    except (LatentlabError, AttributeError, KeyError, TypeError, ValueError):
        return None  # damaged or from another version: chosen again


def resolve_auto(run: Any, images: Any = None, **kw: Any) -> ScoreChoice:
    """The run's stored choice, or a new one (stored for next time): what ``--score auto`` uses."""
    return stored_choice(run) or choose_score(run, images, **kw)
