"""Latent tools on tiny hand-made models: shapes, ends, ranges, sampling, ranking, projections."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentlab.data import BatchSpec, make_faces
from latentlab.errors import LatentlabError
from latentlab.latent import explore
from latentlab.models import FCNConfig, FCNVAEConfig, build


@pytest.fixture(scope="module")
def ae():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return build(FCNConfig(in_shape=(3, 8, 8), hidden=(), latent_dim=4)).eval()


@pytest.fixture(scope="module")
def vae():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return build(FCNVAEConfig(in_shape=(3, 8, 8), hidden=(16,), latent_dim=3)).eval()


def _x(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(n)) * 2 - 1


def test_encode_dataset_matches_embed_in_batches(ae) -> None:  # type: ignore[no-untyped-def]
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    z = explore.encode_dataset(ae, images, BatchSpec(), batch_size=3)
    from latentlab.data import to_model_input

    with torch.no_grad():
        assert torch.allclose(z, ae.embed(to_model_input(images)), atol=1e-5)
    assert explore.encode_dataset(ae, images, BatchSpec(), limit=4).shape == (4, 4)


def test_ranges_are_data_percentiles_for_an_ae_and_three_sigma_for_a_vae(ae, vae) -> None:  # type: ignore[no-untyped-def]
    z = torch.arange(101, dtype=torch.float32)[:, None].repeat(1, 4)  # 0..100 per element
    lo, hi = explore.latent_ranges(ae, z)
    assert torch.allclose(lo, torch.full((4,), 1.0)) and torch.allclose(hi, torch.full((4,), 99.0))
    lo, hi = explore.latent_ranges(vae, z[:, :3])
    assert torch.equal(lo, torch.full((3,), -3.0)) and torch.equal(hi, torch.full((3,), 3.0))


def test_traverse_sets_exactly_the_chosen_element(ae) -> None:  # type: ignore[no-untyped-def]
    x = _x(1)
    values = explore.traversal_values(torch.full((4,), -2.0), torch.full((4,), 2.0), [1, 3], 5)
    assert values.shape == (2, 5) and values[0, 0] == -2 and values[0, -1] == 2
    images = explore.traverse(ae, x, [1, 3], values)
    assert images.shape == (2, 5, 3, 8, 8)
    with torch.no_grad():
        z = ae.embed(x)
        z[0, 3] = values[1, 4]
        assert torch.allclose(images[1, 4], ae.decode(z)[0], atol=1e-6)


@pytest.mark.parametrize("spherical", [False, True])
def test_interpolation_includes_both_ends(ae, spherical: bool) -> None:  # type: ignore[no-untyped-def]
    x = _x(2)
    path = explore.interpolate(ae, x[:1], x[1:], 6, spherical=spherical)
    assert path.shape == (6, 3, 8, 8)
    with torch.no_grad():
        ends = ae.decode(ae.embed(x))
    assert torch.allclose(path[0], ends[0], atol=1e-5) and torch.allclose(path[-1], ends[1], atol=1e-5)


def test_slerp_keeps_the_norm_between_equal_norm_vectors() -> None:
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    path = explore.slerp(a, b, torch.linspace(0, 1, 7))
    assert torch.allclose(path.norm(dim=1), torch.full((7,), 3.0), atol=1e-5)
    linear = a[None] + (b - a)[None] * torch.linspace(0, 1, 7)[:, None]
    assert linear.norm(dim=1)[3] < 2.5  # the straight line cuts the corner


def test_fitted_samples_follow_the_data_gaussian(ae) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    z_data = torch.randn(4000, 4, generator=g) * torch.tensor([5.0, 1.0, 0.2, 2.0]) + 10.0
    mean, cov = explore.fit_gaussian(z_data)
    assert cov.shape == (4, 4) and cov[0, 0] == pytest.approx(25.0, rel=0.1)
    assert torch.allclose(mean, torch.full((4,), 10.0), atol=0.3)
    z, images = explore.sample(ae, 3000, source="fitted", z_data=z_data, generator=g)
    assert images.shape == (3000, 3, 8, 8)
    assert torch.allclose(z.std(0), torch.tensor([5.0, 1.0, 0.2, 2.0]), rtol=0.1)
    z, _ = explore.sample(ae, 3000, source="prior", generator=g)
    assert torch.allclose(z.std(0), torch.ones(4), rtol=0.1) and z.mean().abs() < 0.1
    with pytest.raises(LatentlabError, match="z_data"):
        explore.sample(ae, 4, source="fitted")
    with pytest.raises(LatentlabError, match="'prior' or 'fitted'"):
        explore.sample(ae, 4, source="data")


def test_an_element_the_decoder_ignores_ranks_last() -> None:
    torch.manual_seed(1)
    model = build(FCNConfig(in_shape=(3, 8, 8), hidden=(), latent_dim=4)).eval()
    with torch.no_grad():
        model.decoder[0].weight[:, 2] = 0.0  # z[2] changes nothing
        model.decoder[0].weight[:, 0] *= 4.0  # z[0] changes the most
    x = _x(8)
    z_data = torch.randn(200, 4)
    ranking = explore.rank_elements(model, x, z_data)
    assert ranking[0].element == 0 and ranking[-1].element == 2
    assert ranking[-1].effect == pytest.approx(0.0, abs=1e-7)
    assert all(s.kl is None for s in ranking)
    with pytest.raises(LatentlabError, match="needs a VAE"):
        explore.rank_elements(model, x, z_data, by="kl")


def test_kl_ranking_for_a_vae(vae) -> None:  # type: ignore[no-untyped-def]
    x = _x(4)
    ranking = explore.rank_elements(vae, x, torch.randn(50, 3), by="kl")
    kls = [s.kl for s in ranking]
    assert kls == sorted(kls, reverse=True) and all(k is not None and k >= 0 for k in kls)


def test_attribute_vector_is_the_difference_of_group_means() -> None:
    z = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0], [0.0, 7.0]])
    v = explore.attribute_vector(z, np.array([True, True, False, False]), np.array([2, 3]))
    assert torch.allclose(v, torch.tensor([2.0, -6.0]))
    with pytest.raises(LatentlabError, match="selects no rows"):
        explore.attribute_vector(z, np.zeros(4, dtype=bool), np.array([0]))


def test_bad_dims_and_steps_are_one_line_errors() -> None:
    lo, hi = torch.zeros(4), torch.ones(4)
    with pytest.raises(LatentlabError, match="latent element 4: out of range"):
        explore.traversal_values(lo, hi, [0, 4], 5)
    for steps in (0, 1, -3):
        with pytest.raises(LatentlabError, match="--steps"):
            explore.traversal_values(lo, hi, [0], steps)
    assert explore.check_elements([-1], 4) == [3]


def test_projection_and_plane_shapes() -> None:
    z = torch.randn(60, 5)
    xy, names = explore.project(z, "pca")
    assert xy.shape == (60, 2) and names[0].startswith("PC1")
    xy2, names2 = explore.project(z[:, :2], "pca")
    assert np.allclose(xy2, z[:, :2].numpy()) and names2 == ["z[0]", "z[1]"]
    torch.manual_seed(0)
    model = build(FCNConfig(in_shape=(1, 8, 8), hidden=(), latent_dim=2)).eval()
    images, v0, v1 = explore.plane_grid(model, torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 2.0]), 4)
    assert images.shape == (4, 4, 1, 8, 8)
    assert v0[0] == -1 and v0[-1] == 1 and v1[0] == 2 and v1[-1] == -2  # z[1] decreases down the rows
    with torch.no_grad():
        assert torch.allclose(images[0, 3], model.decode(torch.tensor([[1.0, 2.0]]))[0], atol=1e-6)


def test_encode_dataset_on_faces_is_deterministic(ae) -> None:  # type: ignore[no-untyped-def]
    faces = make_faces(6, seed=2, size=8)
    a = explore.encode_dataset(ae, faces.images, BatchSpec())
    b = explore.encode_dataset(ae, faces.images, BatchSpec(), batch_size=2)
    assert torch.allclose(a, b, atol=1e-6)


def test_the_tools_are_free_functions_of_the_package() -> None:
    import latentlab.latent as latent

    for name in ("encode_dataset", "latent_ranges", "traversal_values", "traverse", "interpolate",
                 "fit_gaussian", "sample", "rank_elements", "attribute_vector", "describe_change",
                 "FactorRegressor"):
        assert callable(getattr(latent, name)), name
