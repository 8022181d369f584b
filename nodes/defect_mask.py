"""LoTTS stage 2: the defect map P and the mask M = top r% of P."""

import json

import torch

from ..lotts_ops import defect_map
from . import _preview, _region_inputs
from .attention_capture import ATTENTION_TYPE

SIGNALS = ("attention", "noise difference", "attention + noise difference")


def defect_probability_from_capture(attention, signal, foreground_weight, self_attention_propagation):
    """P at latent resolution, (B, H, W): norm(CA_low - CA_high) + lambda * norm(CA_orig), or the
    predicted-noise difference, or the mean of both (each normalised)."""
    if signal not in SIGNALS:
        raise ValueError(f"signal: must be one of {SIGNALS}, got {signal!r}")
    if signal != "noise difference" and attention.get("maps") is None:
        raise ValueError(f"signal: '{signal}' needs attention maps, and this capture has none "
                         f"({attention.get('family_display', 'this family')} has no attention hook); use 'noise difference'")
    if signal == "noise difference":
        return defect_map.normalize_maps(attention["noise_difference"])
    kind = "ca_prop" if self_attention_propagation else "ca"
    maps = attention["maps"]
    p_attention = defect_map.defect_probability(maps["low"][kind] - maps["high"][kind], maps["orig"][kind],
                                                foreground_weight)
    if signal == "attention":
        return p_attention
    return 0.5 * (defect_map.normalize_maps(p_attention) + defect_map.normalize_maps(attention["noise_difference"]))


class LoTTSDefectMask:
    CATEGORY = "LoTTS"
    FUNCTION = "extract"
    RETURN_TYPES = ("MASK", "MASK", "STRING", "IMAGE")
    RETURN_NAMES = ("mask", "defect_map", "defect_scores", "preview")
    OUTPUT_TOOLTIPS = (
        "Binary defect mask at image resolution (latent x the model's scale: 8 for SD and FLUX.1, 16 for FLUX.2): "
        "the top area_ratio of the defect map, one per candidate.",
        "The soft defect map P in [0, 1] at image resolution (for your own thresholding).",
        "JSON list: per candidate, the mean of P inside its mask (higher = stronger defect evidence).",
        "Heatmap of P with the mask outline tinted, per candidate.",
    )
    DESCRIPTION = ("Turns captured quality-prompt attention into a defect map P = norm(SA@(CA_low - CA_high)) + "
                   "lambda * norm(SA@CA_orig) and keeps the top area_ratio of it as the mask. An empty (0) or full "
                   "(1) area is allowed: downstream nodes pass through or resample globally.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "attention": (ATTENTION_TYPE, {"tooltip": "From 'LoTTS Quality-Prompt Attention Capture'."}),
            "area_ratio": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "r: fraction of the image to re-denoise (the paper's default and best: 0.5).")}),
            "foreground_weight": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 10.0, "step": 0.05, "tooltip": (
                "lambda: weight of the original prompt's attention (a foreground prior) added to the "
                "low-minus-high contrast. 0 = contrast only.")}),
            "signal": (list(SIGNALS), {"default": "attention", "tooltip": (
                "attention: the paper's cross-attention contrast. noise difference: |eps_low - eps_high|, the "
                "difference of the model's predictions under the two quality prompts: every model family, the only "
                "signal for families without an attention hook (PixArt, HunyuanDiT, ...). "
                "Or the mean of both.")}),
            "self_attention_propagation": ("BOOLEAN", {"default": True, "tooltip": (
                "Propagate cross-attention through the same layer's self-attention (SA @ CA) before "
                "contrasting, as in the paper. Off = raw cross-attention.")}),
        }, "optional": _region_inputs.region_inputs()}

    def extract(self, attention, area_ratio, foreground_weight, signal, self_attention_propagation,
                mask_mode=_region_inputs.MASK_MODES[0], region_threshold=0.6, region_min_area=0.01,
                region_max_area=0.3):
        p = defect_probability_from_capture(attention, signal, foreground_weight, self_attention_propagation)
        p = defect_map.normalize_maps(p)
        mask_latent = _region_inputs.choose_mask(p, mask_mode, area_ratio, region_threshold, region_min_area,
                                                 region_max_area)
        scores = defect_map.defect_score(p, mask_latent)
        height, width = _preview.image_size(attention["latent_shape"],
                                            attention.get("latent_to_image", _preview.LATENT_TO_IMAGE))
        mask = torch.nn.functional.interpolate(mask_latent.unsqueeze(1), size=(height, width), mode="nearest")[:, 0]
        soft = defect_map.resize_maps(p, height, width).clamp(0, 1)
        preview = _preview.mask_overlay(_preview.colorize(soft), mask, color=(1.0, 1.0, 1.0), strength=0.35)
        return (mask, soft, json.dumps([round(float(s), 4) for s in scores]), preview)


NODE_CLASS_MAPPINGS = {"LoTTSDefectMask": LoTTSDefectMask}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSDefectMask": "LoTTS Defect Mask"}
