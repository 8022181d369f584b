"""The quality benchmarks (bench/) at a tiny size, so the scripts cannot rot: judges, localization, quality vs
compute, each end to end through the real ComfyUI in this process, writing JSON + Markdown to a temp dir."""

import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
DEMO_WEIGHTS = REPO / "demo" / "weights" / "lotts_demo_world.safetensors"
SCORERS = BENCH / "weights" / "world_scorers.safetensors"


@pytest.fixture(scope="module")
def bench(comfy_env):
    if not DEMO_WEIGHTS.is_file():
        pytest.skip(f"demo weights absent ({DEMO_WEIGHTS.relative_to(REPO)}): train them with python -m demo.train")
    if not SCORERS.is_file():
        pytest.skip(f"bench judges absent ({SCORERS.relative_to(REPO)}): python bench/world_scorers.py --retrain")
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))
    import common

    return common.Bench(env=comfy_env, threads=None)


def test_world_scorers_smoke(bench, tmp_path):
    import world_scorers

    info = world_scorers.main(["--test-images", "24", "--roundtrip", "12", "--out", str(tmp_path / "ws.json")], bench=bench)
    for key in ("test", "test_vae_roundtrip"):
        assert 0.0 <= info[key]["verifier_auroc"] <= 1.0
    assert (tmp_path / "ws.md").read_text().startswith("## The world judges")
    scores = bench.verifier.score(bench.vae_decode(bench.vae_encode([bench.world.sample(0, "test")["image"]])), "x")
    assert scores.shape == (1,)


def test_localization_smoke(bench, tmp_path):
    import localization

    out = localization.main(["--n-test", "3", "--n-calib", "2", "--n-iqa", "1", "--bootstrap", "20", "--no-plot",
                             "--out", str(tmp_path / "loc.json")], bench=bench)
    methods = {r["method"]: r for r in out["test"]["results"]}
    assert "random map" in methods and any("CONTROL" in m for m in methods)
    lotts = next(r for m, r in methods.items() if m.startswith("LoTTS attention: SA"))
    assert lotts["n_images"] == 3 and 0.0 <= lotts["auroc_mean"] <= 1.0
    assert json.loads((tmp_path / "loc.json").read_text())["calib"]["chosen"]["levels"]
    paired = {(d["a"], d["b"]): d for d in out["test"]["paired"]}
    noise = paired[("noise difference |eps_low - eps_high|", "NEG. CONTROL (neutral words): noise difference")]
    a, b = methods[noise["a"]]["auroc_per_image"], methods[noise["b"]]["auroc_per_image"]
    assert abs(noise["mean"] - sum(x - y for x, y in zip(a, b, strict=True)) / 3) < 1e-6
    assert "| defect map |" in (tmp_path / "loc.md").read_text()


def test_quality_vs_compute_smoke(bench, tmp_path):
    import quality_vs_compute

    out = quality_vs_compute.main(["--prompts", "1", "--bon-n", "1,2,3", "--lotts-seeds", "1", "--steps", "3",
                                   "--t0", "0.5", "--global-steps", "1", "--no-rounds2", "--change-prompts", "1",
                                   "--capture", "defaults", "--no-plot", "--out", str(tmp_path / "qvc.json")],
                                  bench=bench)
    entry = out["entries"][0]
    assert entry["nesting_checked"] and [b["nfe"] for b in entry["bon"]] == [6, 12, 18]
    lotts = entry["lotts"][-1]
    assert lotts["samples_per_prompt"] == 3
    assert lotts["nfe"] == sum(lotts["nfe_breakdown"].values())
    change = out["outside_change"]
    assert change["g=0"]["latent_outside"] < 1e-4  # outside the mask stays on its trajectory
    sources = change["mask_sources_by_t0_step"][str(out["start_step"])]
    whole = sources["whole image (r = 1, SDEdit-like)"]
    assert math.isnan(whole["latent_outside"]) and whole["latent_inside"] > 0  # nothing lies outside a full mask
    assert sources["LoTTS defect map"]["refinements"] == 2
    oracle = sources["oracle: the held-out segmenter's defect spots, one cell margin"]
    assert oracle["refinements"] == 2 and change["fresh_seed_baseline"]["refinements"] == 2
    assert out["world_version"] == bench.world.WORLD_VERSION
    assert "Best-of-N first matches" in (tmp_path / "qvc.md").read_text()
    assert "fresh seed instead" in (tmp_path / "qvc.md").read_text()


def test_adherence_checker_reads_renders(bench):
    import adherence

    checker = adherence.load()
    scenes = [bench.world.sample(i, "test") for i in range(30_000, 30_008)]
    images = __import__("numpy").stack([s["image"] for s in scenes])
    own = adherence.rates(checker.check(images, [s["prompt"] for s in scenes]))
    other = adherence.rates(checker.check(images, [s["prompt"] for s in scenes[1:] + scenes[:1]]))
    assert own["shape_correct"] > other["shape_correct"] and own["colour_present"] > other["colour_present"]


def test_instrument_and_summary_smoke(bench, tmp_path, monkeypatch):
    import instrument
    import summary

    out = instrument.main(["--prompts", "2", "--seeds", "2", "--autoencoder-images", "4", "--parents", "2",
                           "--fresh", "2", "--localization-images", "2", "--steps", "3", "--reps", "20",
                           "--out", str(tmp_path / "instrument.json")], bench=bench)
    s = out["summary"]
    assert 0 <= s["prompt_colour_present"] <= 1 and 0 <= s["segmenter_fp_clean_roundtrip"] <= 1
    assert s["vae_psnr_db"] > 10 and out["world_version"] == bench.world.WORLD_VERSION
    text = (tmp_path / "instrument.md").read_text()
    assert "## Gates" in text and "re-draw diversity ratio" in text
    monkeypatch.setattr(summary, "RESULTS", tmp_path)
    monkeypatch.setattr(summary, "write_json", lambda name, data: tmp_path / name)
    built = summary.build()
    assert built["vae_psnr_db"] == s["vae_psnr_db"] and built["bon_over_lotts_nfe_ratio"] is None
    assert "bon_over_lotts_nfe_ratio" in built["not_measured"]


def test_search_variants_smoke(bench, tmp_path, monkeypatch):
    import search_variants

    monkeypatch.setattr(search_variants, "BON_N", (1, 2, 4))
    out = search_variants.main(["--prompts", "1", "--steps", "4", "--out", str(tmp_path / "sv.json")], bench=bench)
    variants = out["entries"][0]["variants"]
    assert set(variants) == set(search_variants.VARIANTS)
    paper, budget = variants["paper"], variants["+ budget, best-first"]
    assert budget["nfe"] <= paper["nfe"]  # the budget is the paper's NFE
    assert variants["+ crop to region"]["nfe_area_weighted"] <= variants["+ crop to region"]["nfe"]
    assert [p["nfe"] for p in out["entries"][0]["pruned_bon"]] == sorted(p["nfe"] for p in out["entries"][0]["pruned_bon"])
    assert "Best-of-N / variant" in (tmp_path / "sv.md").read_text()


def test_capture_modes_smoke(bench, tmp_path):
    """Both capture modes on the same seeds: costs counted (within sampling spares the original prompt's passes),
    AUROCs in range, the mode chosen on calib for each signal."""
    import capture_modes

    out = capture_modes.main(["--calib", "1", "--test", "2", "--seeds", "2", "--reps", "20",
                              "--out", str(tmp_path / "cm.json")], bench=bench)
    levels = len(capture_modes.LEVELS)
    assert out["capture_nfe_per_seed"]["test"] == {"re-noised (paper)": 3 * levels, "within sampling": 2 * levels}
    for signal in capture_modes.SIGNALS:
        assert out["chosen_on_calib"][signal] in capture_modes.MODES
        for mode in capture_modes.MODES:
            if out["test"][signal]["images"]:
                assert 0.0 <= out["test"][signal][mode][0] <= 1.0


def test_capture_levels_smoke(bench, tmp_path):
    """One capture level against the shipped two on planted renders: a paired difference per signal and level,
    the calib rule's choice among them, the test report of the level it names."""
    import capture_levels

    out = capture_levels.main(["--n-calib", "2", "--n-test", "2", "--bootstrap", "20",
                               "--out", str(tmp_path / "cl.json")], bench=bench)
    for signal in capture_levels.SIGNALS:
        chosen = out["chosen_on_calib"][signal]
        assert chosen["levels"] in ([chosen["best_single_level"]], [0.2, 0.3])
        assert chosen["non_inferior_on_calib"] == (chosen["levels"] != [0.2, 0.3])
        assert set(out["calib"][signal]) == {"0.1", "0.2", "0.3"}
        (report,) = out["test"][signal].values()
        assert 0.0 <= report["one_level_mean"] <= 1.0 and report["ci"][0] <= report["mean"] <= report["ci"][1]
    assert "one minus two" in (tmp_path / "cl.md").read_text()
