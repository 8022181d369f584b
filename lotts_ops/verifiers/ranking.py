"""Rank-based ensembling of verifiers (average rank, as in the inference-time-scaling literature).

Raw scores of different verifiers live on unrelated scales (NIQE ~ -5..-25, ImageReward ~ -2..2,
CLIPScore ~ 20..35), so the ensemble combines ranks within the batch instead: for each member, the image
with the lowest score gets rank 1 and the best gets rank B, ties share their average rank; the ensemble
score is the (weighted) mean of these ranks. Higher is better, like every verifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import Verifier


def average_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ranks 1..B of a 1-D score tensor, ascending (largest score -> rank B), ties averaged.

    NaN counts as the worst possible score (it ties with other NaNs). Returns float64.
    """
    s = torch.as_tensor(scores).detach().to("cpu", torch.float64).reshape(-1)
    s = torch.where(torch.isnan(s), torch.full_like(s, float("-inf")), s)
    less = (s.unsqueeze(0) < s.unsqueeze(1)).sum(dim=1).to(torch.float64)  # how many are strictly below s_i
    equal = (s.unsqueeze(0) == s.unsqueeze(1)).sum(dim=1).to(torch.float64)  # including itself
    return less + (equal + 1.0) / 2.0


def rank_average(score_lists: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> torch.Tensor:
    """Weighted mean of ``average_ranks`` over several score vectors of the same length (float64)."""
    if len(score_lists) == 0:
        raise ValueError("rank_average needs at least one score vector")
    weights = _normalized_weights(len(score_lists), weights)
    ranks = torch.stack([average_ranks(s) for s in score_lists])
    return (ranks * weights.unsqueeze(1)).sum(dim=0)


def _normalized_weights(n: int, weights) -> torch.Tensor:
    if weights is None:
        return torch.full((n,), 1.0 / n, dtype=torch.float64)
    w = torch.as_tensor([float(x) for x in weights], dtype=torch.float64)
    if w.shape[0] != n:
        raise ValueError(f"got {w.shape[0]} weights for {n} verifiers")
    if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"ensemble weights must be finite, non-negative and not all zero, got {w.tolist()}")
    return w / w.sum()


class EnsembleVerifier(Verifier):
    """Scores by the weighted average rank of its members within the batch (higher is better).

    The score of an image therefore depends on the other images of the batch: compare ensemble scores
    only within one ``score`` call (which is how selection uses them). A batch of one scores 1.0.
    """

    batch_relative = True

    def __init__(self, verifiers: Sequence[Verifier], weights: Sequence[float] | None = None, name: str | None = None):
        verifiers = list(verifiers)
        if not verifiers:
            raise ValueError("EnsembleVerifier needs at least one verifier")
        for v in verifiers:
            if not callable(getattr(v, "score", None)):
                raise TypeError(f"ensemble member {v!r} has no score(images, prompts) method")
        self.verifiers = verifiers
        self.weights = _normalized_weights(len(verifiers), weights)
        self.uses_prompt = any(getattr(v, "uses_prompt", True) for v in verifiers)
        self.name = name or "rank-ensemble(" + ", ".join(getattr(v, "name", type(v).__name__) for v in verifiers) + ")"

    def member_scores(self, images, prompts=None) -> list[torch.Tensor]:
        """Each member's own scores (B,), in member order."""
        return [v.score(images, prompts) for v in self.verifiers]

    def _score(self, images, prompts):
        return rank_average(self.member_scores(images, prompts), self.weights).to(torch.float32)
