"""Mask refinement for LoTTS, pure torch: components, hole filling, grow/shrink, feathering, resizing.

Masks are (B, H, W) float in [0, 1]. Every function returns a new tensor and never modifies its input.
"""

import math

import torch
import torch.nn.functional as F


def _check_mask(mask: torch.Tensor, name: str = "mask") -> None:
    if mask.ndim != 3:
        raise ValueError(f"{name} must be (B, H, W), got shape {tuple(mask.shape)}")


def _neighbor_max(labels: torch.Tensor, connectivity: int) -> torch.Tensor:
    """Max over each pixel's neighbourhood (itself included) of a (B, H, W) integer tensor; outside = 0."""
    _, height, width = labels.shape
    padded = F.pad(labels, (1, 1, 1, 1))
    out = labels.clone()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dy, dx) == (0, 0) or (connectivity == 4 and dy != 0 and dx != 0):
                continue
            out = torch.maximum(out, padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width])
    return out


def connected_components(binary: torch.Tensor, connectivity: int = 8) -> torch.Tensor:
    """Label connected foreground (> 0.5) regions: (B, H, W) -> long labels, 0 = background, 1..n per sample.

    Components are numbered in raster order of their first pixel (as scipy.ndimage.label does).
    Each pixel starts with a key that decreases with its raster index; keys spread by neighbourhood max and
    pointer jumping (a pixel adopts the key held by the pixel its key points to), which converges in
    roughly log(diameter) rounds for blobs instead of diameter rounds.
    """
    _check_mask(binary, "binary")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    batch, height, width = binary.shape
    n_pixels = height * width
    foreground = binary > 0.5
    # key = n_pixels - raster index, so the max key of a component marks its first pixel.
    keys = torch.arange(n_pixels, 0, -1, device=binary.device).reshape(1, height, width).expand(batch, -1, -1)
    labels = torch.where(foreground, keys, torch.zeros_like(keys))
    for _ in range(n_pixels):
        spread = torch.where(foreground, _neighbor_max(labels, connectivity), 0)
        flat = spread.reshape(batch, n_pixels)
        target = (n_pixels - flat).clamp(0, n_pixels - 1)
        # The pixel a key points to lies in the same component, so its key is a valid candidate.
        jumped = torch.where(flat > 0, torch.maximum(flat, flat.gather(1, target)), flat)
        jumped = jumped.reshape(batch, height, width)
        if torch.equal(jumped, labels):
            break
        labels = jumped
    out = torch.zeros_like(labels)
    for b in range(batch):
        roots = torch.unique(labels[b][labels[b] > 0])  # ascending keys = descending first-pixel order
        if roots.numel() == 0:
            continue
        numbers = torch.arange(roots.numel(), 0, -1, device=binary.device)
        index = torch.searchsorted(roots, labels[b].clamp_min(1))
        out[b] = torch.where(labels[b] > 0, numbers[index.clamp_max(roots.numel() - 1)], 0)
    return out


def _component_sizes(labels: torch.Tensor) -> torch.Tensor:
    """Per-pixel size of the component it belongs to (0 for background), (B, H, W) long."""
    batch = labels.shape[0]
    flat = labels.reshape(batch, -1)
    n_labels = int(flat.max()) + 1 if flat.numel() else 1
    counts = torch.zeros(batch, n_labels, dtype=torch.long, device=labels.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    counts[:, 0] = 0
    return counts.gather(1, flat).reshape(labels.shape)


def remove_small_components(mask: torch.Tensor, min_area: int, connectivity: int = 8) -> torch.Tensor:
    """Zero foreground (> 0.5) components smaller than min_area pixels; kept pixels keep their soft values.

    Pixels at or below 0.5 are left as they are (they belong to no component).
    """
    _check_mask(mask)
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area}")
    if min_area <= 1:
        return mask.clone()
    sizes = _component_sizes(connected_components(mask, connectivity))
    small = (mask > 0.5) & (sizes < min_area)
    return torch.where(small, torch.zeros_like(mask), mask)


def fill_holes(mask: torch.Tensor) -> torch.Tensor:
    """Set to 1 every background (<= 0.5) region that does not touch the image border.

    Background regions use 4-connectivity (the complement of 8-connected foreground), like scipy's
    binary_fill_holes with its default structure.
    """
    _check_mask(mask)
    background = connected_components((mask <= 0.5).float(), connectivity=4)
    batch = mask.shape[0]
    border = torch.cat([background[:, 0, :], background[:, -1, :], background[:, :, 0], background[:, :, -1]], dim=1)
    n_labels = int(background.max()) + 1
    touches = torch.zeros(batch, n_labels, dtype=torch.bool, device=mask.device)
    touches.scatter_(1, border, True)
    touches[:, 0] = True  # label 0 is foreground here: never a hole
    is_hole = ~touches.gather(1, background.reshape(batch, -1)).reshape(mask.shape)
    return torch.where(is_hole, torch.ones_like(mask), mask)


def _dilate_disk(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey dilation by a disk of the given radius; pixels outside the image count as 0.

    The disk is a union of horizontal segments, so it is exact with one 1-D max pool per row offset.
    """
    height, width = mask.shape[1:]
    x = mask.unsqueeze(1)
    out = torch.zeros_like(x)
    for dy in range(-radius, radius + 1):
        half = math.isqrt(radius * radius - dy * dy)
        row = F.max_pool2d(x, kernel_size=(1, 2 * half + 1), stride=1, padding=(0, half)) if half else x
        # Shift rows by dy (zero fill): the output at y sees input row y + dy.
        shifted = F.pad(row, (0, 0, max(-dy, 0), max(dy, 0)))[:, :, max(dy, 0) : max(dy, 0) + height, :width]
        out = torch.maximum(out, shifted)
    return out.squeeze(1)


def grow(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Dilate (pixels > 0) or erode (pixels < 0) by a disk of radius |pixels|; 0 returns a copy.

    Erosion is 1 - dilate(1 - mask), so the image border never eats into a mask touching it.
    """
    _check_mask(mask)
    if pixels == 0:
        return mask.clone()
    radius = abs(int(pixels))
    if pixels > 0:
        return _dilate_disk(mask, radius)
    return 1.0 - _dilate_disk(1.0 - mask, radius)


def feather(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Gaussian blur with sigma = radius / 2 and kernel 2*radius+1, reflect padding; radius 0 copies."""
    _check_mask(mask)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if radius == 0:
        return mask.clone()
    height, width = mask.shape[1:]
    sigma = radius / 2.0
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=mask.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma * sigma))
    kernel = (kernel / kernel.sum()).to(mask.dtype)
    # Reflect padding needs pad < size; tiny masks fall back to edge replication.
    pad_mode = "reflect" if radius < min(height, width) else "replicate"
    x = F.pad(mask.unsqueeze(1), (radius, radius, radius, radius), mode=pad_mode)
    x = F.conv2d(x, kernel.reshape(1, 1, 1, -1))
    x = F.conv2d(x, kernel.reshape(1, 1, -1, 1))
    return x.squeeze(1)


def threshold(mask: torch.Tensor, value: float) -> torch.Tensor:
    """Binary float mask: 1 where mask > value."""
    _check_mask(mask)
    return (mask > value).to(mask.dtype if mask.is_floating_point() else torch.float32)


def resize_mask(mask: torch.Tensor, height: int, width: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize (B, H, W) masks to (B, height, width); smooth modes are antialiased when shrinking."""
    _check_mask(mask)
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height} x {width}")
    if mode not in ("nearest", "nearest-exact", "bilinear", "bicubic", "area"):
        raise ValueError(f"mode must be nearest, nearest-exact, bilinear, bicubic or area, got {mode!r}")
    x = mask.float().unsqueeze(1)
    kwargs = {}
    if mode in ("bilinear", "bicubic"):
        kwargs = {"align_corners": False, "antialias": height < mask.shape[1] or width < mask.shape[2]}
    out = F.interpolate(x, size=(height, width), mode=mode, **kwargs).squeeze(1)
    return out.clamp(0.0, 1.0)  # bicubic overshoots


def refine_mask(
    mask: torch.Tensor,
    *,
    threshold_value: float = 0.5,
    min_area: int = 0,
    grow_pixels: int = 0,
    fill: bool = False,
    feather_radius: int = 0,
) -> torch.Tensor:
    """Threshold, drop components under min_area, optionally fill holes, grow/shrink, feather (in that order)."""
    _check_mask(mask)
    out = threshold(mask, threshold_value)
    if min_area > 0:
        out = remove_small_components(out, min_area)
    if fill:
        out = fill_holes(out)
    if grow_pixels:
        out = grow(out, grow_pixels)
    if feather_radius:
        out = feather(out, feather_radius)
    return out


def mask_area(mask: torch.Tensor) -> torch.Tensor:
    """(B,) fraction of the image covered: the mean mask value per sample."""
    _check_mask(mask)
    return mask.float().mean(dim=(1, 2))
