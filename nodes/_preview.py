"""Preview IMAGEs of maps and masks, at image resolution (latent x the model's latent-to-image scale, 8 for
every supported family)."""

import math

import comfy.utils
import numpy as np
import torch
from PIL import Image

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


def tiled(images, columns=None):
    """(N, H, W, 3) in [0, 1] -> one PIL image of the tiles (for progress-bar previews)."""
    n, height, width = images.shape[:3]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = Image.new("RGB", (columns * width, rows * height))
    pixels = (images.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    for i in range(n):
        canvas.paste(Image.fromarray(pixels[i]), ((i % columns) * width, (i // columns) * height))
    return canvas


class StageProgress:
    """ComfyUI's progress bar advanced once per stage, each time with a picture of what the stage made (shown on
    the node while it runs, sent to API clients as preview frames). Every advance is also an interruption point."""

    def __init__(self, total, max_size=512):
        self.bar = comfy.utils.ProgressBar(total)
        self.max_size = max_size

    def advance(self, images=None):
        preview = None if images is None else ("JPEG", tiled(images), self.max_size)
        self.bar.update_absolute(self.bar.current + 1, self.bar.total, preview)
