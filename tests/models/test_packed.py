"""packed_linears: the same outputs as nn.Linear, and never a stale or lasting change to the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentlab.models.fcn import FCNAutoencoder, FCNConfig
from latentlab.models.packed import available, packed_linears

pytestmark = pytest.mark.skipif(not available(), reason="this torch has no MKL packed linear kernels")


def small_model() -> FCNAutoencoder:
    torch.manual_seed(0)  # 768 -> 128 -> 4 -> 128 -> 768: the two 98,304-weight layers qualify
    return FCNAutoencoder(FCNConfig(in_shape=(3, 16, 16), hidden=(128,), latent_dim=4)).eval()


def big_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear) and m.weight.numel() >= 1 << 16]


def test_outputs_match_and_the_model_is_restored() -> None:
    model = small_model()
    x = torch.rand(37, 3, 16, 16) * 2 - 1  # a row count unlike the packing hint
    with torch.no_grad():
        expected = model(x).x_hat
        with packed_linears(model, batch_size=256) as wrapped:
            assert wrapped == 2
            assert all("forward" in vars(m) for m in big_layers(model))
            got = model(x).x_hat
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert not any("forward" in vars(m) for m in model.modules())


def test_gradients_and_changed_weights_fall_back_to_linear() -> None:
    model = small_model()
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    with packed_linears(model, batch_size=8):
        out = model(x).x_hat  # gradients on: the ordinary product, differentiable
        assert out.grad_fn is not None
        out.square().mean().backward()
        with torch.no_grad():
            first = big_layers(model)[0]
            first.weight.mul_(2.0)  # the packed copy is now stale
            got = model(x).x_hat
    with torch.no_grad():
        expected = model(x).x_hat
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
