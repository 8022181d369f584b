"""Defect maps for LoTTS: combine attention/noise signals into a defect probability and a top-area mask.

Maps are (B, H, W); all outputs are float32 whatever the input dtype.
"""

import math

import torch
import torch.nn.functional as F


def _check_maps(m: torch.Tensor, name: str) -> None:
    if m.ndim != 3:
        raise ValueError(f"{name} must be (B, H, W), got shape {tuple(m.shape)}")


def normalize_maps(m: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample min-max normalisation of (B, H, W) maps to [0, 1]; constant maps become zeros."""
    _check_maps(m, "m")
    m = m.float()
    low = m.amin(dim=(1, 2), keepdim=True)
    span = m.amax(dim=(1, 2), keepdim=True) - low
    # A constant map carries no location information, so it contributes nothing.
    return torch.where(span > eps, (m - low) / span.clamp_min(eps), torch.zeros_like(m))


def defect_probability(ca_diff: torch.Tensor, ca_orig: torch.Tensor, lam: float) -> torch.Tensor:
    """P = normalize(ca_diff) + lam * normalize(ca_orig), both (B, H, W); lam >= 0 weights the foreground prior."""
    _check_maps(ca_diff, "ca_diff")
    if ca_orig.shape != ca_diff.shape:
        raise ValueError(f"ca_orig shape {tuple(ca_orig.shape)} must equal ca_diff shape {tuple(ca_diff.shape)}")
    if not lam >= 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    return normalize_maps(ca_diff) + lam * normalize_maps(ca_orig)


def top_area_mask(p: torch.Tensor, area: float) -> torch.Tensor:
    """Float {0, 1} mask (B, H, W) selecting exactly round(area*H*W) highest values of p per sample.

    Ties are broken by raster order (earlier pixel wins) so the result is deterministic.
    area must lie in [0, 1]: 0 gives all zeros, 1 all ones.
    """
    _check_maps(p, "p")
    if not 0.0 <= area <= 1.0:
        raise ValueError(f"area must be in [0, 1], got {area}")
    batch, height, width = p.shape
    count = round(area * height * width)
    flat = p.reshape(batch, -1).float()
    mask = torch.zeros_like(flat)
    if count > 0:
        # Stable descending sort keeps equal values in raster order.
        order = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :count]
        mask.scatter_(1, order, 1.0)
    return mask.reshape(batch, height, width)


def noise_difference_map(eps_low: torch.Tensor, eps_high: torch.Tensor) -> torch.Tensor:
    """Mean over channels (and frames) of |eps_low - eps_high|: (B, C, H, W) or (B, C, T, H, W) -> (B, H, W)."""
    if eps_low.ndim not in (4, 5):
        raise ValueError(f"eps_low must be (B, C, H, W) or (B, C, T, H, W), got shape {tuple(eps_low.shape)}")
    if eps_high.shape != eps_low.shape:
        raise ValueError(f"eps_high shape {tuple(eps_high.shape)} must equal eps_low shape {tuple(eps_low.shape)}")
    return (eps_low.float() - eps_high.float()).abs().mean(dim=tuple(range(1, eps_low.ndim - 2)))


def resize_maps(m: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of (B, H, W) maps to (B, height, width); antialiased when shrinking."""
    _check_maps(m, "m")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height} x {width}")
    if m.shape[1:] == (height, width):
        return m.float().clone()
    downscaling = height < m.shape[1] or width < m.shape[2]
    resized = F.interpolate(
        m.float().unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False, antialias=downscaling
    )
    return resized.squeeze(1)


def defect_score(p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) mean of p inside mask (mask weights the average); 0 where the mask is empty."""
    _check_maps(p, "p")
    if mask.shape != p.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} must equal p shape {tuple(p.shape)}")
    weights = mask.float()
    total = weights.sum(dim=(1, 2))
    weighted = (p.float() * weights).sum(dim=(1, 2))
    return torch.where(total > 0, weighted / total.clamp_min(1e-12), torch.zeros_like(total))


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """AUROC of flattened scores against binary labels (Mann-Whitney, tied ranks averaged).

    Returns nan when labels hold a single class.
    """
    scores = scores.reshape(-1).double()
    labels = labels.reshape(-1)
    if scores.numel() != labels.numel():
        raise ValueError(f"scores ({scores.numel()} values) and labels ({labels.numel()} values) must match in size")
    positive = labels > 0.5
    n_pos = int(positive.sum())
    n_neg = labels.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    sorted_scores, order = torch.sort(scores)
    # Average ranks (1-based) over runs of equal scores.
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mean_rank_per_run = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(scores)
    ranks[order] = mean_rank_per_run[inverse]
    rank_sum = ranks[positive].sum().item()
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def iou(mask: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B,) intersection over union of binary masks (> 0.5); 1.0 when both are empty."""
    _check_maps(mask, "mask")
    if truth.shape != mask.shape:
        raise ValueError(f"truth shape {tuple(truth.shape)} must equal mask shape {tuple(mask.shape)}")
    a = mask > 0.5
    b = truth > 0.5
    inter = (a & b).sum(dim=(1, 2)).float()
    union = (a | b).sum(dim=(1, 2)).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
