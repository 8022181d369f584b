"""The region-mask inputs shared by LoTTS Defect Mask and LoTTS Search, and the mask they choose."""

from ..lotts_ops import defect_map, regions

MASK_MODES = ("top area (paper)", "defect regions")


def region_inputs():
    return {
        "mask_mode": (list(MASK_MODES), {"default": MASK_MODES[0], "tooltip": (
            "'top area (paper)': re-denoise the top area_ratio of the defect map, whatever the image holds. "
            "'defect regions': only the map's connected regions above region_threshold (area between the two "
            "limits); a candidate without such a region gets an empty mask (the search then spends no refinement "
            "on it).")}),
        "region_threshold": ("FLOAT", {"default": 0.6, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": (
            "'defect regions': threshold on the defect map normalised to 0..1 per image.")}),
        "region_min_area": ("FLOAT", {"default": 0.01, "min": 0.0, "max": 1.0, "step": 0.005, "tooltip": (
            "'defect regions': drop regions smaller than this fraction of the image.")}),
        "region_max_area": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
            "'defect regions': at most this fraction of the image in all (strongest regions first).")}),
    }


def masks_for(p, local):
    """The mask a search round re-denoises, from its LocalSettings."""
    return choose_mask(p, local.mask_mode, local.area_ratio, local.region_threshold, local.region_min_area,
                       local.region_max_area)


def choose_mask(p, mask_mode, area_ratio, region_threshold, region_min_area, region_max_area):
    """The paper's top-r area of the map, or its strongest connected regions (empty where none stands out)."""
    if mask_mode == MASK_MODES[0]:
        return defect_map.top_area_mask(p, area_ratio)
    if mask_mode == MASK_MODES[1]:
        return regions.region_masks(p, region_threshold, region_min_area, region_max_area)
    raise ValueError(f"mask_mode: must be one of {MASK_MODES}, got {mask_mode!r}")
