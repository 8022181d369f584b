"""Benchmark (not a test): does one capture level localize as well as the shipped two (0.2, 0.3)?

A capture costs its passes once per level, so one level halves it (#19: capture at most 5 % of a run on SD1.5
and SDXL). Planted-defect renders of the demo world (v2), encoded with its VAE and read by the pack's capture
engine (nodes/_capture.capture, layers "auto", one noise draw) at each single level and at the shipped two, each
capture the engine's own (its levels draw independent noise, as in the nodes; averaging single-level captures of one
seed would give both levels the same noise and a weaker baseline). Per image,
AUROC of the defect map over latent cells against the planted mask; per signal at the pack's settings (attention
with self-attention and lambda 0.3; the noise difference).

The rule, fixed before the run: per signal, on split "calib", the single level with the highest mean paired
difference (one level minus the shipped two, same images) is adopted when the lower end of its 95 % bootstrap
interval is at least -0.02 (two AUROC points: non-inferiority, not "the interval holds zero", which a noisy
signal passes by default). Split "test" then reports the chosen level's paired difference and interval.

    .host/venv/bin/python bench/capture_levels.py [--n-calib 100] [--n-test 200]
"""

import argparse

import numpy as np
import torch
from common import NON_INFERIORITY_MARGIN as MARGIN
from common import Bench, add_run_arguments, bootstrap, markdown_table, write_json
from localization import HIGH, LOW, PACK_LAMBDA, PACK_LEVELS, capture_one, defect_images

SINGLE_LEVELS = (0.1, 0.2, 0.3)
SIGNALS = ("attention", "noise difference")


def per_image_auroc(bench, split, n):
    """signal -> level set -> (n,) per-image AUROC, on the first n planted renders of `split`."""
    dm = bench.pack.lotts_ops.defect_map
    probability = bench.pack.nodes.defect_mask.defect_probability_from_capture
    samples, _ = defect_images(bench, split, n)
    raw = bench.vae_encode([s["image"] for s in samples])
    labels = bench.evaluate.cell_labels([s["defect_mask"] for s in samples], raw.shape[-2:])
    sets = {levels: [capture_one(bench, raw[k:k + 1], s["prompt"], HIGH, LOW, levels, seed=s["index"])
                     for k, s in enumerate(samples)] for levels in [(lv,) for lv in SINGLE_LEVELS] + [PACK_LEVELS]}
    out = {s: {} for s in SIGNALS}
    for levels, captures in sets.items():
        for signal in SIGNALS:
            maps = [probability(c, signal, PACK_LAMBDA, True) for c in captures]
            out[signal][levels] = np.array([dm.auroc(m[0], labels[k]) for k, m in enumerate(maps)])
    return out


def paired(a, b, reps):
    diff = a - b
    return {"mean": round(float(np.nanmean(diff)), 4),
            "ci": [round(x, 4) for x in bootstrap(lambda idx: float(np.nanmean(diff[idx])), len(diff), reps, 3)],
            "one_level_mean": round(float(np.nanmean(a)), 4), "two_levels_mean": round(float(np.nanmean(b)), 4)}


def name(levels):
    return ", ".join(f"{lv:g}" for lv in levels)


def main(argv=None, bench=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-calib", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=1000)
    add_run_arguments(parser, "capture_levels.json")
    opts = parser.parse_args(argv)
    bench = bench or Bench(weights=opts.demo_weights, threads=opts.threads, scorers=opts.scorers)
    with torch.inference_mode():
        calib = per_image_auroc(bench, "calib", opts.n_calib)
        test = per_image_auroc(bench, "test", opts.n_test)
    out = {"world_version": 2, "shipped_levels": list(PACK_LEVELS), "lambda": PACK_LAMBDA, "margin": MARGIN,
           "n_calib": opts.n_calib, "n_test": opts.n_test, "calib": {}, "test": {}, "chosen_on_calib": {}}
    for signal in SIGNALS:
        out["calib"][signal] = {name((lv,)): paired(calib[signal][(lv,)], calib[signal][PACK_LEVELS], opts.bootstrap)
                                for lv in SINGLE_LEVELS}
        best = max(SINGLE_LEVELS, key=lambda lv: out["calib"][signal][name((lv,))]["mean"])
        adopted = out["calib"][signal][name((best,))]["ci"][0] >= MARGIN
        out["chosen_on_calib"][signal] = {"levels": [best] if adopted else list(PACK_LEVELS),
                                          "best_single_level": best, "non_inferior_on_calib": adopted}
        report = paired(test[signal][(best,)], test[signal][PACK_LEVELS], opts.bootstrap)
        out["test"][signal] = {name((best,)): {**report, "non_inferior_on_test": report["ci"][0] >= MARGIN}}
    out["seconds"] = bench.seconds()
    path = write_json(opts.out, out)
    rows = [[split, signal, lv, r["one_level_mean"], r["two_levels_mean"], f"{r['mean']:+.4f} [{r['ci'][0]:+.4f}, "
             f"{r['ci'][1]:+.4f}]"] for split in ("calib", "test") for signal in SIGNALS
            for lv, r in out[split][signal].items()]
    table = markdown_table(["split", "signal", "one level", "its AUROC", f"levels {name(PACK_LEVELS)}",
                            "one minus two (95 % interval)"], rows)
    path.with_suffix(".md").write_text(f"# One capture level against two (planted renders, world v2)\n\n"
                                       f"Chosen on calib: {out['chosen_on_calib']}\n\n{table}\n")
    print(table)
    return out


if __name__ == "__main__":
    main()
