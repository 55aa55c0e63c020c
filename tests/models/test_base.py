"""Autoencoder.device / .dtype: those of the first parameter, cpu / float32 without parameters."""

from __future__ import annotations

import torch
from torch import nn

from latentlab.models import Autoencoder, FCNConfig, build
from latentlab.models.base import AEOutput


def tiny() -> Autoencoder:
    return build(FCNConfig(in_shape=(1, 4, 4), hidden=(8,), latent_dim=2))


def test_device_and_dtype_follow_the_parameters() -> None:
    model = tiny()
    assert model.device == torch.device("cpu") and model.dtype == torch.float32
    model.to(torch.float64)
    assert model.dtype == torch.float64 and model.device == torch.device("cpu")
    x = torch.rand(3, *model.in_shape, dtype=model.dtype, device=model.device)
    assert model(x).x_hat.dtype == torch.float64
    model.to(torch.bfloat16)
    assert model.dtype == torch.bfloat16


def test_device_on_meta() -> None:
    with torch.device("meta"):
        model = tiny()
    assert model.device.type == "meta" and model.dtype == torch.float32


class Identity(Autoencoder):
    """An autoencoder without parameters."""

    kind = "identity"

    def __init__(self) -> None:
        super().__init__()
        self.config = FCNConfig(in_shape=(1, 2, 2), hidden=(), latent_dim=4)
        self.latent_dim = 4
        self.encoder = nn.Flatten()
        self.decoder = nn.Identity()


def test_device_and_dtype_without_parameters() -> None:
    model = Identity().to(torch.float64)
    assert model.device == torch.device("cpu") and model.dtype == torch.float32
    assert isinstance(model(torch.rand(2, 1, 2, 2)), AEOutput)
