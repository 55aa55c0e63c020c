"""All five disentanglement scores of a run (or of any code) on data with known factors.

:func:`evaluate` scores a code given as a function of observations against a
:class:`~latentlab.metrics.truth.GroundTruth`; :func:`disentanglement` does it for a run and a
data spec, by the run's input rule. MIG, SAP and DCI share one sample of ``num_train`` codes
(and ``num_eval`` held out) where disentanglement_lib draws one per metric. A run's code is its
encoder's mean, a deterministic function of the image, so :func:`disentanglement` encodes each
distinct factor combination the draws reach once (:mod:`.codes`): with the papers' counts on
``shapes`` that is about 723,000 images instead of 2.9 million, and the same scores.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from latentlab.errors import LatentlabError
from latentlab.metrics.codes import CodeTable, table_fits
from latentlab.metrics.dci import dci
from latentlab.metrics.information import mig, sap
from latentlab.metrics.interventions import beta_vae_score, factor_vae_score
from latentlab.metrics.truth import GENERATED, GroundTruth, Represent, encoder_of, ground_truth, to_levels

__all__ = ["SCORES", "disentanglement", "evaluate", "evaluate_observed"]

SCORES = ("beta_vae", "factor_vae", "mig", "sap", "dci_disentanglement", "dci_completeness",
          "dci_informativeness")
NEEDS_TWO = "needs a latent of at least 2 elements (it compares elements with each other); this one has 1"
NEEDS_GENERATOR = (f"needs data that can draw images for chosen factor values ({', '.join(GENERATED)}); "
                   "this data only labels its images")


def _images_total(batch_size: int, num_train: int, num_eval: int, num_variance: int) -> int:
    n = num_train + num_eval
    return 2 * batch_size * n + num_variance + batch_size * n + n


def _observed(codes: np.ndarray, factors: np.ndarray, test_codes: np.ndarray, test_factors: np.ndarray,
              names: tuple[str, ...], seed: int, estimator: str, out: dict[str, Any]) -> None:
    """MIG, SAP and DCI into ``out`` (scores, details, seconds, skipped)."""
    if codes.shape[1] < 2:
        out["skipped"].update({"mig": NEEDS_TWO, "sap": NEEDS_TWO, "dci": NEEDS_TWO})
        return
    start = time.perf_counter()
    m = mig(codes, factors, names)
    out["scores"]["mig"], out["seconds"]["mig"] = m["mig"], time.perf_counter() - start
    start = time.perf_counter()
    s = sap(codes, factors, test_codes, test_factors, names)
    out["scores"]["sap"], out["seconds"]["sap"] = s["sap"], time.perf_counter() - start
    start = time.perf_counter()
    d = dci(codes, factors, test_codes, test_factors, names, seed=seed, estimator=estimator)
    out["seconds"]["dci"] = time.perf_counter() - start
    for key in ("disentanglement", "completeness", "informativeness"):
        out["scores"][f"dci_{key}"] = d[key]
    out["details"].update({**{k: v for k, v in m.items() if k != "mig"}, **{k: v for k, v in s.items() if k != "sap"},
                           "dci_importance": d["importance"], "dci_informativeness_train": d["informativeness_train"]})


def _result(names: tuple[str, ...], seed: int, samples: dict[str, int]) -> dict[str, Any]:
    return {"factors": list(names), "seed": seed, "samples": samples, "scores": {}, "details": {},
            "seconds": {}, "skipped": {}}


def _code_table(truth: GroundTruth, represent: Represent, draws: int, progress: bool,
                out: dict[str, Any]) -> CodeTable:
    """The table to stand in for ``truth`` and ``represent``: filled first, in index order, when
    the draws will reach most factor combinations (time in ``out["seconds"]["encoding"]``)."""
    from latentlab.anomaly.progress import progress_bar

    table = CodeTable(truth, represent)
    if table.worth_filling(draws):
        start = time.perf_counter()
        with progress_bar(len(table.filled), "encoding every factor combination", enabled=progress) as advance:
            table.fill_all(advance)
        out["seconds"]["encoding"] = time.perf_counter() - start
    return table


def evaluate(truth: GroundTruth, represent: Represent, *, seed: int = 0, batch_size: int = 64,
             num_train: int = 10_000, num_eval: int = 5_000, num_variance_estimate: int = 10_000,
             estimator: str = "forest", progress: bool = False, deterministic: bool = False) -> dict[str, Any]:
    """The five scores of the code ``represent`` gives for ``truth``'s observations.

    Returns ``{"factors", "seed", "samples", "scores", "details", "seconds", "skipped"}``:
    ``scores`` maps each of :data:`SCORES` that could be computed to a float; ``skipped`` says
    why any other was not (a one-element latent for MIG, SAP and DCI). ``deterministic``: the
    code of an observation is always the same (an encoder's mean), so each distinct factor
    combination is observed and encoded once (:class:`~latentlab.metrics.codes.CodeTable`);
    the draws, and so the scores, stay the same. ``details["images_encoded"]`` counts the
    observations encoded either way; ``seconds`` has the time of each score family (and of
    ``encoding`` the whole grid first, when the table does that).
    """
    from latentlab.anomaly.progress import progress_bar

    samples = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval,
               "num_variance_estimate": num_variance_estimate}
    out = _result(truth.names, seed, samples)
    total = _images_total(batch_size, num_train, num_eval, num_variance_estimate)
    table = _code_table(truth, represent, total, progress, out) if deterministic else None
    if table is not None:
        truth, represent = table.truth, table
    with progress_bar(total, "disentanglement", enabled=progress) as advance:
        start = time.perf_counter()
        b = beta_vae_score(truth, represent, seed=seed, batch_size=batch_size, num_train=num_train,
                           num_eval=num_eval, advance=advance)
        out["scores"]["beta_vae"], out["seconds"]["beta_vae"] = b["eval_accuracy"], time.perf_counter() - start
        start = time.perf_counter()
        f = factor_vae_score(truth, represent, seed=seed, batch_size=batch_size, num_train=num_train,
                             num_eval=num_eval, num_variance_estimate=num_variance_estimate, advance=advance)
        out["scores"]["factor_vae"], out["seconds"]["factor_vae"] = f["eval_accuracy"], time.perf_counter() - start
        out["details"].update({"beta_vae_train_accuracy": b["train_accuracy"],
                               "factor_vae_train_accuracy": f["train_accuracy"],
                               "factor_vae_num_active": f["num_active"]})
        rng = np.random.default_rng([seed, 3])
        levels, test_levels = truth.sample_factors(num_train, rng), truth.sample_factors(num_eval, rng)
        codes, test_codes = represent(truth.observe(levels)), represent(truth.observe(test_levels))
        advance(num_train + num_eval)
    out["details"]["images_encoded"] = table.encoded if table is not None else total
    _observed(codes, levels, test_codes, test_levels, truth.names, seed, estimator, out)
    return out


def evaluate_observed(codes: np.ndarray, factors: dict[str, np.ndarray], *, seed: int = 0,
                      num_eval: int = 5_000, estimator: str = "forest") -> dict[str, Any]:
    """MIG, SAP and DCI of codes (N, D) against named factor columns (each (N,)) of the same
    images: the scores for data that only labels its images. The last ``num_eval`` rows of a
    seeded shuffle are held out."""
    names = tuple(factors)
    levels = np.stack([to_levels(v) for v in factors.values()], axis=1)  # (N, K)
    n = len(codes)
    n_eval = min(num_eval, n // 2)
    if n_eval < 1:
        raise LatentlabError(f"{n} image(s): too few to hold some out; expected at least 2")
    order = np.random.default_rng([seed, 4]).permutation(n)
    train, test = order[:n - n_eval], order[n - n_eval:]
    out = _result(names, seed, {"num_train": len(train), "num_eval": n_eval})
    out["skipped"].update({"beta_vae": NEEDS_GENERATOR, "factor_vae": NEEDS_GENERATOR})
    with warnings.catch_warnings():  # few images per factor level: sklearn's forest says so once per tree
        warnings.simplefilter("ignore", UserWarning)
        _observed(codes[train], levels[train], codes[test], levels[test], names, seed, estimator, out)
    return out


def _check_input(run: Any, truth: GroundTruth, spec: str) -> None:
    x = run.inputs(truth.observe(truth.sample_factors(1, np.random.default_rng(0))))
    if tuple(x.shape[1:]) != tuple(run.model.in_shape):
        raise LatentlabError(f"--data {spec}: images give model input {tuple(x.shape[1:])}; "
                             f"the model expects {tuple(run.model.in_shape)}")


def disentanglement(run: Any, spec: str, *, seed: int = 0, batch_size: int = 64, num_train: int = 10_000,
                    num_eval: int = 5_000, num_variance_estimate: int = 10_000, estimator: str = "forest",
                    progress: bool = False) -> dict[str, Any]:
    """The scores of a run (a path, a :class:`~latentlab.runs.Run` or a model) on ``spec``.

    ``shapes`` and ``faces`` get all five; a source whose images carry named factor columns
    gets MIG, SAP and DCI on up to ``num_train + num_eval`` of its images; any other source is
    refused with one line naming the sources that have factors.
    """
    from latentlab.runs import as_run

    run = as_run(run)
    started = time.perf_counter()
    truth = ground_truth(spec)
    represent: Callable[[Any], np.ndarray] = encoder_of(run)
    if truth is not None:
        _check_input(run, truth, spec)
        out = evaluate(truth, represent, seed=seed, batch_size=batch_size, num_train=num_train, num_eval=num_eval,
                       num_variance_estimate=num_variance_estimate, estimator=estimator, progress=progress,
                       deterministic=table_fits(truth, int(run.model.latent_dim)))
    else:
        data = run.data(spec)
        if not data.factors:
            raise LatentlabError(f"--data {spec}: its images have no known factors; the sources with factors are "
                                 f"{', '.join(GENERATED)} (all five scores) and image sets with named factor "
                                 "columns (MIG, SAP, DCI)")
        rows = np.sort(np.random.default_rng([seed, 5]).permutation(len(data))[:num_train + num_eval])
        codes = codes_of(run, data, rows)
        out = evaluate_observed(codes, {k: np.asarray(v)[rows] for k, v in data.factors.items()}, seed=seed,
                                num_eval=num_eval, estimator=estimator)
    out.update({"run": run.name, "data": spec, "latent_dim": int(run.model.latent_dim),
                "total_seconds": time.perf_counter() - started})
    return out


def codes_of(run: Any, data: Any, rows: np.ndarray, batch: int = 2048) -> np.ndarray:
    """Codes of rows of a PreparedSet (its own remaining rule makes the model input)."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch):
            x = data.inputs(rows[start:start + batch], device=run.model.device)
            out.append(run.model.embed(x.to(run.model.dtype)).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)
