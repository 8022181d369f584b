"""Benchmark (not a test): the capture's share of a FLUX.1 run at its full depth (19 double + 38 single blocks),
extrapolated from measured depths, since the full model does not fit this machine in fp32 (about 48 GB).

real_size.py measures FLUX.1 at full width with 2 double and 2 single blocks: there the capture records 2 of 4
blocks ("auto" layers read every double block), while the real model records 19 of 57, so the recording weighs
more in that share than it would at full depth. Here each of plain step, re-noised capture and one step of capture
within sampling (at the shipped settings of workflows/api/lotts_flux.json) is timed at several depths in one run,
each measurement in a fresh process (real_size.child), and fitted as seconds = fixed + per double block x doubles +
per single block x singles. Blocks of one kind cost the same at one token count, so the cost is linear in the
block counts; the check is a depth left out of the fit and predicted from the others. The shares at 19 + 38 follow
from the fits as in real_size.py: capture / (capture + 28 steps).

    .host/venv/bin/python bench/real_size_flux_depth.py [--depths 2x2,4x2,2x4,4x4] [--dtype fp32] [--device cpu]
"""

import argparse
import json
import os

import numpy as np
import real_size

FULL_DEPTH = (19, 38)  # FLUX.1 [dev] / [schnell]: double blocks, single blocks
KINDS = ("plain", "capture", "within")


def fit(depths, seconds):
    """Least-squares (fixed, per double block, per single block) for seconds measured at (double, single) depths."""
    design = np.array([[1.0, d, s] for d, s in depths])
    coef, *_ = np.linalg.lstsq(design, np.array(seconds, dtype=float), rcond=None)
    return coef


def predict(coef, depth):
    return float(coef[0] + coef[1] * depth[0] + coef[2] * depth[1])


def shares(plain, capture, within_step, levels, steps):
    """Re-noised and within-sampling capture as shares of a full run (as real_size.derive)."""
    within = levels * max(within_step - plain, 0.0)
    return capture / (capture + steps * plain), within / (within + steps * plain)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="2x2,4x2,2x4,4x4", help="double x single blocks per measured model")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="real_size_flux_depth.json")
    opts = parser.parse_args(argv)
    depths = [tuple(int(x) for x in d.split("x")) for d in opts.depths.split(",")]
    if len(depths) < 4:
        raise SystemExit("--depths: at least 4, so one can be left out of the fit and predicted")
    measured = []
    for depth in depths:
        runs = {kind: real_size.run_child("flux", kind, opts, depth) for kind in KINDS}
        measured.append({"double": depth[0], "single": depth[1], "layers_recorded": runs["capture"]["layers_recorded"],
                         **{f"{kind}_seconds": runs[kind]["seconds"] for kind in KINDS}})
    levels, signal, layers = real_size.shipped("flux")
    steps = real_size.FULL_RUN_STEPS["flux"]
    fits, held_out = {}, {}
    for kind in KINDS:
        seconds = [m[f"{kind}_seconds"] for m in measured]
        fits[kind] = fit(depths, seconds)
        rest = fit(depths[:-1], seconds[:-1])  # the last depth left out, then predicted
        held_out[kind] = {"depth": list(depths[-1]), "measured": seconds[-1], "predicted": predict(rest, depths[-1]),
                          "relative_error": predict(rest, depths[-1]) / seconds[-1] - 1}
    at = {kind: predict(fits[kind], FULL_DEPTH) for kind in KINDS}
    renoised, within = shares(at["plain"], at["capture"], at["within"], len(levels), steps)
    per_depth = [dict(zip(("capture_share_of_full_run", "within_sampling_share"),
                          shares(m["plain_seconds"], m["capture_seconds"], m["within_seconds"], len(levels), steps),
                          strict=True), double=m["double"], single=m["single"]) for m in measured]
    result = {"device": opts.device, "dtype": opts.dtype, "threads": int(os.environ.get("LOTTS_BENCH_THREADS", "1")),
              "levels": levels, "signal": signal, "layers": layers, "full_run_steps": steps,
              "measured": measured, "shares_at_measured_depths": per_depth,
              "fit_seconds": {kind: {"fixed": c[0], "per_double_block": c[1], "per_single_block": c[2]}
                              for kind, c in fits.items()},
              "held_out_check": held_out, "full_depth": list(FULL_DEPTH),
              "estimated_at_full_depth": {"plain_step_seconds": at["plain"], "capture_seconds": at["capture"],
                                          "capture_share_of_full_run": renoised,
                                          "within_sampling_capture_share_of_full_run": within}}
    path = real_size.RESULTS / opts.out
    path.write_text(json.dumps(result, indent=1) + "\n")
    path.with_suffix(".md").write_text(report(result))
    print(report(result))
    return result


def report(r):
    e = r["estimated_at_full_depth"]
    lines = [f"# FLUX.1 capture share at full depth, extrapolated ({r['device']}, {r['dtype']}, {r['threads']} threads)",
             "", f"Shipped settings: levels {r['levels']}, signal {r['signal']}, layers {r['layers']} (every double block "
             f"recorded); a full run is {r['full_run_steps']} steps. Full width, random weights, each time one "
             "measurement in a fresh process.", "",
             "| double + single blocks | layers recorded | plain step (s) | re-noised capture (s) | within-sampling step (s) "
             "| re-noised share | within share |", "|---|---|---|---|---|---|---|"]
    for m, s in zip(r["measured"], r["shares_at_measured_depths"], strict=True):
        lines.append(f"| {m['double']} + {m['single']} | {m['layers_recorded']} | {m['plain_seconds']:.1f} | "
                     f"{m['capture_seconds']:.1f} | {m['within_seconds']:.1f} | "
                     f"{100 * s['capture_share_of_full_run']:.1f} % | {100 * s['within_sampling_share']:.1f} % |")
    lines += ["", "Fit, seconds = fixed + per double block x doubles + per single block x singles; check: the last depth "
              "left out of the fit and predicted:", "", "| kind | fixed | per double | per single | held-out prediction error |",
              "|---|---|---|---|---|"]
    for kind, c in r["fit_seconds"].items():
        lines.append(f"| {kind} | {c['fixed']:.1f} | {c['per_double_block']:.1f} | {c['per_single_block']:.1f} | "
                     f"{100 * r['held_out_check'][kind]['relative_error']:+.1f} % |")
    lines += ["", f"At {r['full_depth'][0]} + {r['full_depth'][1]} blocks (extrapolated): plain step "
              f"{e['plain_step_seconds']:.0f} s, re-noised capture {e['capture_seconds']:.0f} s, its share of a full run "
              f"**{100 * e['capture_share_of_full_run']:.1f} %**; within sampling "
              f"**{100 * e['within_sampling_capture_share_of_full_run']:.1f} %**."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
