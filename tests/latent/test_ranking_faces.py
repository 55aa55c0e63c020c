"""The ranking is not noise: on generated faces, a model trained here ranks first the latent
elements whose traversal moves a known factor (read by the factor regressor), and last those
that move none.

A beta-VAE (beta 4, Higgins et al. 2017) with 8 latent elements on 16x16 faces keeps a few
elements for the strongest factors and switches the rest off; the ranking by effect must put
the former on top. Faces are resized once up front: 15 epochs take about 1.5 s of CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentlab.data import BatchSpec, ImageSet, make_faces
from latentlab.data.batches import resize_uint8, to_uint8
from latentlab.data.faces import FACTOR_RANGES
from latentlab.latent import explore
from latentlab.latent.factors import FactorRegressor
from latentlab.latent.tools import encode_run_data, inputs, rank_run

SIZE = 16


@pytest.fixture(scope="module")
def small_faces() -> ImageSet:
    faces = make_faces(1500, seed=0)
    return ImageSet(images=resize_uint8(faces.images, (SIZE, SIZE)), labels=faces.labels,
                    label_names=faces.label_names, factors=faces.factors, spec="faces:1500 at 16x16")


@pytest.fixture(scope="module")
def faces_vae(small_faces: ImageSet, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from latentlab.models import FCNVAEConfig
    from latentlab.runs import open_run
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    out = tmp_path_factory.mktemp("ranking") / "vae"
    config = FCNVAEConfig(in_shape=(3, SIZE, SIZE), hidden=(128,), latent_dim=8, beta=4.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small gains nothing from threads on a busy machine
    try:
        train_run(config, small_faces, BatchSpec(), TrainConfig(epochs=15, batch_size=64, lr=3e-3, seed=0),
                  out, progress=False)
    finally:
        torch.set_num_threads(threads)
    return open_run(out)


def factor_change(run, data: ImageSet, elements: list[int], lo: torch.Tensor, hi: torch.Tensor,
                  regressor: FactorRegressor, n_images: int = 16) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(len(elements), factors): mean |factor(hi end) - factor(lo end)| of each element's traversal,
    estimates clipped to the factor's range."""
    values = explore.traversal_values(lo, hi, elements, 2)  # (K, 2)
    x = inputs(run, data, list(range(n_images)))
    ends = torch.stack([explore.traverse(run.model, x[i:i + 1], elements, values) for i in range(n_images)])
    est = regressor.predict(to_uint8(ends.flatten(0, 2), run.value_range))  # (n*K*2,) per factor
    out = []
    for name in regressor.names_:
        v = np.clip(est[name], *FACTOR_RANGES[name]).reshape(n_images, len(elements), 2)
        out.append(np.abs(v[..., 1] - v[..., 0]).mean(0))  # (K,)
    return np.stack(out, 1)


def test_top_ranked_elements_move_a_known_factor_and_bottom_ones_do_not(  # type: ignore[no-untyped-def]
        faces_vae, small_faces) -> None:
    z_data = encode_run_data(faces_vae, small_faces)
    ranking, _ = rank_run(faces_vae, small_faces, z_data)
    effects = [s.effect for s in ranking]
    assert effects == sorted(effects, reverse=True)
    order = [s.element for s in ranking]
    lo, hi = explore.latent_ranges(faces_vae.model, z_data)  # +-3 sigma for a VAE, as `traverse` uses
    change = factor_change(faces_vae, small_faces, order, lo, hi, FactorRegressor.for_faces())
    strongest = change.max(1)  # (8,) per element in rank order: the factor it moves most
    top, bottom = strongest[:2], strongest[-2:]
    assert top.max() > 0.4, change  # a known factor moves by a large part of its range
    assert top.min() > 3 * bottom.max(), (order, strongest)  # ... and by much more than at the bottom
    names = [FactorRegressor.for_faces().names_[i] for i in change[:2].argmax(1)]
    print("top elements move:", dict(zip(order[:2], names, strict=True)), "strongest:", strongest.round(2))
