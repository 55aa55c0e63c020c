"""The output Tanh works in float32 under bf16 autocast and is nn.Tanh in float32."""

from __future__ import annotations

import torch
from torch import nn

from latentlab.models.base import Tanh, out_activation


def test_output_tanh_is_float32_under_bf16_and_plain_tanh_otherwise() -> None:
    tanh = out_activation("tanh")
    assert isinstance(tanh, Tanh) and isinstance(tanh, nn.Tanh)
    x = torch.randn(64, 300) * 3
    assert torch.equal(tanh(x), nn.Tanh()(x))  # float32: the same op
    xb = x.bfloat16()
    out = tanh(xb)
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.tanh(xb.float()))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a bf16 Linear feeding it, as in training
        y = tanh(nn.Linear(300, 300)(x))
    assert y.dtype == torch.float32
