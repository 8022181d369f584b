"""Early pruning of candidates (TTSnap-style), shared by the Best-of-N and LoTTS search.

Every candidate runs the first `at_step` steps; the model's predicted clean image (x0) at that point is decoded
and scored by the verifier, and only the best `keep` fraction per latent item finishes its sampling, resuming
from the same noisy latent without new noise (exactly how KSamplerAdvanced chains two halves of a schedule).
A pruned candidate costs `at_step` steps instead of all of them.
"""

from dataclasses import dataclass

import comfy.model_management
import comfy.sample
import torch


@dataclass
class Pruning:
    at_step: int
    keep: float

    def survivors_per_item(self, per_item):
        return max(1, min(per_item, round(self.keep * per_item)))


def check(pruning, steps):
    if pruning is None:
        return
    if not 0 < pruning.at_step < steps:
        raise ValueError(f"prune_at_step: must be between 1 and steps - 1 ({steps - 1}), got {pruning.at_step}")
    if not 0.0 < pruning.keep <= 1.0:
        raise ValueError(f"prune_keep: must be in (0, 1], got {pruning.keep}")


def sample_pruned(model, vae, verifier, repeated, noise, settings, prompt, seed, items, per_item, pruning, decode,
                  finish=None):
    """(finished latents of the survivors, their indices into the item-major batch, the early scores of all).
    `finish(partial latents)`, if given, finishes the survivors from pruning.at_step instead of a plain sampler
    (capture within sampling)."""
    x0 = {}

    def keep_prediction(step, denoised, x, total_steps):
        x0["x0"] = denoised

    comfy.model_management.throw_exception_if_processing_interrupted()
    partial = comfy.sample.sample(model, noise, settings.steps, settings.cfg, settings.sampler_name, settings.scheduler,
                                  settings.positive, settings.negative, repeated, last_step=pruning.at_step,
                                  force_full_denoise=False, callback=keep_prediction, disable_pbar=True, seed=seed)
    previews = decode(vae, model.model.process_latent_out(x0["x0"].to(partial.device)))
    early = verifier.score(previews, [prompt] * previews.shape[0])
    keep_n = pruning.survivors_per_item(per_item)
    survivors = []
    for i in range(items):
        block = early[i * per_item:(i + 1) * per_item]
        best = torch.sort(block, descending=True, stable=True).indices[:keep_n]
        survivors.extend(sorted(i * per_item + int(j) for j in best))
    comfy.model_management.throw_exception_if_processing_interrupted()
    kept = partial[survivors]
    if finish is not None:
        return finish(kept), survivors, early
    finished = comfy.sample.sample(model, torch.zeros_like(kept), settings.steps, settings.cfg, settings.sampler_name,
                                   settings.scheduler, settings.positive, settings.negative, kept, disable_noise=True,
                                   start_step=pruning.at_step, force_full_denoise=True, disable_pbar=True, seed=seed)
    return finished, survivors, early
