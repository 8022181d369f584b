"""Preview IMAGEs of maps and masks, at image resolution (latent x the model's latent-to-image scale, 8 for
every supported family)."""

import torch

from ..lotts_ops import defect_map

LATENT_TO_IMAGE = 8  # spatial compression of the SD1/2/XL and FLUX.1 VAEs; models carry their own (_model_family)
# A perceptually ordered blue -> cyan -> yellow -> red ramp (values in [0, 1]).
_RAMP = torch.tensor([[0.05, 0.05, 0.45], [0.0, 0.6, 0.9], [0.95, 0.9, 0.1], [0.85, 0.1, 0.05]])


def image_size(latent_shape, scale=LATENT_TO_IMAGE):
    return latent_shape[-2] * scale, latent_shape[-1] * scale


def colorize(maps):
    """(B, H, W) in [0, 1] -> (B, H, W, 3) colour ramp."""
    x = maps.clamp(0, 1) * (len(_RAMP) - 1)
    low = x.floor().long().clamp(max=len(_RAMP) - 2)
    frac = (x - low).unsqueeze(-1)
    return _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac


def heatmap_images(maps, latent_shape, scale=LATENT_TO_IMAGE):
    height, width = image_size(latent_shape, scale)
    return colorize(defect_map.resize_maps(maps.float(), height, width))


def mask_overlay(images, masks, color=(1.0, 0.15, 0.15), strength=0.5):
    """Tint the masked area of IMAGEs (B, H, W, 3); masks (B, H, W) are resized to the images."""
    masks = defect_map.resize_maps(masks.float(), images.shape[1], images.shape[2]).clamp(0, 1).unsqueeze(-1)
    tint = torch.tensor(color, dtype=images.dtype)
    return images * (1 - strength * masks) + tint * strength * masks
