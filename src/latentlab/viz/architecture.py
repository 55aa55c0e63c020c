"""What the model is: a Keras-style layer table (torchinfo) and the module tree."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from latentlab.models.base import Autoencoder


class _Traced(nn.Module):
    """torchinfo follows tensors only: present ``forward`` as (x_hat, z) and name the layers as
    the model does (``encoder.0``, ``decoder.2``, ...)."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.model.embed(x)  # (N, D); the posterior mean for a VAE
        return self.model.decode(z), z


def summary_table(model: Autoencoder, batch_size: int = 1, depth: int = 5) -> Any:
    """torchinfo's table of layers with output shapes and parameter counts, and the totals.

    The model runs once on zeros of its input shape; BatchNorm needs more than one sample in
    training mode, so the table is taken in eval mode.
    """
    from torchinfo import summary

    was_training = model.training
    model.eval()
    try:
        return summary(_Traced(model), input_size=(batch_size, *model.in_shape), depth=depth, verbose=0,
                       col_names=("output_size", "num_params"), row_settings=("var_names",),
                       device=torch.device("cpu"))
    finally:
        model.train(was_training)
