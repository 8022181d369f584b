"""Localized perturb-and-denoise in ComfyUI terms (shared by the refine and search nodes).

Spatial consistency: the sampler adds noise of step t0's level to the whole latent; inside the mask it is
fresh noise, outside it is re-imposed every step as the candidate re-noised to the current sigma
(KSamplerX0Inpaint), so both regions sit at the same noise level and no seam appears.
Temporal consistency: sampling resumes at step t0 of the schedule, not from pure noise.
Holistic consistency: the last `global_steps` steps run without the mask (a denoise-mask function).
"""

import logging

import comfy.model_management
import comfy.sample
import comfy.utils
import latent_preview
import torch

from ..lotts_ops import mask_ops, schedule
from . import _model_family


def candidate_masks(mask, samples, refinements):
    """The noise_mask for a latent batch of B candidates x k refinements, (B*k, 1, H, W) at latent size, or
    (B*k, 1, 1, H, W) for 5-D latents (B, C, T, H, W): ComfyUI reads a 4-D mask of a 5-D latent as frames and
    would spread the candidates' masks along T. A mask batch of 1 applies to every candidate; otherwise it must
    equal the candidate batch."""
    latent = samples["samples"]
    batch = latent.shape[0]
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ValueError(f"mask: expected (B, H, W), got shape {tuple(mask.shape)}")
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"mask: batch size {mask.shape[0]} does not match samples batch size {batch} "
                         f"(give one mask, or one per candidate)")
    height, width = latent.shape[-2:]
    aspect_latent, aspect_mask = width / height, mask.shape[-1] / mask.shape[-2]
    if abs(aspect_latent - aspect_mask) > 0.05 * aspect_latent:
        raise ValueError(f"mask: size {tuple(mask.shape[-2:])} has a different aspect ratio than the latent "
                         f"{(height, width)} of shape {tuple(latent.shape)}")
    mask = mask_ops.resize_mask(mask.float().clamp(0, 1), height, width).expand(batch, height, width)
    mask = mask.repeat_interleave(refinements, dim=0).unsqueeze(1)
    return mask.unsqueeze(2) if latent.ndim == 5 else mask


def output_latent(samples):
    """A copy of a LATENT dict without what sampling consumes: its noise_mask and batch_index and, as core's
    common_ksampler does, the downscale-ratio keys."""
    return {k: v for k, v in samples.items()
            if k not in ("noise_mask", "batch_index", "downscale_ratio_spacial", "downscale_ratio_temporal")}


def perturb_latent(samples, mask, refinements):
    """A new LATENT: each candidate repeated k times (candidate-major) with its noise_mask."""
    noise_mask = candidate_masks(mask, samples, refinements)
    out = output_latent(samples)
    out["samples"] = samples["samples"].repeat_interleave(refinements, dim=0)
    out["noise_mask"] = noise_mask
    empty = int((noise_mask.flatten(1).amax(1) == 0).sum())
    if empty:
        logging.warning("[LoTTS] %d of %d refinements have an empty mask: they pass through unchanged "
                        "(up to global harmonization)", empty, noise_mask.shape[0])
    return out


def with_harmonization(model, global_steps):
    """A clone of `model` whose inpainting mask is lifted for the last `global_steps` steps."""
    if global_steps <= 0:
        return model
    patched = model.clone()
    previous = patched.model_options.get("denoise_mask_function")

    def denoise_mask_function(sigma, denoise_mask, extra_options):
        if previous is not None:
            denoise_mask = previous(sigma, denoise_mask, extra_options)
        if schedule.is_harmonization_step(sigma.reshape(-1)[0], extra_options["sigmas"], global_steps):
            return torch.ones_like(denoise_mask)
        return denoise_mask

    patched.set_model_denoise_mask_function(denoise_mask_function)
    return patched


def localized_refine(model, positive, negative, samples, mask, seed, steps, cfg, sampler_name, scheduler,
                     start_step, refinements, global_steps, show_progress=True, noise=None):
    """Re-noise inside the mask at step t0 and re-denoise k times per candidate. Returns (LATENT, noise_mask).
    `noise`: the sampler's noise for the (B*k) perturbed batch (default: drawn from `seed` as KSampler does)."""
    if global_steps > steps - start_step:
        raise ValueError(f"global_steps: {global_steps} is more than the {steps - start_step} steps left after "
                         f"start step {start_step}")
    perturbed = perturb_latent(samples, mask, refinements)
    latent_image = _model_family.fix_empty_latent_channels(model, samples, perturbed["samples"])
    if noise is None:
        noise = comfy.sample.prepare_noise(latent_image, seed)
    sampling_model = with_harmonization(model, global_steps)
    callback = latent_preview.prepare_callback(sampling_model, steps) if show_progress else None
    comfy.model_management.throw_exception_if_processing_interrupted()
    refined = comfy.sample.sample(sampling_model, noise, steps, cfg, sampler_name, scheduler, positive, negative,
                                  latent_image, start_step=start_step, force_full_denoise=True,
                                  noise_mask=perturbed["noise_mask"], callback=callback,
                                  disable_pbar=not (show_progress and comfy.utils.PROGRESS_BAR_ENABLED), seed=seed)
    out = {k: v for k, v in perturbed.items() if k != "noise_mask"}
    out["samples"] = refined
    return out, perturbed["noise_mask"]
