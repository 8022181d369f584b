"""The world v3 benchmarks (bench/world3_gates.py, world3_bench.py, world3_report.py) at a tiny size through the real
ComfyUI in this process: the scripts run end to end, NFE, decodes and verifier calls are counted exactly, and the
ratios come from the pool curve."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
V3_WEIGHTS = REPO / "demo" / "weights" / "lotts_demo_world_v3.safetensors"
JUDGES = BENCH / "weights" / "judges_v3.safetensors"
COST_UNITS = BENCH / "results" / "cost_units.json"


@pytest.fixture(scope="module")
def bench_modules(comfy_env):
    for path, how in ((V3_WEIGHTS, "python -m demo.train --world 3"), (JUDGES, "python bench/judges_v3.py --retrain"),
                      (COST_UNITS, "python bench/cost_units.py")):
        if not path.is_file():
            pytest.skip(f"{path.relative_to(REPO)} absent: {how}")
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))
    import world3_bench
    import world3_cfg
    import world3_gates
    import world3_report

    return world3_gates, world3_bench, world3_report, world3_cfg


@pytest.mark.slow
def test_world3_benchmarks_smoke(comfy_env, bench_modules, tmp_path):
    gates_module, bench_module, report_module, cfg_module = bench_modules
    cfg = cfg_module.main(["--prompts", "1", "--seeds", "1", "--cfg-grid", "3,7", "--objects", "1", "--reps", "20",
                           "--calib-scenes", "4", "--out", str(tmp_path / "cfg.json")], env=comfy_env)
    assert [row["cfg"] for row in cfg["table"]] == [3.0, 7.0] and cfg["chosen_cfg"] in (3.0, 7.0)
    assert cfg_module.chosen_cfg(V3_WEIGHTS, tmp_path / "cfg.json") == cfg["chosen_cfg"]
    assert cfg_module.chosen_cfg(V3_WEIGHTS, tmp_path / "absent.json") == cfg_module.DEFAULT_CFG
    with pytest.raises(ValueError, match="other demo weights"):  # a choice made for another model is not reused
        cfg_module.chosen_cfg(REPO / "demo" / "weights" / "lotts_demo_world.safetensors", tmp_path / "cfg.json")
    with pytest.raises(ValueError, match="another model's autoencoder"):  # the checker reads one model's decodes
        gates_module.main(["--demo-weights", str(REPO / "demo" / "weights" / "lotts_demo_world.safetensors"), "--cfg", "5",
                           "--out", str(tmp_path / "other.json")], env=comfy_env)
    gates = gates_module.main(["--prompts", "1", "--seeds", "2", "--parents", "1", "--ae-images", "4", "--planted", "3",
                               "--objects", "2", "--reps", "20", "--calib-scenes", "4", "--out", str(tmp_path / "gates.json")],
                             env=comfy_env)
    assert gates["segmenter_calibration"]["chosen"]["threshold"] in gates_module.SPOT_THRESHOLDS
    per = gates["per_complexity"]["2"]
    assert set(gates_module.GATES) <= set(per) and set(per["passed"]) == set(gates_module.GATES)
    assert per["vae_psnr_db"] > 15 and 0 <= per["count_right"] <= 1
    # two parts of the complexity axis (as run_all.sh runs them on two cores), then one analysis of both
    part = ["--per-complexity", "1", "--calib-per-complexity", "1", "--calib-objects", "1", "--pool", "4",
            "--level-images", "3", "--reps", "20", "--calib-scenes", "4"]
    one = bench_module.main([*part, "--objects", "1", "--out", str(tmp_path / "one.json")], env=comfy_env)
    six = bench_module.main([*part, "--objects", "6", "--out", str(tmp_path / "six.json")], env=comfy_env)
    assert one["calib"] == six["calib"]  # the same calib prompts choose alike in every part
    assert six["entries"][0]["seed"] == 10_000 + 97 * 5  # the seed of its place in a run over every complexity
    out = bench_module.main(["--merge", str(tmp_path / "one.json"), str(tmp_path / "six.json"), "--reps", "20",
                             "--out", str(tmp_path / "bench.json")])
    assert [e["objects"] for e in out["entries"]] == [1, 6] and out["test_prompts"] == 2
    with pytest.raises(ValueError, match="overlap"):
        bench_module.main(["--merge", str(tmp_path / "one.json"), str(tmp_path / "one.json"), "--out",
                           str(tmp_path / "twice.json")])
    start = out["settings"]["start_step"]
    assert out["calib"]["t0_verifier_score"] and start == round(out["settings"]["t0"] * 20)
    for entry in out["entries"]:
        assert len(entry["pool"]["score"]) == len(entry["pool"]["early"]) == 4
        paper = entry["lotts"]["paper, 1 round"]
        # 3 seeds x 20 steps x 2 (CFG) + 3 lineages x 2 capture passes (the noise difference's two quality
        # prompts) + 3 x k = 2 re-draws from t0
        assert paper["nfe"] == 3 * 20 * 2 + 3 * 2 + 3 * 2 * (20 - start) * 2, paper
        assert paper["decodes"] == 3 + 6 and paper["verifier_calls"] == 3 + 6 + 3, paper  # parents re-scored
    result = out["results"]["6"]["paper, 1 round"]
    assert {"bon_ratio_success_nfe", "bon_ratio_success_real", "pruned_bon_ratio_success_real",
            "adherence_delta_vs_bon_equal_cost"} <= set(result)
    # equal cost: the N that LoTTS's real-size cost buys, capped at the pool
    assert 1 <= result["adherence_delta_vs_bon_equal_cost"][3] <= 4
    assert set(out["models"]) == {"demo_weights_sha256", "judges_sha256"}
    curve = out["results"]["all"]["bon_curve_mean"]["score"]
    assert len(curve) == 4 and curve[-1] >= curve[0]  # the best of 4 scores at least the mean of one
    report_module.main(["--gates", str(tmp_path / "gates.json"), "--bench", str(tmp_path / "bench.json"),
                        "--out", str(tmp_path / "w3.md"), "--summary", str(tmp_path / "summary.json")])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["world_version"] == 3 and summary["verifier_reads_prompt"] is True
    assert set(summary["success_ratio_by_complexity"]) == set(summary["defect_area_ratio_by_complexity"]) == {"1", "6"}
    assert summary["instrument_valid_v3"] in (True, False)  # one tiny gates run: a bool either way
    assert summary["auroc_noise_difference_ci"] is None and "keys_from_world_v2" in summary
    text = (tmp_path / "w3.md").read_text()
    assert "Gates per number of objects" in text and "Does the selecting verifier rank a pool" in text


def test_selection_agreement_reads_each_pool_against_the_held_out_judges(bench_modules):
    report = bench_modules[2]
    pool = {"score": [3.0, 2.0, 1.0, 0.0], "blind": [0.0, 1.0, 2.0, 3.0], "right": [True, True, False, False],
            "defective": [False, True, False, True], "success": [1.0, 0.0, 0.0, 0.0]}
    one_class = dict(pool, right=[True] * 4)
    got = report.selection_agreement({"entries": [{"objects": 2, "pool": pool}, {"objects": 2, "pool": one_class}]},
                                     reps=20)["2"]
    assert got["score_right"] == [1.0, 1.0, 1.0, 1]  # the verifier ranks right above wrong; one pool left out
    assert got["blind_right"][0] == 0.0 and got["score_clean"][0] == 0.75 and got["score_success"][3] == 2


def test_cfg_choice_prefers_the_lower_cfg_within_one_paired_standard_error(bench_modules):
    cfg_module = bench_modules[3]
    prompts = [-20.0, -10.0, -15.0, -5.0]  # scores differ far more between prompts than between cfgs
    row = lambda cfg, shift, noise: {  # noqa: E731
        "cfg": cfg, "scores": [p + shift + n for p, n in zip(prompts, noise, strict=True)],
        "verifier_score": [sum(prompts) / 4 + shift + sum(noise) / 4, 0, 0]}
    # cfg 7 better on every prompt by 1.0: paired, not a tie, though far inside an unpaired standard error
    assert cfg_module.choose([row(3.0, 0.0, [0, 0, 0, 0]), row(7.0, 1.0, [0.1, -0.1, 0.1, -0.1])]) == 7.0
    # cfg 3 ahead on two prompts, behind on two: within one paired standard error, the lower cfg
    assert cfg_module.choose([row(3.0, 0.0, [1, -1, 1, -1.2]), row(7.0, 0.0, [0, 0, 0, 0])]) == 3.0
    single = {"cfg": 3.0, "scores": [1.0], "verifier_score": [1.0, 0, 0]}
    assert cfg_module.choose([single]) == 3.0  # one sample: no standard error needed
