"""bench/real_size_flux_depth.py: the depth fit and the shares it extrapolates, on timings of a known cost model."""

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))
import real_size_flux_depth as depth  # noqa: E402

DEPTHS = [(1, 1), (2, 1), (1, 2), (2, 2), (4, 4)]
COST = {"plain": (0.5, 10.0, 6.0), "capture": (1.0, 40.0, 17.0), "within": (0.7, 33.0, 18.0)}  # fixed, double, single


def timings(noise=0.0):
    return [{"double": d, "single": s, **{kind: {"seconds": f + a * d + b * s + noise * (-1) ** i,
                                                  "cpu_seconds": f + a * d + b * s}
                                          for kind, (f, a, b) in COST.items()}}
            for i, (d, s) in enumerate(DEPTHS)]


def test_the_fit_recovers_the_cost_model_and_extrapolates_the_shares_to_full_depth():
    result = depth.analyse(timings(), DEPTHS, "wall", levels=1, steps=28)
    for kind, (f, a, b) in COST.items():
        fitted = result["fit_seconds"][kind]
        assert fitted["fixed"] == pytest.approx(f) and fitted["per_double_block"] == pytest.approx(a)
        assert fitted["per_single_block"] == pytest.approx(b)
        assert result["extrapolation_check"][kind]["depth"] == [4, 4]
        assert result["extrapolation_check"][kind]["relative_error"] == pytest.approx(0.0, abs=1e-9)
    assert result["extrapolation_check_passed"]
    at = {kind: f + a * 19 + b * 38 for kind, (f, a, b) in COST.items()}
    full = result["at_full_depth"]
    assert full["capture_share_of_full_run"] == pytest.approx(at["capture"] / (at["capture"] + 28 * at["plain"]))
    extra = at["within"] - at["plain"]
    assert full["within_sampling_capture_share_of_full_run"] == pytest.approx(extra / (extra + 28 * at["plain"]))


def test_noisy_timings_show_in_the_residuals_and_the_check():
    result = depth.analyse(timings(noise=0.5), DEPTHS, "wall", levels=1, steps=28)
    assert max(abs(r) for r in result["fit_seconds"]["plain"]["residuals"]) > 0.1
    assert result["extrapolation_check"]["plain"]["relative_error"] != pytest.approx(0.0, abs=1e-3)
    assert not depth.analyse(timings(noise=8.0), DEPTHS, "wall", levels=1, steps=28)["extrapolation_check_passed"]
    clean = depth.analyse(timings(noise=0.5), DEPTHS, "cpu", levels=1, steps=28)  # the other clock is noise-free here
    assert clean["extrapolation_check"]["plain"]["relative_error"] == pytest.approx(0.0, abs=1e-9)


def test_depths_that_cannot_separate_the_block_kinds_are_refused():
    with pytest.raises(ValueError, match="both block counts to vary independently"):
        depth.fit([(1, 1), (2, 2), (4, 4)], [1.0, 2.0, 4.0])


def test_a_within_sampling_step_faster_than_a_plain_one_is_an_error_not_a_zero_share():
    with pytest.raises(ValueError, match="measured faster than a plain one"):
        depth.shares(plain=10.0, capture=30.0, within_step=9.0, levels=1, steps=28)
