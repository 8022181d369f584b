"""The demo report's sentence on where LoTTS pays along world v3's complexity axis (scripts/demo_report.py), from
summary.json's keys as bench/world3_report.py writes them."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo_report.py"


def _report():
    spec = importlib.util.spec_from_file_location("demo_report_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_complexity_section_names_where_the_interval_is_above_one_and_warns_on_an_invalid_instrument():
    report = _report()
    summary = {"bon_pool_size": 48, "instrument_valid_v3": False,
               "success_ratio_by_complexity": {"1": [0.8, 0.5, 1.2], "4": [2.5, 1.4, 4.0], "6": [None, None, None]},
               "verifier_ratio_by_complexity": {"1": [1.1, 0.9, 1.3], "4": [2.0, 1.1, 3.0], "6": [5.0, 2.0, None]}}
    text = report._complexity_section(summary)
    assert "at 4, 6 object(s)" in text  # 1: the interval reaches below 1x; 6: Best-of-N never matched
    assert "misses some of its validity gates" in text and "never [never, never]" in text
    assert "5.00x [2.00x, never]" in text and "held-out defect area" not in text  # only measures the summary has
    summary.update(instrument_valid_v3=True, success_ratio_by_complexity={"6": [0.9, 0.7, 1.1]},
                   pool_success_rate_by_complexity={"6": 0.003})
    text = report._complexity_section(summary)
    assert "does not pay on success at any complexity" in text and "validity gates" not in text
    assert "at 6 object(s) under 1 % of samples succeed at all" in text
    # the verdict reads the goal's unit, success at real-size cost, where the summary has it
    summary["cost_ratio_real_size_by_complexity"] = {"6": [3.0, 2.0, 4.0]}
    assert "LoTTS pays on success (interval above 1x) at 6 object(s)" in report._complexity_section(summary)
    assert "has not been benchmarked" in report._complexity_section({"world_version": 2})
