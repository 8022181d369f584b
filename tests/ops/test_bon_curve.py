"""bench/bon_curve.py: the order-statistics Best-of-N estimator against brute force over every subset."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))
import bon_curve  # noqa: E402


@pytest.mark.parametrize("m,seed", [(5, 0), (7, 1), (8, 2)])
def test_curve_equals_the_mean_over_all_subsets(m, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=m)
    scores[2] = scores[4]  # a tie: broken by pool order, as the estimator says
    values = rng.uniform(size=m)
    curve = bon_curve.best_of_n_curve(scores, values)
    for n in range(1, m + 1):
        picks = []
        for subset in itertools.combinations(range(m), n):
            best = max(subset, key=lambda i: (scores[i], -i))  # first of equal scores wins
            picks.append(values[best])
        assert curve[n - 1] == pytest.approx(np.mean(picks), abs=1e-12), n
    assert np.allclose(bon_curve.best_of_n_weights(m).sum(axis=1), 1.0)
    assert curve[-1] == pytest.approx(values[int(np.argmax(scores))])  # N = M picks the pool's best
    assert curve[0] == pytest.approx(values.mean())  # N = 1 is a random sample


def test_pruned_curve_matches_brute_force_in_expectation():
    rng = np.random.default_rng(3)
    early, final = rng.normal(size=6), rng.normal(size=6)
    final = early + 0.5 * final
    values = rng.uniform(size=6)
    exact = np.mean([bon_curve.pruned_pick(early, final, values, np.array(s), 0.5)
                     for s in itertools.combinations(range(6), 4)])
    mc = bon_curve.pruned_curve(early, final, values, 0.5, [4], draws=4000, seed=0)[0]
    assert mc == pytest.approx(exact, abs=0.02)


def test_matching_n_interpolates_and_says_never():
    curve = np.array([0.2, 0.5, 0.6, 0.65])
    assert bon_curve.matching_n(curve, 0.55) == pytest.approx(2.5)
    assert bon_curve.matching_n(curve, 0.1) == 1.0
    assert bon_curve.matching_n(curve, 0.9) is None
    assert bon_curve.matching_n(-curve, -0.55, higher_better=False) == pytest.approx(2.5)  # lower is better


def test_matching_ratio_and_its_interval():
    curves = np.tile(np.array([0.2, 0.5, 0.6, 0.65]), (10, 1))
    out = bon_curve.matching_ratio(curves, np.full(10, 0.55), lotts_cost=1.0, cost_per_n=lambda n: 2.0 * n, n_boot=50)
    assert out["ratio"] == pytest.approx(5.0) and out["ci"] == pytest.approx([5.0, 5.0]) and out["matching_n"] == 2.5
    never = bon_curve.matching_ratio(curves, np.full(10, 0.9), 1.0, lambda n: n, n_boot=20)
    assert never["ratio"] is None and never["never_share"] == 1.0


def test_an_interval_at_the_edge_of_never_is_a_drawn_ratio_or_never_not_a_blend_with_the_sentinel():
    # 21 prompts where Best-of-N matches LoTTS at N = 2.5 and one where it never does: about 2.5 % of the resamples
    # never match, so the upper percentile falls between a finite ratio and the "never" sentinel
    curves = np.vstack([np.tile([0.2, 0.5, 0.6, 0.65], (21, 1)), np.zeros((1, 4))])
    out = bon_curve.matching_ratio(curves, np.full(22, 0.55), 1.0, lambda n: n, n_boot=400, seed=1)
    assert 0 < out["never_share"] < 0.05
    assert out["ci"][1] is None or out["ci"][1] <= 4.0  # the pool's largest N costs 4: no finite ratio lies beyond
