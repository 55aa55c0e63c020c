"""What a latent space learned: disentanglement scores against known factors.

BetaVAE, FactorVAE (:mod:`.interventions`), MIG, SAP (:mod:`.information`), DCI (:mod:`.dci`),
all five for a run (:mod:`.evaluate`), ground truth (:mod:`.truth`). Active units and collapse
are in :mod:`latentlab.latent.active`; latent-size sweeps in :mod:`.sweep`.
"""

from .dci import dci  # noqa: F401
from .evaluate import SCORES, disentanglement, evaluate, evaluate_observed  # noqa: F401
from .information import mig, sap  # noqa: F401
from .interventions import beta_vae_score, factor_vae_score  # noqa: F401
from .truth import GroundTruth, ground_truth  # noqa: F401
