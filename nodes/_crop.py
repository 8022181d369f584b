"""Crop-to-region refinement: re-denoise a padded crop around each candidate's mask instead of the whole
latent (as detailer nodes re-draw a face with some context around it), so a refinement costs in proportion to
the crop's area. Inside the crop everything is as in `_local.localized_refine`: the same noise (the full
batch's noise, cropped), the outside of the mask re-imposed every step, g global steps; outside the crop the
candidate is untouched. A crop that covers the whole latent is exactly the full-image path.
"""

import comfy.sample
import torch

from . import _local


def crop_box(mask, padding):
    """(y0, y1, x0, x1) of the mask's bounding box grown by `padding` cells on every side, inside the latent."""
    height, width = mask.shape
    ys, xs = torch.nonzero(mask > 0, as_tuple=True)
    return (max(0, int(ys.min()) - padding), min(height, int(ys.max()) + 1 + padding),
            max(0, int(xs.min()) - padding), min(width, int(xs.max()) + 1 + padding))


def refine_in_crops(model, positive, negative, samples, masks, seed, steps, cfg, sampler_name, scheduler, start_step,
                    refinements, global_steps, padding, counter=None):
    """k refinements of each candidate inside its padded crop. Returns (LATENT like localized_refine's,
    area-weighted NFE: each model evaluation weighted by its crop's share of the latent's area).
    A candidate with an empty mask passes through (k copies) and costs nothing."""
    latent = samples["samples"]
    k = refinements
    full = latent.repeat_interleave(k, dim=0)
    noise = comfy.sample.prepare_noise(comfy.sample.fix_empty_latent_channels(model, full), seed)
    out = full.clone()
    weighted = 0.0
    height, width = latent.shape[-2:]
    for b in range(latent.shape[0]):
        if not bool((masks[b] > 0).any()):
            continue
        y0, y1, x0, x1 = crop_box(masks[b], padding)
        crop = {"samples": latent[b:b + 1, ..., y0:y1, x0:x1]}
        before = counter.count if counter is not None else 0
        refined, _ = _local.localized_refine(model, positive, negative, crop, masks[b:b + 1, y0:y1, x0:x1], seed, steps,
                                             cfg, sampler_name, scheduler, start_step, k, global_steps,
                                             show_progress=False, noise=noise[b * k:(b + 1) * k, ..., y0:y1, x0:x1])
        out[b * k:(b + 1) * k, ..., y0:y1, x0:x1] = refined["samples"]
        if counter is not None:
            weighted += (counter.count - before) * (y1 - y0) * (x1 - x0) / (height * width)
    result = _local.output_latent(samples)
    result["samples"] = out
    return result, weighted
