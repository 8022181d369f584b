"""LoTTS against Best-of-N on world v3, along the complexity axis (1-6 objects), with a yardstick that cannot flatter.

Through the pack's own search functions (nodes/_search: the code behind LoTTS Search and LoTTS Best-of-N) on the v3
demo model, euler / normal, 20 steps, the cfg chosen on calib prompts (bench/world3_cfg.py):
- **Best-of-N as a curve.** Per test prompt one pool of M samples (noise index j = candidate j, as the pack
  samples), each with its early prediction scored at PRUNE_AT of the steps (for pruned Best-of-N) and its final
  image scored by the selecting verifier; bench/bon_curve.py turns the pool into the expected pick for every N
  and pruned N (keep half), for every measure.
- **LoTTS** paper mode (s = 3, k = 2, r = 0.5) with one and two rounds, and each option beyond the paper, all
  selecting with the same prompt-aware verifier (bench/judges_v3.py); the prompt-blind verifier as an ablation.
- **Measures** of a pick: the selecting verifier's score; the held-out segmenter's defective area; success (no
  defect spot by the held-out segmenter AND right by the held-out parser: every object, the count, the background);
  the parser's adherence of every method's picks.
- **Cost in two units.** NFE (counted on the model clone), and cost at real size: NFE + decodes x d + verifier
  calls x v, with d and v from bench/results/cost_units.json (SDXL: decode and ImageReward-sized forward, each in
  NFE of one SDXL UNet evaluation). Decodes and verifier calls are counted by wrapping the VAE and the verifier.
- **Matching ratios** read on the curve by interpolation (bench/bon_curve.matching_ratio), "never" only beyond
  M; intervals: bootstrap over prompts. Per complexity and overall.
- **Choices on calib prompts only**: the capture level (localization AUROC on planted calib renders) and t0 (the
  selecting verifier's score of paper-mode LoTTS on calib prompts), written into the results with their numbers.

    .host/venv/bin/python bench/world3_bench.py [--per-complexity 16] [--pool 48] [--calib-per-complexity 2]
    # on two cores: two halves of the complexity axis at once, then one analysis of all their prompts
    ... world3_bench.py --objects 1,2,3 --out a.json & ... --objects 4,5,6 --out b.json; wait
    ... world3_bench.py --merge a.json b.json
"""

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import bon_curve
import judges_v3
import numpy as np
import torch
import trivial_cues
import world3_gates
from common import RESULTS, add_run_arguments, bootstrap, weights_digest, write_json
from localization import HIGH, LOW, capture_one
from quality_vs_compute import Runner

from demo import world3

PRUNE_AT, PRUNE_KEEP = 0.25, 0.5
T0_GRID = (0.25, 0.5)
LEVEL_GRID = (0.1, 0.2, 0.3)
VARIANTS = {  # name: LocalSettings overrides (one round unless `rounds` is given)
    "paper, 1 round": {},
    "paper, 2 rounds": {"rounds": 2},
    "+ defect regions": {"mask_mode": "defect regions"},
    "+ per-region selection": {"region_selection": True},
    "+ crop to region": {"crop_padding": 2},
    "regions + per-region + crop, 2 rounds": {"mask_mode": "defect regions", "region_selection": True,
                                              "crop_padding": 2, "rounds": 2},
}


class Counting:
    """Wraps a VAE (decode) or a verifier (score) and counts the images that pass through it."""

    def __init__(self, inner, method):
        self.inner, self.method, self.count = inner, method, 0

    def __getattr__(self, name):
        if name == self.method:
            def counted(images, *args, **kwargs):
                self.count += int(images.shape[0])
                return getattr(self.inner, name)(images, *args, **kwargs)
            return counted
        return getattr(self.inner, name)


def prompts_for(split, per_complexity, objects=world3.OBJECT_COUNTS, first=0):
    return [(n, world3.sample(first + i, split, n_objects=n)["prompt"]) for n in objects for i in range(per_complexity)]


def judge(judges, images, prompts):
    """Per image: verifier score, defective area, segmenter-defective, parser rows."""
    images = images.clamp(0, 1)
    area, defective = judges.segment(images)
    return {"score": judges.score(images, prompts).numpy(), "area": area,
            "defective": defective, "adherence": judges.adherence(images, prompts),
            "blind": judges.prompt_blind_score(images).numpy()}


def success(j):
    return np.array([not d and a["right"] for d, a in zip(j["defective"], j["adherence"], strict=True)], float)


# -- calib choices ------------------------------------------------------------------------------------------
def choose_level(bench, n_images, reps):
    """The capture level whose noise-difference map localizes planted calib defects best (per-image AUROC)."""
    images, masks, _, _ = trivial_cues.planted(world3, "calib", n_images)
    latents = bench.vae_encode(list(images))
    labels = [trivial_cues.cell_labels(m) for m in masks]
    table = {}
    for level in LEVEL_GRID:
        vals = []
        for i in range(len(images)):
            cap = capture_one(bench, latents[i:i + 1], world3.sample(i, "calib", with_defect=True)["prompt"], HIGH, LOW,
                              [level], seed=i)
            if labels[i].any() and not labels[i].all():
                vals.append(trivial_cues.auroc(cap["noise_difference"][0].numpy(), labels[i]))
        table[str(level)] = trivial_cues.bootstrap_mean(vals, np.random.default_rng(0), reps)
    best = max(LEVEL_GRID, key=lambda lv: table[str(lv)][0])
    return best, table


def choose_t0(runner, calib, seed):
    if not calib:  # smoke runs only: nothing to choose on
        return T0_GRID[0], {}
    table = {}
    for frac in T0_GRID:
        start = round(frac * runner.steps)
        scores = []
        for k, (_, prompt) in enumerate(calib):
            r = runner.lotts(prompt, seed + k, 3, start)
            scores.append(float(runner.bench.judges.score(r.best_images.clamp(0, 1), [prompt])[0]))
        table[str(frac)] = round(float(np.mean(scores)), 4)
    best = max(T0_GRID, key=lambda f: table[str(f)])
    return best, table


# -- one test prompt ----------------------------------------------------------------------------------------
def run_pool(runner, prompt, seed, m):
    b, search = runner.bench, runner.search
    pruning = search._pruning.Pruning(round(PRUNE_AT * runner.steps), 1.0)  # keep all: early scores of everyone
    r = search.best_of_n(b.model, b.vae, b.verifier, runner.latent, runner.settings(prompt), prompt, seed, m,
                         pruning=pruning)
    j = judge(b.judges, r.all_images, [prompt] * m)
    return {"early": r.report["pruning"]["early_scores"], "score": j["score"].tolist(), "area": j["area"].tolist(),
            "success": success(j).tolist(), "right": [a["right"] for a in j["adherence"]],
            "objects_right": [a["objects_right"] for a in j["adherence"]],
            "count_right": [a["count_right"] for a in j["adherence"]],
            "colours_present": [a["colours_present"] for a in j["adherence"]],
            "defective": j["defective"].tolist(), "blind": j["blind"].tolist(),
            "nfe_per_sample": runner.steps * 2}


def run_lotts(runner, prompt, seed, start, overrides, verifier=None):
    b, search = runner.bench, runner.search
    overrides = dict(overrides)
    local = dataclasses.replace(runner.local(prompt, start, overrides.pop("rounds", 1)), **overrides)
    vae, ver = Counting(b.vae_raw, "decode"), Counting(verifier or b.verifier_raw, "score")
    r = search.lotts(b.model, vae, ver, runner.latent, runner.settings(prompt), local, prompt, seed, 3)
    j = judge(b.judges, r.best_images, [prompt])
    return {"nfe": r.report["nfe"], "decodes": vae.count, "verifier_calls": ver.count, "score": float(j["score"][0]),
            "area": float(j["area"][0]), "success": float(success(j)[0]), "right": bool(j["adherence"][0]["right"]),
            "refined_won": "r" in r.report["winners"][0]}


# -- analysis -----------------------------------------------------------------------------------------------
def cost_fn(unit, steps, d, v, pruned=False):
    """Best-of-N's cost at a continuous N (pruned: N sampled, half finished) in NFE or at real size."""
    at = round(PRUNE_AT * steps)

    def cost(n):
        if not pruned:
            return n * (2 * steps + (d + v if unit == "real" else 0))
        finished = PRUNE_KEEP * n
        nfe = 2 * at * n + 2 * (steps - at) * finished
        return nfe + ((n + finished) * (d + v) if unit == "real" else 0)

    return cost


def _curve_at(curves, n):
    """Per-prompt curve values (N = 1..M) at a continuous N, linearly interpolated."""
    lo = min(int(math.floor(n)), curves.shape[1]) - 1
    hi = min(lo + 1, curves.shape[1] - 1)
    frac = n - math.floor(n)
    return curves[:, lo] * (1 - frac) + curves[:, hi] * frac


def analyse(entries, steps, d, v, reps):
    out = {}
    groups = {"all": entries, **{str(n): [e for e in entries if e["objects"] == n] for n in world3.OBJECT_COUNTS}}
    for name, group in groups.items():
        if not group:
            continue
        m = len(group[0]["pool"]["score"])
        weights = bon_curve.best_of_n_weights(m)
        res = {"prompts": len(group)}
        curves = {meas: np.stack([bon_curve.best_of_n_curve(e["pool"]["score"], e["pool"][meas], weights)
                                  for e in group]) for meas in ("score", "area", "success", "right")}
        sizes = list(range(2, m + 1, 2))
        pruned = {meas: np.stack([bon_curve.pruned_curve(e["pool"]["early"], e["pool"]["score"], e["pool"][meas],
                                                         PRUNE_KEEP, sizes, draws=200, seed=k)
                                  for k, e in enumerate(group)]) for meas in ("score", "success")}
        res["bon_curve_mean"] = {meas: [round(float(x), 4) for x in c.mean(axis=0)] for meas, c in curves.items()}
        res["pool_clean_rate"] = round(float(np.mean([1 - np.mean(e["pool"]["defective"]) for e in group])), 4)
        res["pool_success_rate"] = round(float(np.mean([np.mean(e["pool"]["success"]) for e in group])), 4)
        for variant in group[0]["lotts"]:
            rows = [e["lotts"][variant] for e in group]
            cost_nfe = float(np.mean([r["nfe"] for r in rows]))
            cost_real = float(np.mean([r["nfe"] + r["decodes"] * d + r["verifier_calls"] * v for r in rows]))
            vres = {"nfe": round(cost_nfe, 1), "cost_real": round(cost_real, 1),
                    "decodes": float(np.mean([r["decodes"] for r in rows])),
                    "verifier_calls": float(np.mean([r["verifier_calls"] for r in rows]))}
            for meas, higher in (("score", True), ("area", False), ("success", True), ("right", True)):
                vals = np.array([float(r[meas]) for r in rows])
                vres[meas] = round(float(vals.mean()), 4)
                for unit, cost in (("nfe", cost_nfe), ("real", cost_real)):
                    vres[f"bon_ratio_{meas}_{unit}"] = bon_curve.matching_ratio(
                        curves[meas], vals, cost, cost_fn(unit, steps, d, v), higher, n_boot=reps)
                    if meas in pruned:
                        vres[f"pruned_bon_ratio_{meas}_{unit}"] = bon_curve.matching_ratio(
                            pruned[meas], vals, cost, cost_fn(unit, steps, d, v, pruned=True), higher, n_boot=reps,
                            ns=sizes)
            # adherence of the picks against Best-of-N's: at equal cost at real size (the N Best-of-N buys with
            # LoTTS's cost) and at the N matching LoTTS's success (the goal's comparison; floored at N = 1 when one
            # sample already matches, i.e. against an unselected sample)
            lotts_right = np.array([float(r["right"]) for r in rows])
            per_sample = cost_fn("real", steps, d, v)(1)
            for key, n_at in (("adherence_delta_vs_bon_equal_cost", min(float(m), max(1.0, cost_real / per_sample))),
                              ("adherence_delta_vs_bon_at_matching_success", vres["bon_ratio_success_real"]["matching_n"])):
                if n_at is None:
                    continue
                delta = lotts_right - _curve_at(curves["right"], n_at)
                vres[key] = [round(float(delta.mean()), 4), *[round(float(x), 4) for x in bootstrap(
                    lambda idx, dl=delta: float(dl[idx].mean()), len(delta), reps=reps)], round(n_at, 3)]
            res[variant] = vres
        out[name] = res
    return out


@torch.no_grad()
def main(argv=None, env=None):
    """`env`: a harness environment already started in this process (the smoke test)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, "world3_bench.json")
    parser.add_argument("--per-complexity", type=int, default=16)
    parser.add_argument("--calib-per-complexity", type=int, default=2)
    parser.add_argument("--pool", type=int, default=48)
    parser.add_argument("--level-images", type=int, default=48, help="planted calib renders to choose the level")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=None, help="default: the choice in results/world3_cfg.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--objects", default="1,2,3,4,5,6", help="complexities (numbers of objects) to run")
    parser.add_argument("--calib-objects", default="1,2,3,4,5,6",
                        help="complexities of the calib prompts that choose t0 (all by default, also in a run over "
                             "part of --objects, so that the parts of a --merge choose alike)")
    parser.add_argument("--calib-scenes", type=int, default=96, help="calib scenes for the segmenter's threshold")
    parser.add_argument("--cost-family", default="sdxl", help="family whose decode / reward costs convert to NFE")
    parser.add_argument("--cost-units", default=str(Path(__file__).parent / "results" / "cost_units.json"),
                        help="bench/cost_units.py's results")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="results of runs over parts of --objects (same settings otherwise): analysed together")
    opts = parser.parse_args(argv)
    if opts.merge:
        return merge(opts)
    opts.cfg = world3_gates.v3_cfg(opts)
    t_start = time.time()
    bench = world3_gates.start_v3_bench(opts, env)
    calibration = world3_gates.calibrate_segmenter(bench, bench.judges, opts.calib_scenes)  # as the gates read it
    base = bench.pack.lotts_ops.verifiers.base.Verifier
    bench.vae_raw, bench.verifier_raw = bench.vae, bench.judges.verifier(base)
    bench.verifier = bench.verifier_raw
    blind = bench.judges.verifier(base, prompt_aware=False)
    units = json.loads(Path(opts.cost_units).read_text())["families"][opts.cost_family]
    d, v = units["decode_in_nfe"], units["verifier_call_in_nfe"]
    level, level_table = choose_level(bench, opts.level_images, opts.reps)
    runner = Runner(bench, opts.steps, opts.cfg, [level], 0.0, "noise difference", 0.5, 2, 2)
    objects = [int(x) for x in opts.objects.split(",")]
    calib = prompts_for("calib", opts.calib_per_complexity, [int(x) for x in opts.calib_objects.split(",")])
    t0, t0_table = choose_t0(runner, calib, opts.seed + 500)
    start = round(t0 * opts.steps)
    print(json.dumps({"level": level, "levels": level_table, "t0": t0, "t0_table": t0_table}), flush=True)
    entries = []
    for n, prompt in prompts_for("test", opts.per_complexity, objects):
        # the prompt's place in the full run (every complexity) fixes its seed: a part of a merge draws the same
        k = world3.OBJECT_COUNTS.index(n) * opts.per_complexity + sum(e["objects"] == n for e in entries)
        seed = opts.seed + 10_000 + 97 * k
        entry = {"objects": n, "prompt": prompt, "seed": seed, "pool": run_pool(runner, prompt, seed, opts.pool),
                 "lotts": {}}
        for name, overrides in VARIANTS.items():
            entry["lotts"][name] = run_lotts(runner, prompt, seed, start, overrides)
        entry["lotts"]["paper, 1 round, prompt-blind verifier"] = run_lotts(runner, prompt, seed, start, {}, blind)
        entries.append(entry)
        print(json.dumps({"prompt": k, "objects": n, "seconds": round(time.time() - t_start),
                          "pool_success": float(np.mean(entry["pool"]["success"])),
                          "lotts_success": entry["lotts"]["paper, 1 round"]["success"]}), flush=True)
    return finish(opts, {"world_version": 3, "bon_curve": "pool", "bon_pool_size": opts.pool, "test_prompts": len(entries),
           "verifier_reads_prompt": True, "segmenter_calibration": calibration, "settings": {**vars(opts), "levels": [level], "lambda": 0.0,
                                                        "signal": "noise difference", "t0": t0, "start_step": start,
                                                        "area_ratio": 0.5, "refinements": 2, "global_steps": 2},
           "calib": {"prompts": len(calib), "level_auroc": level_table, "t0_verifier_score": t0_table},
           "cost_units": {"family": opts.cost_family, "decode_in_nfe": d, "verifier_call_in_nfe": v},
           "models": {"demo_weights_sha256": weights_digest(world3_gates.v3_weights(opts)),
                      "judges_sha256": weights_digest(opts.scorers or judges_v3.WEIGHTS)},
           "entries": entries, "seconds": round(time.time() - t_start, 1)})


def finish(opts, out):
    units = out["cost_units"]
    out["results"] = analyse(out["entries"], out["settings"]["steps"], units["decode_in_nfe"],
                             units["verifier_call_in_nfe"], opts.reps)
    write_json(opts.out, out)
    return out


# settings that may differ between the parts of a merged run (where each part wrote and what it covered)
PART_KEYS = ("out", "objects", "merge", "threads")


def merge(opts):
    """One result from runs over disjoint complexities with the same settings and calib choices (every part makes
    the same choices on the same calib prompts; any setting that differs is refused)."""
    parts = [json.loads((RESULTS / name).read_text()) for name in opts.merge]
    first = parts[0]
    for name, part in zip(opts.merge[1:], parts[1:], strict=True):
        for key in set(first["settings"]) | set(part["settings"]):
            if key not in PART_KEYS and first["settings"].get(key) != part["settings"].get(key):
                raise ValueError(f"--merge: {name} ran with {key} = {part['settings'].get(key)!r}, "
                                 f"{opts.merge[0]} with {first['settings'].get(key)!r}")
        for key in ("calib", "segmenter_calibration", "cost_units", "models"):
            if part.get(key) != first.get(key):
                raise ValueError(f"--merge: {name} differs from {opts.merge[0]} in {key}")
    entries = sorted((e for part in parts for e in part["entries"]), key=lambda e: e["objects"])
    if len({(e["objects"], e["prompt"], e["seed"]) for e in entries}) != len(entries):
        raise ValueError("--merge: the parts overlap (a prompt appears twice); give each part its own --objects")
    out = dict(first, entries=entries, test_prompts=len(entries), seconds=max(p["seconds"] for p in parts),
               settings=dict(first["settings"], objects=",".join(p["settings"]["objects"] for p in parts),
                             merged_from=list(opts.merge)))
    return finish(opts, out)


if __name__ == "__main__":
    main()
