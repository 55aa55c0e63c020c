"""Every model family on every backbone draws: blocks account for every parameter, VAE heads and
the VQ codebook are visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentlab.models import build, kind_config
from latentlab.models.registry import FAMILIES
from latentlab.viz.architecture import draw_diagram, trace_architecture

CASES = [(family, backbone) for family, kinds in FAMILIES.items() for backbone in kinds]


@pytest.mark.parametrize(("family", "backbone"), CASES)
def test_every_family_traces_with_all_its_parameters(family: str, backbone: str) -> None:
    with torch.device("meta"):
        model = build(kind_config(family, backbone=backbone))
    arch = trace_architecture(model)
    quantiser = sum(b.params for b in arch.quantiser)
    assert arch.encoder_params + quantiser + arch.decoder_params == model.num_parameters()
    assert [name for name, _ in arch.heads] == (["mu", "logvar"] if model.is_variational else [])
    assert bool(arch.quantiser) == (family == "vq-vae")
    assert arch.decoder[-1].shape in (model.in_shape, (int(np.prod(model.in_shape)),))


def test_vq_codebook_block_names_its_size(tmp_path: Path) -> None:
    model = build(kind_config("vq-vae", codebook_size=64))
    arch = trace_architecture(model)
    assert arch.quantiser[0].label == "codebook 64 x 48" and arch.quantiser[0].shape == (64, 48)
    path = draw_diagram(model, tmp_path / "vq.png")
    with Image.open(path) as im:
        assert im.size[1] > 800 and len(np.unique(np.asarray(im.convert("L")))) > 10


def test_resnet_backbone_shows_its_residual_blocks() -> None:
    arch = trace_architecture(build(kind_config("resnet", channels=(8, 16), latent_dim=4)))
    labels = [b.label for b in arch.encoder[0]]
    assert labels[0] == "Conv2d 3→8 k4 s2 · BN · ReLU"
    assert "Conv2d 8→8 k3 s1 · BN · ReLU" in labels  # inside the residual block
