"""Tables of the world v3 measurements (world3_gates.json, world3_bench.json) and their keys in summary.json.

    .host/venv/bin/python bench/world3_report.py [--gates world3_gates.json] [--bench world3_bench.json]
        [--out world3.md] [--summary summary.json]   (--summary '' leaves summary.json alone)
"""

import argparse
import json
from pathlib import Path

import numpy as np
import trivial_cues
from common import RESULTS, fmt, markdown_table

MAIN = "paper, 1 round"


def _ci(triple, digits=3):
    if not triple or triple[0] is None:
        return "n/a"
    return f"{fmt(triple[0], digits)} [{fmt(triple[1], digits)}, {fmt(triple[2], digits)}]"


def _ratio(r):
    if r is None:
        return "n/a"
    lo, hi = r["ci"]
    value = "never within the pool" if r["ratio"] is None else f"{r['ratio']:.2f}x"
    floored = " (floored: one sample already matches)" if r.get("floored") else ""
    return f"{value} [{fmt(lo, 2)}, {fmt(hi, 2) if hi is not None else 'never'}]{floored}"


def gates_table(gates):
    keys = list(gates["gates"])
    header = ["objects", *keys]
    rows = []
    for n, values in gates["per_complexity"].items():
        row = [n]
        for k in keys:
            v = values[k]
            row.append(("n/a" if v is None else f"{v:.3f}") + ("" if values["passed"][k] else " MISSED"))
        rows.append(row)
    limits = ["gate", *[f"{d} {t:g}" for t, d in gates["gates"].values()]]
    return markdown_table(header, [limits, *rows])


def localization_table(gates, where):
    names = ["noise difference", "noise difference, neutral words", "attention", "attention, neutral words"]
    cues = ["sobel", "variance", "palette", "prompt_colours", "combined"]
    rows = []
    for n, block in gates["blocks"].items():
        loc = block[f"localization_{where}"]
        rows.append([n, loc["images"], *[_ci(loc.get(k)) for k in names], *[_ci(loc["trivial"].get(c)) for c in cues]])
    return markdown_table(["objects", "images", *names, *[f"cue: {c}" for c in cues]], rows)


def bench_tables(bench):
    res = bench["results"]
    variants = [k for k in res["all"] if isinstance(res["all"][k], dict) and "nfe" in res["all"][k]]
    out = []
    for measure, title in (("success", "success (held-out segmenter clean AND parser right)"),
                           ("score", "selecting verifier score"), ("area", "held-out defective area")):
        rows = []
        for group, r in res.items():
            for v in variants:
                e = r[v]
                rows.append([group, v, r["prompts"], f"{e[measure]:.3f}", f"{e['nfe']:.0f}", f"{e['cost_real']:.0f}",
                             _ratio(e.get(f"bon_ratio_{measure}_nfe")), _ratio(e.get(f"bon_ratio_{measure}_real")),
                             _ratio(e.get(f"pruned_bon_ratio_{measure}_real"))])
        out.append(f"### {title}\n\n" + markdown_table(
            ["objects", "variant", "prompts", "LoTTS", "NFE", "cost at real size", "Best-of-N / LoTTS (NFE)",
             "Best-of-N / LoTTS (real size)", "pruned Best-of-N / LoTTS (real size)"], rows))
    def delta(v):
        return "n/a" if v is None else f"{_ci(v[:3])} at N = {v[3]:.2f}"
    rows = [[g, r["prompts"], f"{r['pool_clean_rate']:.3f}", f"{r['pool_success_rate']:.3f}",
             delta(r[MAIN].get("adherence_delta_vs_bon_equal_cost")),
             delta(r[MAIN].get("adherence_delta_vs_bon_at_matching_success"))] for g, r in res.items()]
    out.append("### the pool and adherence (paper mode, one round)\n\n" + markdown_table(
        ["objects", "prompts", "clean samples (segmenter)", "successful samples",
         "adherence (parser right), LoTTS minus Best-of-N at equal cost at real size",
         "the same at the N matching LoTTS's success (N = 1: an unselected sample)"], rows))
    return "\n".join(out)


def selection_agreement(bench, reps=1000):
    """Does the selecting verifier rank a prompt's pool as the held-out judges do? Per complexity, the mean over
    prompts of the within-pool AUROC of the verifier's score (and of the prompt-blind ablation's) for a sample the
    parser finds right, the segmenter finds clean, and both (success); prompts whose pool holds one class only
    are left out. 0.5: the verifier's pick is no better than a random sample's on that measure."""
    out = {}
    groups = {"all": bench["entries"]}
    for e in bench["entries"]:
        groups.setdefault(str(e["objects"]), []).append(e)
    for name, group in groups.items():
        row = {}
        for label, values in (("right", lambda p: p["right"]),
                              ("clean", lambda p: [not d for d in p["defective"]]),
                              ("success", lambda p: [bool(x) for x in p["success"]])):
            for scorer in ("score", "blind"):
                per_prompt = [trivial_cues.auroc(e["pool"][scorer], values(e["pool"])) for e in group]
                per_prompt = [a for a in per_prompt if a == a]  # nan: one class only
                row[f"{scorer}_{label}"] = (trivial_cues.bootstrap_mean(per_prompt, np.random.default_rng(0), reps)
                                            + [len(per_prompt)] if per_prompt else None)
        out[name] = row
    return out


def agreement_table(agreement):
    def cell(v):
        return "n/a (one class in every pool)" if v is None else f"{_ci(v[:3])} ({v[3]} prompts)"
    rows = [[n, *[cell(r[f"{scorer}_{label}"]) for scorer in ("score", "blind") for label in ("right", "clean", "success")]]
            for n, r in agreement.items()]
    return markdown_table(["objects", *[f"{who}: {label}" for who in ("verifier", "prompt-blind ablation")
                                        for label in ("parser right", "segmenter clean", "success")]], rows)


def instrument_valid(gates):
    """Every v3 gate met at every complexity (None: the gates were not run)."""
    if not gates:
        return None
    return all(all(v["passed"].values()) for v in gates["per_complexity"].values())


V3_KEYS = ("auroc_noise_difference", "auroc_attention", "auroc_noise_difference_ci", "auroc_attention_ci",
           "world_version")


def _delta(group, which):
    value = group[MAIN].get("adherence_delta_vs_bon_equal_cost")
    return None if value is None else value[which]


def _by_complexity(res, key):
    """{objects: [ratio, lo, hi]} of paper-mode LoTTS (ratio None: Best-of-N never matched it within the pool)."""
    return {k: [r[MAIN][key]["ratio"], *r[MAIN][key]["ci"]] for k, r in res.items() if k != "all"}


def summary_keys(gates, bench, v2_keys=(), agreement=None):
    """`v2_keys`: the keys summary.py wrote for world v2 (kept, as the bars read them, and listed as v2's);
    `agreement`: selection_agreement(bench), computed once for the table and these keys."""
    out = {"world_version": 3, "keys_from_world_v2": sorted(k for k in v2_keys if k not in V3_KEYS)}
    if bench:
        res = bench["results"]
        top = str(max(int(k) for k in res if k != "all"))
        main = res[top][MAIN]
        out.update({"bon_curve": bench["bon_curve"], "bon_pool_size": bench["bon_pool_size"],
                    "test_prompts": bench["test_prompts"], "verifier_reads_prompt": bench["verifier_reads_prompt"],
                    # success and verifier ratios in NFE; the goal's ratio in cost at real size
                    "success_ratio_by_complexity": _by_complexity(res, "bon_ratio_success_nfe"),
                    # the same on the measures that do not need the generator's adherence: the verifier's score
                    # and the held-out defect area; and success at real-size cost (the goal's unit)
                    "verifier_ratio_by_complexity": _by_complexity(res, "bon_ratio_score_nfe"),
                    "defect_area_ratio_by_complexity": _by_complexity(res, "bon_ratio_area_nfe"),
                    "cost_ratio_real_size_by_complexity": _by_complexity(res, "bon_ratio_success_real"),
                    "success_ratio_top_complexity": main["bon_ratio_success_nfe"]["ratio"],
                    "success_ratio_top_complexity_ci": main["bon_ratio_success_nfe"]["ci"],
                    "verifier_ratio_top_complexity": main["bon_ratio_score_nfe"]["ratio"],
                    "verifier_ratio_top_complexity_ci": main["bon_ratio_score_nfe"]["ci"],
                    "cost_ratio_real_size_top_complexity": main["bon_ratio_success_real"]["ratio"],
                    "cost_ratio_real_size_top_complexity_ci": main["bon_ratio_success_real"]["ci"],
                    # LoTTS's floor at one sample: both succeed never, or one sample already does as well
                    "success_ratio_top_complexity_floored": main["bon_ratio_success_nfe"].get("floored"),
                    "success_rate_lotts_top_complexity": main["success"],
                    "pool_success_rate_by_complexity": {k: r["pool_success_rate"] for k, r in res.items() if k != "all"},
                    "adherence_delta_lotts_minus_bon": _delta(res["all"], 0),
                    "adherence_delta_lotts_minus_bon_ci": _delta(res["all"], slice(1, 3)),
                    "adherence_delta_basis": "parser right, paper mode one round minus Best-of-N at equal cost at real "
                                             "size, all test prompts",
                    "adherence_delta_by_complexity": {k: r[MAIN].get("adherence_delta_vs_bon_equal_cost")
                                                      for k, r in res.items() if k != "all"}})
    if gates:
        per = gates["per_complexity"]
        out["trivial_cue_auroc_planted"] = max(v["trivial_cue_auroc_planted"] for v in per.values())
        out["trivial_cue_auroc_generated"] = max(v["trivial_cue_auroc_generated"] for v in per.values())
        for key in ("auroc_noise_difference", "auroc_attention"):
            values = [v[f"{key}_planted"] for v in per.values() if v[f"{key}_planted"] is not None]
            out[key] = round(sum(values) / len(values), 4) if values else None  # mean over complexities
            out[f"{key}_ci"] = None  # v2's interval is not this mean's; the per-complexity intervals follow
            out[f"{key}_by_complexity"] = {n: b["localization_planted"].get(key.replace("auroc_", "").replace("_", " "))
                                           for n, b in gates["blocks"].items()}
        out["gates_v3_by_complexity"] = {n: {k: v[k] for k in gates["gates"]} for n, v in per.items()}
        out["gates_v3_passed_by_complexity"] = {n: v["passed"] for n, v in per.items()}
        # the ratios above describe a valid yardstick only when every gate holds
        out["instrument_valid_v3"] = instrument_valid(gates)
    if bench:
        overall = (agreement or selection_agreement(bench))["all"]
        out["verifier_pool_auroc_success"] = overall["score_success"]  # [mean, lo, hi, prompts with both classes]
        out["verifier_pool_auroc_clean"] = overall["score_clean"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", default="world3_gates.json")
    parser.add_argument("--bench", default="world3_bench.json")
    parser.add_argument("--out", default="world3.md")
    parser.add_argument("--summary", default="summary.json")
    opts = parser.parse_args(argv)
    load = lambda name: json.loads((RESULTS / name).read_text()) if (RESULTS / name).is_file() else None  # noqa: E731
    gates, bench = load(opts.gates), load(opts.bench)
    agreement = selection_agreement(bench) if bench else None
    parts = ["# World v3: the instrument and LoTTS against Best-of-N along the complexity axis\n"]
    for source in (gates, bench):
        if source and source.get("note"):
            parts.append(f"**Status:** {source['note']}\n")
    if gates:
        parts += ["## Gates per number of objects (generated samples; held-out judges)\n", gates_table(gates),
                  "\n## Localization on planted renders (per-image AUROC over latent cells, 95 % interval)\n",
                  localization_table(gates, "planted"),
                  "\n## Localization on generated candidates (labels: the held-out segmenter's spots)\n",
                  localization_table(gates, "generated")]
    if bench:
        s = bench["settings"]
        parts += [f"\n## LoTTS against Best-of-N ({bench['test_prompts']} test prompts, pool of {bench['bon_pool_size']} "
                  f"per prompt; t0 = {s['t0']} and capture level {s['levels']} chosen on {bench['calib']['prompts']} "
                  f"calib prompts: {bench['calib']}; real-size units: {bench['cost_units']})\n", bench_tables(bench),
                  "\n## Does the selecting verifier rank a pool as the held-out judges do? (per-prompt AUROC within "
                  "the pool, mean and 95 % interval over prompts; 0.5 = its pick is a random sample's)\n",
                  agreement_table(agreement)]
        if gates and not instrument_valid(gates):
            parts.insert(1, "**The v3 instrument misses gates (table below): every LoTTS-against-Best-of-N figure "
                            "here describes this invalid yardstick, not LoTTS.**\n")
    Path(RESULTS / opts.out).write_text("\n".join(parts) + "\n")
    if opts.summary:
        path = RESULTS / opts.summary
        summary = json.loads(path.read_text()) if path.is_file() else {}
        v2_keys = summary.get("keys_from_world_v2") or [k for k in summary if k != "keys_from_world_v2"]
        summary.update(summary_keys(gates, bench, v2_keys, agreement))
        path.write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(parts))


if __name__ == "__main__":
    main()
