"""Best-of-N as a curve: the expected pick of best-of-N for every N from one pool of M samples per prompt.

Reading a matching ratio at the first grid N (..., 12, 18, 27) whose mean reaches LoTTS rounds Best-of-N's cost up
(world v2: 2.28x read, 1.61x interpolated). Here one pool of M samples per prompt serves every N:
- `best_of_n_curve`: the unbiased order-statistics estimator. Sort the pool by the selecting verifier's score; the
  i-th best (1-based) is the pick of a uniformly random N-subset with probability C(M - i, N - 1) / C(M, N), so the
  expected value of the pick (any measure: verifier score, held-out defect area, success) is exact for N = 1..M.
- `pruned_curve`: Best-of-N with early pruning (sample K, keep the best `keep` share by their early score, finish
  those, pick by the final score), averaged over `draws` random K-subsets of the pool (Monte Carlo, seeded).
- `matching_n`: the continuous N at which a curve first reaches a target (linear between integer N); None
  ("never") only when the pool's M does not reach it.
- `matching_ratio`: Best-of-N's cost at that N over LoTTS's cost, on the mean over prompts, with a bootstrap
  interval over prompts (the curves and LoTTS's values are resampled together).
Pure numpy.
"""

import math

import numpy as np


def best_of_n_weights(m):
    """(M, M) array: row N-1 holds the probability that the i-th best of M is the pick of a random N-subset."""
    w = np.zeros((m, m))
    for n in range(1, m + 1):
        total = math.comb(m, n)
        for i in range(1, m - n + 2):
            w[n - 1, i - 1] = math.comb(m - i, n - 1) / total
    return w


def best_of_n_curve(scores, values=None, weights=None):
    """Expected `values` (default: the scores themselves) of the best-scored of N random pool members, N = 1..M.
    Ties in the score are broken by pool order (stable), as a selector that keeps the first best would."""
    scores = np.asarray(scores, np.float64)
    values = scores if values is None else np.asarray(values, np.float64)
    order = np.argsort(-scores, kind="stable")
    w = best_of_n_weights(len(scores)) if weights is None else weights
    return w @ values[order]


def pruned_pick(early, final, values, subset, keep):
    """Value of the pruned Best-of-N pick from one subset of pool indices."""
    subset = np.asarray(subset)
    survivors = subset[np.argsort(-np.asarray(early)[subset], kind="stable")][: max(1, round(keep * len(subset)))]
    return values[survivors[np.argmax(np.asarray(final)[survivors])]]


def pruned_curve(early, final, values, keep, sizes, draws=400, seed=0):
    """Mean pruned-Best-of-N pick over `draws` random K-subsets for each K in `sizes`."""
    rng = np.random.default_rng(seed)
    values = np.asarray(values, np.float64)
    m = len(values)
    out = []
    for k in sizes:
        picks = [pruned_pick(early, final, values, rng.choice(m, size=k, replace=False), keep) for _ in range(draws)]
        out.append(float(np.mean(picks)))
    return np.array(out)


def matching_n(curve, target, higher_better=True, ns=None):
    """Continuous N at which `curve` (values at `ns`, default 1..len) first reaches `target`; None if never.
    A target already met at the first N returns that N (Best-of-N cannot cost less than its smallest sample)."""
    curve = np.asarray(curve, np.float64)
    ns = np.arange(1, len(curve) + 1, dtype=np.float64) if ns is None else np.asarray(ns, np.float64)
    sign = 1.0 if higher_better else -1.0
    c, t = sign * curve, sign * target
    if c[0] >= t:
        return float(ns[0])
    for j in range(1, len(c)):
        if c[j] >= t:
            return float(ns[j - 1] + (ns[j] - ns[j - 1]) * (t - c[j - 1]) / (c[j] - c[j - 1]))
    return None


def matching_ratio(curves, lotts_values, lotts_cost, cost_per_n, higher_better=True, n_boot=1000, seed=0, ns=None):
    """Best-of-N's cost to match LoTTS over LoTTS's cost: [ratio, lo, hi] (95 % bootstrap over prompts) and the
    share of bootstrap draws in which the pool never matches (those count as ratio = inf at the upper end).

    `curves` (P, len(ns)) per-prompt curves; `lotts_values` (P,) LoTTS's value per prompt; `lotts_cost` its mean
    cost per prompt (same unit as `cost_per_n`, a function of the continuous N)."""
    curves, lotts_values = np.asarray(curves, np.float64), np.asarray(lotts_values, np.float64)

    def ratio(idx):
        n = matching_n(curves[idx].mean(axis=0), lotts_values[idx].mean(), higher_better, ns)
        return math.inf if n is None else cost_per_n(n) / lotts_cost

    n_point = matching_n(curves.mean(axis=0), lotts_values.mean(), higher_better, ns)
    point = ratio(np.arange(len(curves)))
    rng = np.random.default_rng(seed)
    boots = np.array([ratio(rng.integers(len(curves), size=len(curves))) for _ in range(n_boot)])
    # "never" sorts last; "lower" picks drawn values, never a blend of a ratio and the sentinel
    lo, hi = np.percentile(np.where(np.isinf(boots), 1e300, boots), [2.5, 97.5], method="lower")
    lo, hi = (math.inf if v >= 1e299 else v for v in (lo, hi))
    clean = [None if math.isinf(v) else round(float(v), 3) for v in (point, lo, hi)]
    first = float(ns[0]) if ns is not None else 1.0
    return {"ratio": clean[0], "ci": clean[1:], "never_share": round(float(np.isinf(boots).mean()), 3),
            "matching_n": None if n_point is None else round(n_point, 3),
            # Best-of-N's smallest size already reaches LoTTS (e.g. both succeed never): the ratio is only a bound
            "floored": n_point is not None and n_point == first}
