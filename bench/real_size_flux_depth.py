"""Benchmark (not a test): the capture's share of a FLUX.1 run at its full depth (19 double + 38 single blocks),
extrapolated from measured depths, since the full model does not fit this machine in fp32 (about 48 GB).

real_size.py measures FLUX.1 at full width with 2 double and 2 single blocks: there the capture records 2 of 4
blocks ("auto" layers read every double block), while the real model records 19 of 57, so the recording weighs
more in that share than it would at full depth. Here each of plain step, re-noised capture and one step of capture
within sampling (at the shipped settings of workflows/api/lotts_flux.json) is timed at several depths in one run,
each measurement in a fresh process (real_size.child), and fitted as seconds = fixed + per double block x doubles +
per single block x singles. Blocks of one kind do the same work at one token count, so the cost should be linear in
the block counts (the runs so far find it is not, at these depths: a negative fixed part; see README); the check (gate: within 5 % for every kind) is an extrapolation, the deepest depth predicted from the
shallower ones. The shares at 19 + 38 follow from the fits as in real_size.py: capture / (capture + 28 steps). A run
on a machine whose speed drifts between depths misses the check, and its full-depth figures are no measurement.

    .host/venv/bin/python bench/real_size_flux_depth.py [--depths 1x1,2x1,1x2,2x2,4x4] [--note TEXT]
        [--reanalyse bench/results/real_size_flux_depth.json]
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import real_size

FULL_DEPTH = (19, 38)  # FLUX.1 [dev] / [schnell]: double blocks, single blocks
KINDS = ("plain", "capture", "within")
CLOCKS = {"wall": "seconds", "cpu": "cpu_seconds"}  # one thread: CPU time resists another job's time slices
CHECK_TOLERANCE = 0.05  # the extrapolation check's gate: the deepest depth predicted within 5 % for every kind


def design(depths):
    matrix = np.array([[1.0, d, s] for d, s in depths])
    if np.linalg.matrix_rank(matrix) < 3:
        raise ValueError(f"depths {depths}: the fit needs both block counts to vary independently")
    return matrix


def fit(depths, seconds):
    """Least-squares (fixed, per double block, per single block) for seconds measured at (double, single) depths."""
    coef, *_ = np.linalg.lstsq(design(depths), np.array(seconds, dtype=float), rcond=None)
    return coef


def predict(coef, depth):
    return float(coef[0] + coef[1] * depth[0] + coef[2] * depth[1])


def within_capture_seconds(plain, within_step, levels):
    """Capture within sampling: its step's cost above a plain step, once per level (as real_size.derive, which
    clamps a negative difference to zero; an extrapolation that gives one is refused here)."""
    within = levels * (within_step - plain)
    if within < 0:
        raise ValueError(f"a within-sampling step ({within_step:.1f} s) measured faster than a plain one ({plain:.1f} s)")
    return within


def shares(plain, capture, within_step, levels, steps):
    """Re-noised and within-sampling capture as shares of a full run."""
    within = within_capture_seconds(plain, within_step, levels)
    return real_size.share_of_full_run(capture, plain, steps), real_size.share_of_full_run(within, plain, steps)


def deepest_index(depths):
    """The depth with the most blocks: the check predicts it from the others."""
    return max(range(len(depths)), key=lambda i: sum(depths[i]))


def analyse(measured, depths, clock, levels, steps):
    """Fits per kind on every depth, a check (the deepest depth predicted from the others: an extrapolation, as the
    full depth is) and the shares at FULL_DEPTH, all on one clock."""
    key = CLOCKS[clock]
    deepest = deepest_index(depths)
    rest = [i for i in range(len(depths)) if i != deepest]
    fits, check, at = {}, {}, {}
    for kind in KINDS:
        seconds = [m[kind][key] for m in measured]
        coef = fit(depths, seconds)
        fits[kind] = {"fixed": coef[0], "per_double_block": coef[1], "per_single_block": coef[2],
                      "residuals": [s - predict(coef, d) for s, d in zip(seconds, depths, strict=True)]}
        small = fit([depths[i] for i in rest], [seconds[i] for i in rest])
        check[kind] = {"depth": list(depths[deepest]), "measured": seconds[deepest],
                       "predicted": predict(small, depths[deepest]),
                       "relative_error": predict(small, depths[deepest]) / seconds[deepest] - 1}
        at[kind] = predict(coef, FULL_DEPTH)
    renoised, within = shares(at["plain"], at["capture"], at["within"], levels, steps)
    passed = all(abs(c["relative_error"]) <= CHECK_TOLERANCE for c in check.values())
    return {"fit_seconds": fits, "extrapolation_check": check, "extrapolation_check_passed": passed,
            "at_full_depth": {"plain_step_seconds": at["plain"], "capture_seconds": at["capture"],
                              "within_step_seconds": at["within"],
                              "within_capture_seconds": within_capture_seconds(at["plain"], at["within"], levels),
                              "capture_share_of_full_run": renoised, "within_sampling_capture_share_of_full_run": within}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="1x1,2x1,1x2,2x2,4x4", help="double x single blocks per measured model")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="real_size_flux_depth.json")
    parser.add_argument("--note", default="", help="the conditions of the run (e.g. another job on the machine)")
    parser.add_argument("--reanalyse", default=None, help="a results file: analyse its measurements again, measure nothing")
    opts = parser.parse_args(argv)
    earlier = json.loads(Path(opts.reanalyse).read_text()) if opts.reanalyse else None
    if earlier:
        opts.depths = ",".join(f"{m['double']}x{m['single']}" for m in earlier["measured"])
        opts.note = opts.note or earlier.get("note", "")
    depths = [tuple(int(x) for x in d.split("x")) for d in opts.depths.split(",")]
    design(depths)  # both fits must be determined before the measuring starts, not after it
    design([d for i, d in enumerate(depths) if i != deepest_index(depths)])
    levels, signal, layers = real_size.shipped("flux")
    steps = real_size.FULL_RUN_STEPS["flux"]
    measured = earlier["measured"] if earlier else []
    for depth in [] if earlier else depths:
        runs = {kind: real_size.run_child("flux", kind, opts, depth) for kind in KINDS}
        for kind in ("capture", "within"):
            if runs[kind]["layers_recorded"] != depth[0]:
                raise RuntimeError(f"{kind} at {depth}: recorded {runs[kind]['layers_recorded']} layers, expected every "
                                   f"double block ({depth[0]})")
        measured.append({"double": depth[0], "single": depth[1],
                         **{kind: {k: runs[kind][k] for k in CLOCKS.values()} for kind in KINDS}})
    # if a call cost in proportion to its batch rows: attention's three prompts per level against a one-row step
    rows = 3 if signal != "noise difference" else 2
    result = {"device": opts.device, "dtype": opts.dtype, "threads": int(os.environ.get("LOTTS_BENCH_THREADS", "1")),
              "note": opts.note, "levels": levels, "signal": signal, "layers": layers, "full_run_steps": steps, "full_depth": list(FULL_DEPTH),
              "measured": measured,
              "shares_at_measured_depths": [
                  dict(zip(("capture_share_of_full_run", "within_sampling_capture_share_of_full_run"),
                           shares(m["plain"]["seconds"], m["capture"]["seconds"], m["within"]["seconds"], len(levels),
                                  steps), strict=True), double=m["double"], single=m["single"]) for m in measured],
              "renoised_rows_per_level": rows, "renoised_floor_share": rows * len(levels) / (rows * len(levels) + steps),
              **{clock: analyse(measured, depths, clock, len(levels), steps) for clock in CLOCKS}}
    result["estimated_at_full_depth"] = result["wall"]["at_full_depth"]
    path = real_size.RESULTS / opts.out
    path.write_text(json.dumps(result, indent=1) + "\n")
    path.with_suffix(".md").write_text(report(result))
    print(report(result))
    return result


def report(r):
    lines = [f"# FLUX.1 capture share at full depth, extrapolated ({r['device']}, {r['dtype']}, {r['threads']} threads)",
             "", f"Shipped settings: levels {r['levels']}, signal {r['signal']}, layers {r['layers']} (every double block "
             f"recorded); a full run is {r['full_run_steps']} steps. Full width, random weights, each time one "
             "measurement in a fresh process (wall and CPU seconds)." + (f" {r['note']}" if r.get("note") else ""), "",
             "| double + single blocks | plain step (s) | re-noised capture (s) | within-sampling step (s) "
             "| re-noised share | within share |", "|---|---|---|---|---|---|"]
    for m, s in zip(r["measured"], r["shares_at_measured_depths"], strict=True):
        lines.append(f"| {m['double']} + {m['single']} | {m['plain']['seconds']:.1f} | {m['capture']['seconds']:.1f} | "
                     f"{m['within']['seconds']:.1f} | {100 * s['capture_share_of_full_run']:.1f} % | "
                     f"{100 * s['within_sampling_capture_share_of_full_run']:.1f} % |")
    for clock in CLOCKS:
        a = r[clock]
        lines += ["", f"{clock} seconds: fit = fixed + per double block x doubles + per single block x singles on every "
                  "depth; check: the deepest depth predicted from the others (an extrapolation):", "",
                  "| kind | fixed | per double | per single | residuals | deepest: measured | predicted | error |",
                  "|---|---|---|---|---|---|---|---|"]
        for kind, c in a["fit_seconds"].items():
            x = a["extrapolation_check"][kind]
            lines.append(f"| {kind} | {c['fixed']:.1f} | {c['per_double_block']:.1f} | {c['per_single_block']:.1f} | "
                         f"{', '.join(f'{v:+.1f}' for v in c['residuals'])} | {x['measured']:.1f} | {x['predicted']:.1f} | "
                         f"{100 * x['relative_error']:+.1f} % |")
        e = a["at_full_depth"]
        verdict = ("check passed" if a["extrapolation_check_passed"] else
                   f"CHECK MISSED (gate: within {100 * CHECK_TOLERANCE:.0f} %), so these are not measurements")
        lines += ["", f"At {r['full_depth'][0]} + {r['full_depth'][1]} blocks ({clock} seconds, extrapolated): plain step "
                  f"{e['plain_step_seconds']:.0f} s, re-noised capture {e['capture_seconds']:.0f} s, its share of a full "
                  f"run **{100 * e['capture_share_of_full_run']:.1f} %**; within sampling {e['within_capture_seconds']:.0f} s, "
                  f"**{100 * e['within_sampling_capture_share_of_full_run']:.1f} %**; {verdict}."]
    lines += ["", f"Floor: were a model call's cost proportional to its batch rows, the re-noised capture ({r['signal']}: "
              f"{r['renoised_rows_per_level']} prompts per level) would take "
              f"{100 * r['renoised_floor_share']:.1f} % of a full run before any recording."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
