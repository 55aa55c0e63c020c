"""Autoencoder models: one family per file, one registry, save/load as config.json + safetensors."""

from latentlab.models.base import AEOutput, Autoencoder, DiagonalGaussian
from latentlab.models.config import ModelConfig
from latentlab.models.conv import ConvAutoencoder, ConvConfig
from latentlab.models.fcn import FCNAutoencoder, FCNConfig
from latentlab.models.multi_encoder import MultiFCNAutoencoder, MultiFCNConfig
from latentlab.models.presets import PARAMETER_COUNTS, PRESETS, kind_config, preset_config
from latentlab.models.registry import FAMILIES, MODELS, build, config_from_dict, load_model, resolve_kind, save_model
from latentlab.models.vae import FCNVAE, ConvVAE, ConvVAEConfig, FCNVAEConfig, VariationalAutoencoder

__all__ = [
    "FAMILIES",
    "FCNVAE",
    "MODELS",
    "PARAMETER_COUNTS",
    "PRESETS",
    "AEOutput",
    "Autoencoder",
    "ConvAutoencoder",
    "ConvConfig",
    "ConvVAE",
    "ConvVAEConfig",
    "DiagonalGaussian",
    "FCNAutoencoder",
    "FCNConfig",
    "FCNVAEConfig",
    "ModelConfig",
    "MultiFCNAutoencoder",
    "MultiFCNConfig",
    "VariationalAutoencoder",
    "build",
    "config_from_dict",
    "kind_config",
    "load_model",
    "preset_config",
    "resolve_kind",
    "save_model",
]
