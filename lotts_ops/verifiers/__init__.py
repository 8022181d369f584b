"""Verifiers: score a batch of images (and prompts), higher is better. See ``base.Verifier``.

No ComfyUI import anywhere in this package. The no-reference scorers (NIQE, BRISQUE) need only numpy/scipy
and their parameter files from PyPI wheels; the reward models need transformers, imported lazily by
``hf_models`` when a model is built.
"""

from .base import LOTTS_VERIFIER, Verifier, check_images, images_to_uint8, normalize_prompts
from .brisque import BRISQUEVerifier, brisque_rgb
from .niqe import NIQEVerifier, niqe_rgb
from .ranking import EnsembleVerifier, average_ranks, rank_average
from .reward_models import (
    AestheticVerifier,
    CLIPSimilarityVerifier,
    ImageRewardModule,
    ImageRewardVerifier,
    ManagedModule,
    clip_preprocess,
    mlp_head_from_state_dict,
)

__all__ = [
    "LOTTS_VERIFIER",
    "AestheticVerifier",
    "BRISQUEVerifier",
    "CLIPSimilarityVerifier",
    "EnsembleVerifier",
    "ImageRewardModule",
    "ImageRewardVerifier",
    "ManagedModule",
    "NIQEVerifier",
    "Verifier",
    "average_ranks",
    "brisque_rgb",
    "check_images",
    "clip_preprocess",
    "images_to_uint8",
    "mlp_head_from_state_dict",
    "niqe_rgb",
    "normalize_prompts",
    "rank_average",
]
