"""LoTTS mask refinement: what users expect after thresholding (components, holes, grow, feather, size)."""

import logging

from ..lotts_ops import mask_ops
from . import _preview

RESIZE_MODES = ("unchanged", "latent size (1/8)", "match image input", "match latent input")


class LoTTSRefineMask:
    CATEGORY = "LoTTS"
    FUNCTION = "refine"
    RETURN_TYPES = ("MASK", "STRING")
    RETURN_NAMES = ("mask", "area")
    OUTPUT_TOOLTIPS = ("The refined mask (a new tensor; the input is not changed).",
                       "Area covered per mask, as fractions.")
    DESCRIPTION = ("Threshold, drop small islands, fill holes, grow or shrink, feather and resize a mask, in that "
                   "order. An empty result is passed through with a warning (downstream refinement then changes "
                   "nothing), never an error.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "mask": ("MASK", {"tooltip": "Mask to refine, e.g. from 'LoTTS Defect Mask'."}),
            "threshold": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": "Pixels above this count as masked."}),
            "min_component_area": ("INT", {"default": 0, "min": 0, "max": 1 << 20, "tooltip": (
                "Islands smaller than this many pixels (at the mask's resolution) are dropped. 0 keeps all.")}),
            "fill_holes": ("BOOLEAN", {"default": True, "tooltip": "Fill background enclosed by the mask."}),
            "grow_pixels": ("INT", {"default": 0, "min": -256, "max": 256, "tooltip": (
                "Dilate (positive) or erode (negative) by this many pixels, with a round brush.")}),
            "feather_pixels": ("INT", {"default": 0, "min": 0, "max": 256, "tooltip": (
                "Gaussian soft edge radius. Soft masks make the sampler blend gradually; 0 keeps it binary.")}),
            "resize_to": (list(RESIZE_MODES), {"default": "unchanged", "tooltip": (
                "Output size: unchanged, 1/8 of the input (latent grid), or that of the optional image/latent.")}),
        }, "optional": {
            "image": ("IMAGE", {"tooltip": "Size reference for 'match image input'."}),
            "latent": ("LATENT", {"tooltip": "Size reference for 'match latent input'."}),
        }}

    def refine(self, mask, threshold, min_component_area, fill_holes, grow_pixels, feather_pixels, resize_to,
               image=None, latent=None):
        if mask.ndim == 2:
            mask = mask.unsqueeze(0)
        refined = mask_ops.refine_mask(mask.float(), threshold_value=threshold, min_area=min_component_area,
                                       grow_pixels=grow_pixels, fill=fill_holes, feather_radius=feather_pixels)
        size = _target_size(refined, resize_to, image, latent)
        if size != tuple(refined.shape[-2:]):
            refined = mask_ops.resize_mask(refined, *size)
        areas = mask_ops.mask_area(refined)
        if bool((areas == 0).any()):
            logging.warning("[LoTTS] Refine Mask: %d of %d masks are empty after refinement; those candidates "
                            "will pass through unchanged", int((areas == 0).sum()), len(areas))
        return (refined, ", ".join(f"{float(a):.3f}" for a in areas))


def _target_size(mask, resize_to, image, latent):
    if resize_to == "unchanged":
        return tuple(mask.shape[-2:])
    if resize_to == "latent size (1/8)":
        return (max(1, mask.shape[-2] // _preview.LATENT_TO_IMAGE), max(1, mask.shape[-1] // _preview.LATENT_TO_IMAGE))
    if resize_to == "match image input":
        if image is None:
            raise ValueError("image: 'match image input' needs the optional image input connected")
        return (image.shape[1], image.shape[2])
    if resize_to == "match latent input":
        if latent is None:
            raise ValueError("latent: 'match latent input' needs the optional latent input connected")
        return tuple(latent["samples"].shape[-2:])
    raise ValueError(f"resize_to: must be one of {RESIZE_MODES}, got {resize_to!r}")


NODE_CLASS_MAPPINGS = {"LoTTSRefineMask": LoTTSRefineMask}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSRefineMask": "LoTTS Refine Mask"}
