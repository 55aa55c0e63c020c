"""Each score kind on the tiny runs: shapes, signs, definitions, and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentlab.anomaly.density import fit_density
from latentlab.anomaly.scores import (
    SCORE_KINDS,
    check_kind,
    error_map,
    fit_stats,
    score_dataset,
    score_images,
    ssim_map,
)
from latentlab.errors import LatentlabError
from latentlab.runs import open_run


@pytest.fixture(scope="module")
def ae(tiny_run):
    return open_run(tiny_run)


@pytest.fixture(scope="module")
def vae(tiny_vae_run):
    return open_run(tiny_vae_run)


@pytest.mark.parametrize("kind", ["mse", "course", "ssim"])
def test_reconstruction_kinds_give_one_finite_score_per_image(ae, faces_images, kind):
    x = ae.inputs(faces_images[:10])
    scores = score_images(ae.model, x, kind)
    assert scores.shape == (10,)
    assert torch.isfinite(scores).all() and (scores >= 0).all()
    assert scores.std() > 0  # images differ, so do their scores


def test_course_score_is_sqrt_of_summed_squared_error_in_minus1_1(ae, faces_images):
    x = ae.inputs(faces_images[:6])
    with torch.no_grad():
        x_hat = ae.model.decode(ae.model.embed(x))
    expected = (x_hat - x).pow(2).flatten(1).sum(1).sqrt()
    torch.testing.assert_close(score_images(ae.model, x, "course"), expected, rtol=1e-5, atol=1e-5)
    # the same images seen in [0, 1] space carry half the error: the course score rescales it
    half = score_images(ae.model, x, "course", value_range=(0.0, 1.0))
    torch.testing.assert_close(half, 2 * expected, rtol=1e-5, atol=1e-5)
    mse = score_images(ae.model, x, "mse")
    torch.testing.assert_close(mse, expected.pow(2) / x[0].numel(), rtol=1e-4, atol=1e-7)


def test_error_map_is_per_pixel_and_averages_to_mse(ae, faces_images):
    x = ae.inputs(faces_images[:4])
    with torch.no_grad():
        x_hat = ae.model.decode(ae.model.embed(x))
    maps = error_map(x, x_hat)
    assert maps.shape == (4, 64, 64)
    torch.testing.assert_close(maps.flatten(1).mean(1), score_images(ae.model, x, "mse"))


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim_map(x, x), torch.ones(1), atol=1e-4)
    small = 1 - ssim_map(x, (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)).flatten(1).mean(1)
    large = 1 - ssim_map(x, (x + 0.5 * torch.randn_like(x)).clamp(-1, 1)).flatten(1).mean(1)
    assert (large > small).all() and (small > 0).all()
    assert ssim_map(x[:, :, :6, :6], x[:, :, :6, :6]).shape[-1] >= 1  # a window shrunk to a tiny image
    with pytest.raises(LatentlabError, match="ssim of 2x2 images: expected at least 3x3 pixels"):
        ssim_map(x[:, :, :2, :2], x[:, :, :2, :2])


def test_elbo_on_a_vae_is_mse_plus_weighted_kl(vae, faces_images):
    x = vae.inputs(faces_images[:8])
    elbo = score_images(vae.model, x, "elbo")
    mse = score_images(vae.model, x, "mse")
    kl = vae.model.encode(x).kl().detach()
    torch.testing.assert_close(elbo, mse + vae.model.config.beta * kl / x[0].numel(), rtol=1e-4, atol=1e-6)
    assert (elbo > mse).all()
    sampled = score_images(vae.model, x, "elbo", samples=4, generator=torch.Generator().manual_seed(0))
    assert sampled.shape == (8,) and torch.isfinite(sampled).all()


def test_elbo_on_a_plain_autoencoder_is_one_line_error(ae, faces_images):
    x = ae.inputs(faces_images[:2])
    with pytest.raises(LatentlabError, match="needs a variational model"):
        score_images(ae.model, x, "elbo")


def test_unknown_kind_and_missing_statistics_are_errors(ae, faces_images):
    x = ae.inputs(faces_images[:2])
    with pytest.raises(LatentlabError, match="expected one of"):
        score_images(ae.model, x, "psnr")
    for kind in ("mahalanobis", "gmm", "combined"):
        with pytest.raises(LatentlabError, match="training data"):
            score_images(ae.model, x, kind)


@pytest.mark.parametrize("kind", ["mahalanobis", "gmm", "combined"])
def test_fitted_kinds_score_noise_above_faces(ae, vae, faces_images, mixed_set, kind):
    images, labels = mixed_set
    for run in (ae, vae):
        stats, train_scores = fit_stats(run.model, faces_images, run.rule, kind, n_components=2)
        assert train_scores.shape == (len(faces_images),) and np.isfinite(train_scores).all()
        scores = score_dataset(run.model, images, run.rule, kind, stats=stats, batch_size=7)
        assert scores[labels == 1].min() > np.median(scores[labels == 0])


def test_combined_parts_are_standardised_on_training_data(ae, faces_images):
    stats, train_scores = fit_stats(ae.model, faces_images, ae.rule, "combined", parts=("mse", "ssim"))
    assert stats.parts == ("mse", "ssim") and stats.density is None
    assert abs(train_scores.mean()) < 1e-3  # each standardised part has mean 0 on the training images
    with pytest.raises(LatentlabError, match="distinct"):
        fit_stats(ae.model, faces_images, ae.rule, "combined", parts=("mse", "mse"))
    with pytest.raises(LatentlabError, match="variational"):
        fit_stats(ae.model, faces_images, ae.rule, "combined", parts=("mse", "elbo"))


def test_a_two_sided_part_flags_images_reconstructed_too_well(ae, faces_images):
    """|mse| is the absolute standardised log-error: the faces reconstructed better than usual
    score as high as those reconstructed as much worse, where the one-sided score is negative."""
    stats, train_scores = fit_stats(ae.model, faces_images, ae.rule, "combined", parts=("|mse|",))
    assert stats.parts == ("|mse|",) and (train_scores >= 0).all()  # an absolute value
    _, one = fit_stats(ae.model, faces_images, ae.rule, "combined", parts=("mse",))
    assert (one < -0.5).sum() >= 3  # faces reconstructed clearly better than the mean
    np.testing.assert_allclose(train_scores, np.abs(one), rtol=1e-5, atol=1e-6)
    x = ae.inputs(faces_images[:6])
    two = score_images(ae.model, x, "combined", parts=("|mse|",), stats=stats, value_range=ae.rule.value_range)
    assert torch.allclose(two, torch.from_numpy(np.abs(one[:6])).float(), rtol=1e-4, atol=1e-5)
    with pytest.raises(LatentlabError, match="distinct"):
        check_kind(ae.model, "combined", ("mse", "|mse|"))
    with pytest.raises(LatentlabError, match="two-sided part of mse or ssim"):
        check_kind(ae.model, "combined", ("|gmm|",))


def test_streamed_scores_equal_one_batch(ae, faces_images):
    whole = score_images(ae.model, ae.inputs(faces_images), "course").numpy()
    streamed = score_dataset(ae.model, faces_images, ae.rule, "course", batch_size=5)
    np.testing.assert_allclose(streamed, whole, rtol=1e-5)


def test_mahalanobis_density_ranks_far_points_higher():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(500, 3, generator=gen) * torch.tensor([1.0, 5.0, 0.2])
    density = fit_density(z, "mahalanobis")
    scores = density.score(torch.tensor([[0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 1.0]]))
    assert scores[0] < scores[1] < scores[2]  # 1 sd along dim 1 is nearer than 5 sd along dim 2
    gmm = fit_density(z, "gmm", n_components=2)
    assert gmm.score(torch.tensor([[0.0, 0.0, 0.0]])) < gmm.score(torch.tensor([[0.0, 0.0, 3.0]]))
    with pytest.raises(LatentlabError, match="components"):
        fit_density(z[:3], "gmm", n_components=5)


def test_every_kind_is_listed():
    assert set(SCORE_KINDS) == {"mse", "course", "ssim", "elbo", "mahalanobis", "gmm", "features", "transforms",
                                "transform-features", "combined"}


def _ssim_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
    """Fixed seeded (x, x_hat, data_range): RGB 64x64 in [-1, 1] identical, noisy, blurred; grey 28x28 noisy."""
    g = torch.Generator().manual_seed(0)
    x = F.avg_pool2d(torch.rand(4, 3, 64, 64, generator=g) * 2 - 1, 3, stride=1, padding=1)  # some local structure
    noisy = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k = (k[:, None] * k[None, :]) / 256  # 5x5 binomial blur
    blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k.expand(3, 1, 5, 5), groups=3)
    gray = torch.rand(3, 1, 28, 28, generator=g)  # [0, 1]
    gray_noisy = (gray + 0.1 * torch.randn(gray.shape, generator=g)).clamp(0, 1)
    return {"identical": (x, x.clone(), 2.0), "noisy": (x, noisy, 2.0), "blurred": (x, blurred, 2.0),
            "gray": (gray, gray_noisy, 1.0)}


# Recorded from latentlab's hand-written Gaussian-window SSIM (11x11 window, sigma 1.5, K1 0.01, K2 0.03,
# valid window positions only) before the switch to torchmetrics: per image, and per image and channel.
SSIM_PINNED = {
    "identical": ((4, 3, 54, 54), [1.0] * 4, [[1.0] * 3] * 4),
    "noisy": ((4, 3, 54, 54), [0.44914, 0.462969, 0.43768, 0.437551],
              [[0.464741, 0.435874, 0.446806], [0.481132, 0.476302, 0.431472],
               [0.445592, 0.440533, 0.426916], [0.438086, 0.421206, 0.45336]]),
    "blurred": ((4, 3, 54, 54), [0.671142, 0.68814, 0.676917, 0.674385],
                [[0.671445, 0.678768, 0.663213], [0.69828, 0.686672, 0.679466],
                 [0.680126, 0.670736, 0.679889], [0.67094, 0.668814, 0.683401]]),
    "gray": ((3, 1, 18, 18), [0.937495, 0.943942, 0.939736], [[0.937495], [0.943942], [0.939736]]),
}


@pytest.mark.parametrize("case", sorted(SSIM_PINNED))
def test_ssim_matches_the_values_pinned_before_torchmetrics(case):
    x, x_hat, data_range = _ssim_cases()[case]
    shape, per_image, per_channel = SSIM_PINNED[case]
    found = ssim_map(x, x_hat, data_range=data_range)
    assert tuple(found.shape) == shape
    torch.testing.assert_close(found.flatten(1).mean(1), torch.tensor(per_image), rtol=0, atol=1e-4)
    torch.testing.assert_close(found.flatten(2).mean(2), torch.tensor(per_channel), rtol=0, atol=1e-4)


def test_the_features_score_ranks_noise_above_faces(ae, faces_images, mixed_set):
    images, labels = mixed_set
    stats, train_scores = fit_stats(ae.model, faces_images, ae.rule, "features")
    assert stats.features is not None and len(stats.features.means) == 1  # the tiny AE has one hidden layer
    assert np.isfinite(train_scores).all()
    scores = score_dataset(ae.model, images, ae.rule, "features", stats=stats, batch_size=7)
    assert scores[labels == 1].min() > np.median(scores[labels == 0])
    with pytest.raises(LatentlabError, match="feature statistics"):
        score_images(ae.model, ae.inputs(images[:2]), "features")


def test_conv_features_pool_each_channel(faces_images):
    from latentlab.anomaly.features import capture
    from latentlab.models import build
    from latentlab.models.conv import ConvConfig

    model = build(ConvConfig(channels=(4, 8), latent_dim=3, batchnorm=True)).eval()
    with capture(model) as found, torch.no_grad():
        model.encode(torch.zeros(5, 3, 64, 64))
    assert [f.shape for f in found] == [(5, 8), (5, 16)]  # mean and std of each channel, per layer


def test_features_need_hidden_layers():
    from latentlab.models import FCNConfig, build

    model = build(FCNConfig(hidden=(), latent_dim=4))
    with pytest.raises(LatentlabError, match="no hidden layers"):
        check_kind(model, "features")
    with pytest.raises(LatentlabError, match="at most one latent density"):
        check_kind(model, "combined", ("mahalanobis", "gmm"))


def test_a_max_combination_is_the_largest_standardised_part(ae, faces_images, mixed_set):
    from latentlab.anomaly.scores import score_parts

    images, _ = mixed_set
    stats, _ = fit_stats(ae.model, faces_images, ae.rule, "combined", parts=("mse", "ssim"), combine_mode="max")
    x = ae.inputs(images)
    parts = score_parts(ae.model, x, ("mse", "ssim"))
    z = [(np.log(parts[k].double().numpy()) - stats.center[k]) / stats.scale[k] for k in ("mse", "ssim")]
    found = score_images(ae.model, x, "combined", parts=("mse", "ssim"), stats=stats).numpy()
    np.testing.assert_allclose(found, np.maximum(*z), rtol=1e-4, atol=1e-5)
    with pytest.raises(LatentlabError, match="--combine mean"):
        fit_stats(ae.model, faces_images, ae.rule, "combined", parts=("mse", "ssim"), combine_mode="mean")
