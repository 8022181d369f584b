"""Honest compute accounting for test-time scaling, in model evaluations (NFE) and the paper's unit.

NFE counts denoiser evaluations per image and conditioning: a CFG step costs 2 per image (1 when cfg == 1,
which ComfyUI evaluates without the unconditional pass), a capture pass 3 (original, high, low prompts).
The paper plots "samples per prompt": Best-of-N spends N; LoTTS with s seeds and k refinements per seed
and round is read as s * (1 + k * rounds), each refinement counted as one full sample (conservative: a
refinement from step t0 costs only (steps - t0) / steps of one).
"""


def lotts_samples_per_prompt(seeds, refinements, rounds=1):
    if seeds < 1 or refinements < 0 or rounds < 0:
        raise ValueError(f"seeds >= 1, refinements >= 0, rounds >= 0 required, got {seeds}, {refinements}, {rounds}")
    return seeds * (1 + refinements * rounds)


def equivalent_full_samples(nfe, nfe_per_full_sample):
    """NFE expressed as a number of plain full samplings of the same steps and guidance."""
    if nfe_per_full_sample <= 0:
        raise ValueError(f"nfe_per_full_sample must be positive, got {nfe_per_full_sample}")
    return nfe / nfe_per_full_sample


def planned_sampling_nfe(images, steps, cfg, evaluations_per_step=1, start_step=0):
    """NFE of sampling `images` latents from step start_step to the end with a 1-evaluation-per-step sampler."""
    passes = 1 if cfg == 1.0 else 2
    return images * (steps - start_step) * evaluations_per_step * passes


def planned_capture_nfe(images, noise_levels, noise_draws):
    return images * noise_levels * noise_draws * 3


def matching_budget_ratio(budgets_a, scores_a, budgets_b, scores_b):
    """How much more budget method B needs to reach method A's best score: min budget of B whose score >= the
    score A reaches at its largest budget, divided by that budget of A. None when B never reaches it.
    Budgets are increasing sequences; scores are the matching (mean) scores."""
    if not budgets_a or len(budgets_a) != len(scores_a) or len(budgets_b) != len(scores_b):
        raise ValueError("budgets and scores must be non-empty sequences of equal length")
    target_budget, target = budgets_a[-1], scores_a[-1]
    for budget, score in zip(budgets_b, scores_b, strict=True):
        if score >= target:
            return budget / target_budget
    return None
