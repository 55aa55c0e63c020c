"""Active units (Burda et al. 2016) and the collapse warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentlab.latent.active import THRESHOLD, ActiveUnits, active_units, collapse_line, collapse_warning
from latentlab.runs import Run


def test_active_units_are_the_variance_of_the_mean_code(tiny_run: Path) -> None:
    run = Run.open(tiny_run)
    units = active_units(run, rows=None)
    data = run.data()
    with torch.inference_mode():
        z = run.model.embed(run.inputs(data)).double().numpy()
    assert np.allclose(units.variance, z.var(axis=0, ddof=1), rtol=1e-4)
    assert units.kl is None and units.latent_dim == 4
    assert units.count == int((z.var(axis=0, ddof=1) > THRESHOLD).sum())
    assert collapse_line(tiny_run) is None  # a plain autoencoder gets no collapse warning


def test_vae_units_report_kl_per_element(tiny_vae_run: Path) -> None:
    units = active_units(tiny_vae_run, rows=100)
    assert units.kl is not None and units.kl.shape == (4,)
    assert (units.kl >= 0).all()
    assert "KL per element" in units.summary()
    assert units.to_dict()["active"] == units.count


def test_collapse_warning_names_how_many() -> None:
    units = ActiveUnits(variance=np.array([0.5, 0.0, 0.001, 0.2]), kl=np.array([1.0, 0.0, 0.01, 0.4]))
    assert units.count == 2 and units.collapsed == [1, 2]
    line = collapse_warning(units)
    assert line is not None and "2 of 4 latent elements are inactive" in line and "\n" not in line
    assert collapse_warning(ActiveUnits(variance=np.array([0.5, 0.0]), kl=None)) is None
    assert collapse_warning(ActiveUnits(variance=np.array([0.5, 0.3]), kl=np.array([1.0, 1.0]))) is None


def test_a_vae_with_dead_elements_is_warned_about(tiny_vae_run: Path, tmp_path: Path) -> None:
    """Zero the weights that feed two mean elements: their E[z|x] no longer varies."""
    import shutil

    from latentlab.models.registry import WEIGHTS, save_weights

    run_dir = tmp_path / "vae"
    shutil.copytree(tiny_vae_run, run_dir)
    model = Run.open(run_dir).model
    with torch.no_grad():
        head = next(m for m in model.mu_head.modules() if isinstance(m, torch.nn.Linear))
        head.weight[1:3] = 0.0
    save_weights(model, run_dir / WEIGHTS)
    line = collapse_line(run_dir)
    assert line is not None and "inactive" in line
    assert {1, 2} <= set(active_units(run_dir).collapsed)


def test_explorer_info_reports_active_units(tiny_run: Path) -> None:
    from latentlab.latent.active import active_count
    from latentlab.web.explorer import Explorer

    explorer = Explorer.load(tiny_run, stats_limit=64)
    info = explorer.info()
    assert info["active_units"] == active_count(explorer.z_data)
    assert 0 <= info["active_units"] <= info["latent_dim"]
    assert active_count(np.array([[0.0, 1.0], [0.0, -1.0]])) == 1
