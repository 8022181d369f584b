"""Search beyond the paper, measured against Best-of-N on the demo world (issue: spend compute only where it pays).

Same prompts, seeds, sampling and judges as quality_vs_compute.py (its Runner), one NFE axis:
- Best-of-N for N in BON_N (nested, as there), and Best-of-N with early pruning (TTSnap-style: score the
  predicted x0 after PRUNE_AT of the steps, finish the best half), each N run on its own;
- LoTTS in paper mode (top r = 0.5 of the map, whole-image re-draws, s = 3, k = 2, one round), then each addition
  alone and all together: defect-region masks, per-region selection of re-draws, crop-to-region re-draws, early
  pruning of the seeds, and an NFE budget with best-first allocation.
For each variant: mean verifier score and held-out defect area, NFE (and the crop variants' area-weighted NFE),
and the Best-of-N NFE that first matches its score (ratio = Best-of-N NFE / variant NFE, 95 % bootstrap over
prompts). summary.json takes `bon_over_best_lotts_nfe_ratio` (plain Best-of-N against the best variant) and
`pruned_bon_over_best_lotts_nfe_ratio` (Best-of-N with pruning against it).

    .host/venv/bin/python bench/search_variants.py [--prompts 24]
"""

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
from common import RESULTS, Bench, add_run_arguments, bootstrap, fmt_ci, markdown_table, write_json
from quality_vs_compute import BON_N, Runner

PRUNE_AT, PRUNE_KEEP = 0.25, 0.5
VARIANTS = {  # name: (LocalSettings overrides, pruning on the seeds, NFE budget as a multiple of the paper's NFE)
    "paper": ({}, False, None),
    "+ defect regions": ({"mask_mode": "defect regions"}, False, None),
    "+ per-region selection": ({"region_selection": True}, False, None),
    "+ crop to region": ({"crop_padding": 2}, False, None),
    "+ early pruning": ({}, True, None),
    "+ budget, best-first": ({}, False, 1.0),
    "all together": ({"mask_mode": "defect regions", "region_selection": True, "crop_padding": 2}, True, 1.0),
}


def run_variant(runner, prompt, seed, start_step, overrides, prune, budget_factor, paper_nfe):
    b, search = runner.bench, runner.search
    local = dataclasses.replace(runner.local(prompt, start_step, 1 if budget_factor is None else 3), **overrides)
    pruning = search._pruning.Pruning(round(PRUNE_AT * runner.steps), PRUNE_KEEP) if prune else None
    seeds = runner.lotts_seeds[-1] * (2 if prune else 1)  # pruning samples twice the seeds and keeps half
    if budget_factor is None:
        r = search.lotts(b.model, b.vae, b.verifier, runner.latent, runner.settings(prompt), local, prompt, seed,
                         seeds, pruning=pruning)
    else:
        r = search.lotts_budgeted(b.model, b.vae, b.verifier, runner.latent, runner.settings(prompt), local, prompt,
                                  seed, seeds, budget_factor * paper_nfe, 1e6, pruning=pruning)
    return {"nfe": r.report["nfe"], "nfe_area_weighted": r.report["nfe"] - r.report["nfe_refinement"]
            + r.report["nfe_refinement_area_weighted"], "score": float(b.verifier.score(r.best_images, [prompt])[0]),
            "area": float(b.scorers.defect_area(r.best_images)[0])}


def run_prompt(runner, prompt, seed, start_step):
    b, search = runner.bench, runner.search
    bon = runner.best_of_n(prompt, seed, max(BON_N))
    scores, areas = bon.all_scores.numpy(), b.scorers.defect_area(bon.all_images).numpy()
    per_sample = bon.report["nfe"] / max(BON_N)
    entry = {"prompt": prompt, "bon": [{"n": n, "nfe": per_sample * n, "score": float(scores[:n].max()),
                                        "area": float(areas[int(np.argmax(scores[:n]))])} for n in BON_N],
             "pruned_bon": [], "variants": {}}
    for n in BON_N[1:]:
        pruning = search._pruning.Pruning(round(PRUNE_AT * runner.steps), PRUNE_KEEP)
        r = search.best_of_n(b.model, b.vae, b.verifier, runner.latent, runner.settings(prompt), prompt, seed, n,
                             pruning=pruning)
        best = r.best_images
        entry["pruned_bon"].append({"n": n, "nfe": r.report["nfe"], "score": float(b.verifier.score(best, [prompt])[0]),
                                    "area": float(b.scorers.defect_area(best)[0])})
    paper_nfe = None
    for name, (overrides, prune, budget) in VARIANTS.items():
        entry["variants"][name] = run_variant(runner, prompt, seed, start_step, overrides, prune, budget, paper_nfe)
        paper_nfe = paper_nfe or entry["variants"]["paper"]["nfe"]
    return entry


def ratio_to(compute, entries, curve, variant):
    """Best-of-N-style curve NFE that first matches the variant's mean score / the variant's mean NFE."""
    budgets = [float(np.mean([e[curve][j]["nfe"] for e in entries])) for j in range(len(entries[0][curve]))]
    nfe = float(np.mean([e["variants"][variant]["nfe"] for e in entries]))

    def ratio(idx):
        values = [float(np.mean([entries[i][curve][j]["score"] for i in idx])) for j in range(len(budgets))]
        target = float(np.mean([entries[i]["variants"][variant]["score"] for i in idx]))
        return compute.matching_budget_ratio([nfe], [target], budgets, values)

    return {"ratio": ratio(np.arange(len(entries))), "ci": bootstrap(ratio, len(entries), reps=1000, seed=5), "nfe": nfe}


def analyse(bench, entries):
    compute = bench.pack.lotts_ops.compute
    out = {"variants": {}}
    for name in VARIANTS:
        rows = [e["variants"][name] for e in entries]
        out["variants"][name] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        out["variants"][name]["bon"] = ratio_to(compute, entries, "bon", name)
        out["variants"][name]["pruned_bon"] = ratio_to(compute, entries, "pruned_bon", name)
    best = max(VARIANTS, key=lambda n: (out["variants"][n]["bon"]["ratio"] or 0.0))
    out["best_variant"] = best
    out["bon_over_best_lotts_nfe_ratio"] = out["variants"][best]["bon"]["ratio"]
    out["bon_over_best_lotts_nfe_ratio_ci"] = out["variants"][best]["bon"]["ci"]
    out["pruned_bon_over_best_lotts_nfe_ratio"] = out["variants"][best]["pruned_bon"]["ratio"]
    out["pruned_bon_over_best_lotts_nfe_ratio_ci"] = out["variants"][best]["pruned_bon"]["ci"]
    return out


def report(out):
    a = out["analysis"]
    rows = [[name, f"{v['nfe']:.0f}", f"{v['nfe_area_weighted']:.0f}", f"{v['score']:.3f}", f"{100 * v['area']:.2f}",
             fmt_ci(v["bon"]["ratio"], v["bon"]["ci"], 2), fmt_ci(v["pruned_bon"]["ratio"], v["pruned_bon"]["ci"], 2)]
            for name, v in a["variants"].items()]
    return (f"## Search variants against Best-of-N ({len(out['entries'])} test prompts, world v{out['world_version']})"
            "\n\nratio = the NFE at which (pruned) Best-of-N first matches the variant's mean verifier score / the "
            "variant's NFE (> 1: the variant is cheaper); 'never' = not within the largest N.\n\n"
            + markdown_table(["variant", "NFE", "area-weighted NFE", "verifier score", "held-out area %",
                              "Best-of-N / variant", "pruned Best-of-N / variant"], rows)
            + f"\nBest variant: {a['best_variant']}.\n")


def main(argv=None, bench=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--t0", type=float, default=None,
                        help="start fraction of the re-draws (0 = pure noise); default: quality_vs_compute.json's choice")
    parser.add_argument("--signal", default="noise difference")
    parser.add_argument("--seed", type=int, default=0)
    add_run_arguments(parser, "search_variants.json")
    opts = parser.parse_args(argv)
    bench = bench or Bench(weights=opts.demo_weights, threads=opts.threads, scorers=opts.scorers)
    runner = Runner(bench, opts.steps, opts.cfg, [0.1, 0.2, 0.3], 1.0, opts.signal, 0.5, 2, 2)
    if opts.t0 is None:
        chosen = RESULTS / "quality_vs_compute.json"
        opts.t0 = json.loads(chosen.read_text())["t0"]["chosen"] if chosen.is_file() else 0.0
    start_step = bench.pack.lotts_ops.schedule.resolve_start_step(opts.steps, 0, opts.t0)
    _, _, _, info = bench.demo.model.read(bench.weights)
    out = {"settings": vars(opts), "world_version": info.get("world_version"), "start_step": start_step,
           "entries": []}
    t = time.time()
    with torch.inference_mode():
        for i, prompt in enumerate(bench.world.prompts("test", opts.prompts)):
            out["entries"].append(run_prompt(runner, prompt, opts.seed + i, start_step))
            print(json.dumps({"prompt": i, "seconds": round(time.time() - t, 1)}), flush=True)
    out["analysis"] = analyse(bench, out["entries"])
    out["seconds"] = round(time.time() - t, 1)
    path = write_json(opts.out, out)
    text = report(out)
    path.with_suffix(".md").write_text(text)
    print(text)
    return out


if __name__ == "__main__":
    main()
