"""Defect regions instead of a fixed top-r area (pure torch).

The paper re-denoises the top r of the defect map (r = 0.5 by default) whatever the image holds. A region
mask follows the map instead: the connected components of P >= threshold (P normalised to [0, 1] per image),
without components smaller than `min_area`, and at most `max_area` of the image in all (the strongest
components first, by their peak). An image whose map has no such component gets an empty mask: nothing to
re-denoise there, and the caller saves the refinement's compute.
"""

import torch

from . import defect_map, mask_ops


def region_masks(p: torch.Tensor, threshold: float = 0.6, min_area: float = 0.01, max_area: float = 0.3):
    """(B, H, W) map -> (B, H, W) float {0, 1} mask of its strongest connected regions.

    threshold: on the per-image normalised map, in (0, 1]; min_area / max_area: fractions of the image.
    """
    if p.ndim != 3:
        raise ValueError(f"p must be (B, H, W), got shape {tuple(p.shape)}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not 0.0 <= min_area <= max_area <= 1.0:
        raise ValueError(f"need 0 <= min_area <= max_area <= 1, got min_area {min_area}, max_area {max_area}")
    normalised = defect_map.normalize_maps(p.float())
    labels = mask_ops.connected_components((normalised >= threshold).float())
    batch, height, width = p.shape
    cells = height * width
    min_cells, max_cells = max(1, round(min_area * cells)), round(max_area * cells)
    out = torch.zeros(batch, height, width)
    for b in range(batch):
        components = []
        for label in range(1, int(labels[b].max()) + 1):
            member = labels[b] == label
            size = int(member.sum())
            if size >= min_cells:
                components.append((float(normalised[b][member].max()), size, member))
        used = 0
        for _, size, member in sorted(components, key=lambda c: -c[0]):  # strongest peak first
            if used + size <= max_cells:
                out[b][member] = 1.0
                used += size
    return out


def split_regions(mask: torch.Tensor):
    """One (H, W) mask into its connected regions: a list of (H, W) float {0, 1} masks, raster order."""
    labels = mask_ops.connected_components(mask[None].float())[0]
    return [(labels == label).float() for label in range(1, int(labels.max()) + 1)]
