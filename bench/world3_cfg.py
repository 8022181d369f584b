"""Which guidance scale makes the world v3 model follow its prompts best? Chosen on split "calib" prompts only.

Plain samples (euler / normal, 20 steps) per number of objects, on calib prompts no judge trained on and no other
benchmark reads (from FIRST), for each cfg on a small grid; judged by the held-out checker (bench/judges_v3.py:
objects right, count right, colours present) and the held-out segmenter (clean rate, at its calib threshold).
The chosen cfg maximizes mean objects right over all complexities; ties (within one bootstrap standard error)
go to the lower cfg. world3_gates.py and world3_bench.py read the choice from the results file (CHOICE).

    .host/venv/bin/python bench/world3_cfg.py [--prompts 6] [--seeds 2] [--cfg-grid 3,5,7.5,10]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import instrument
import numpy as np
from common import REPO, RESULTS, add_run_arguments, bootstrap, write_json

if str(REPO) not in sys.path:
    sys.path.append(str(REPO))
from demo import world3  # noqa: E402

FIRST = 40_000  # split "calib" prompt indices used by nothing else
CHOICE = RESULTS / "world3_cfg.json"
DEFAULT_CFG = 5.0  # before a choice was measured


def chosen_cfg(path=CHOICE):
    """The cfg chosen on calib prompts, or DEFAULT_CFG when the choice has not been measured on this checkout."""
    try:
        return float(json.loads(Path(path).read_text())["chosen_cfg"])
    except (OSError, KeyError, ValueError):
        return DEFAULT_CFG


def measure(bench, cfg, objects, prompts, seeds, reps):
    sampler = instrument.Sampler(bench, 20, cfg)
    rows, clean = [], []
    per_n = {}
    for n in objects:
        block = []
        for i in range(prompts):
            prompt = world3.sample(FIRST + i, "calib", n_objects=n)["prompt"]
            _, images = sampler.sample(prompt, 7_000 + 31 * i + n, seeds)
            block += bench.judges.adherence(images, [prompt] * seeds)
            clean += (~bench.judges.defective(images)).tolist()
        per_n[str(n)] = {k: round(float(np.mean([r[k] for r in block])), 4)
                         for k in ("objects_right", "count_right", "colours_present")}
        rows += block
    right = np.array([float(r["objects_right"]) for r in rows])
    low, high = bootstrap(lambda idx: float(right[idx].mean()), len(right), reps, 0)
    return {"cfg": cfg, "objects_right": [round(float(right.mean()), 4), round(low, 4), round(high, 4)],
            "objects_right_se": round(float(right.std(ddof=1) / np.sqrt(len(right))), 4) if len(right) > 1 else 0.0,
            "count_right": round(float(np.mean([r["count_right"] for r in rows])), 4),
            "colours_present": round(float(np.mean([r["colours_present"] for r in rows])), 4),
            "clean_rate": round(float(np.mean(clean)), 4), "by_objects": per_n}


def choose(table):
    best = max(table, key=lambda row: row["objects_right"][0])
    close = [row for row in table if row is best or row["objects_right"][0] >= best["objects_right"][0] - best["objects_right_se"]]
    return min(close, key=lambda row: row["cfg"])["cfg"]


def main(argv=None, env=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, CHOICE.name)
    parser.add_argument("--prompts", type=int, default=6, help="calib prompts per complexity")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cfg-grid", default="3,5,7.5,10")
    parser.add_argument("--objects", default="1,2,3,4,5,6")
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--calib-scenes", type=int, default=96, help="calib scenes for the segmenter's threshold")
    opts = parser.parse_args(argv)
    import world3_gates  # it reads chosen_cfg from here

    t0 = time.time()
    bench = world3_gates.start_v3_bench(opts, env)
    calibration = world3_gates.calibrate_segmenter(bench, bench.judges, opts.calib_scenes)
    objects = [int(x) for x in opts.objects.split(",")]
    table = []
    for cfg in (float(x) for x in opts.cfg_grid.split(",")):
        table.append(measure(bench, cfg, objects, opts.prompts, opts.seeds, opts.reps))
        print(json.dumps({k: v for k, v in table[-1].items() if k != "by_objects"}), flush=True)
    out = {"world_version": 3, "split": "calib", "first_prompt": FIRST, "settings": vars(opts),
           "segmenter_threshold": calibration["chosen"]["threshold"], "table": table, "chosen_cfg": choose(table),
           "rule": "max mean objects right; within one standard error the lower cfg", "seconds": round(time.time() - t0, 1)}
    write_json(opts.out, out)
    print(json.dumps({"chosen_cfg": out["chosen_cfg"]}))
    return out


if __name__ == "__main__":
    main()
