"""Which guidance scale should the world v3 runs use? Chosen on split "calib" prompts only, by the selecting judge.

Plain samples (euler / normal, 20 steps) per number of objects, on calib prompts no judge trained on and no other
benchmark reads (from FIRST), for each cfg on a small grid. The choice is made as a user would make it, with the
selecting verifier (it reads the prompt: log p(clean) + log p(the prompt's content)): the cfg with the highest mean
score; a lower cfg within one paired standard error of the best is preferred. The held-out judges never choose: the checker's
adherence (objects right, count right, colours present) and the segmenter's clean rate are reported beside it.
world3_gates.py and world3_bench.py read the choice from the results file (CHOICE), which names the demo weights it
was made for; another model's run must choose again or pass --cfg.

    .host/venv/bin/python bench/world3_cfg.py [--prompts 6] [--seeds 2] [--cfg-grid 2,3,5,7.5,10]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import instrument
import numpy as np
from common import REPO, RESULTS, add_run_arguments, bootstrap, weights_digest, write_json

if str(REPO) not in sys.path:
    sys.path.append(str(REPO))
from demo import world3  # noqa: E402

FIRST = 40_000  # split "calib" prompt indices used by nothing else
CHOICE = RESULTS / "world3_cfg.json"
DEFAULT_CFG = 5.0  # before a choice was measured


def chosen_cfg(weights, path=CHOICE):
    """The cfg chosen on calib prompts for these demo weights; DEFAULT_CFG (said) when none was measured yet."""
    if not Path(path).is_file():
        print(json.dumps({"warning": f"{path} absent: cfg {DEFAULT_CFG} (run bench/world3_cfg.py to choose it)"}))
        return DEFAULT_CFG
    choice = json.loads(Path(path).read_text())
    if choice.get("demo_weights_sha256") != weights_digest(weights):
        raise ValueError(f"{path} chose cfg for other demo weights than {weights}: run bench/world3_cfg.py "
                         "--demo-weights on them, or pass --cfg")
    return float(choice["chosen_cfg"])


def measure(bench, cfg, objects, prompts, seeds, reps):
    sampler = instrument.Sampler(bench, 20, cfg)
    rows, clean, scores = [], [], []
    per_n = {}
    for n in objects:
        block, block_scores = [], []
        for i in range(prompts):
            prompt = world3.sample(FIRST + i, "calib", n_objects=n)["prompt"]
            _, images = sampler.sample(prompt, 7_000 + 31 * i + n, seeds)
            block_scores += bench.judges.score(images, [prompt] * seeds).tolist()
            block += bench.judges.adherence(images, [prompt] * seeds)
            clean += (~bench.judges.defective(images)).tolist()
        per_n[str(n)] = {"verifier_score": round(float(np.mean(block_scores)), 4),
                         **{k: round(float(np.mean([r[k] for r in block])), 4)
                            for k in ("objects_right", "count_right", "colours_present")}}
        rows += block
        scores += block_scores
    scores = np.array(scores)
    low, high = bootstrap(lambda idx: float(scores[idx].mean()), len(scores), reps, 0)
    return {"cfg": cfg, "verifier_score": [round(float(scores.mean()), 4), round(low, 4), round(high, 4)],
            "scores": [round(float(x), 4) for x in scores],  # per (complexity, prompt, seed), the same order every cfg
            **{k: round(float(np.mean([r[k] for r in rows])), 4)
               for k in ("objects_right", "count_right", "colours_present")},
            "clean_rate": round(float(np.mean(clean)), 4), "by_objects": per_n}


def choose(table):
    """Highest mean selecting-verifier score; a lower cfg whose paired difference from the best (same prompts and
    seeds) is within one standard error of zero is preferred (scores vary far more between prompts than between
    cfgs, so unpaired errors would call every cfg a tie)."""
    best = max(table, key=lambda row: row["verifier_score"][0])
    ref = np.array(best["scores"])

    def tied(row):
        diff = ref - np.array(row["scores"])
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        row["paired_gap_to_best"] = [round(float(diff.mean()), 4), round(float(se), 4)]
        return row is best or diff.mean() <= se

    return min((row for row in table if tied(row)), key=lambda row: row["cfg"])["cfg"]


def main(argv=None, env=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, CHOICE.name)
    parser.add_argument("--prompts", type=int, default=6, help="calib prompts per complexity")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cfg-grid", default="2,3,5,7.5,10")
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
    weights = world3_gates.v3_weights(opts)
    out = {"world_version": 3, "split": "calib", "first_prompt": FIRST, "settings": vars(opts),
           "demo_weights": Path(weights).name, "demo_weights_sha256": weights_digest(weights),
           "segmenter_threshold": calibration["chosen"]["threshold"], "table": table, "chosen_cfg": choose(table),
           "rule": "max mean selecting-verifier score; a lower cfg within one paired standard error of the best", "seconds": round(time.time() - t0, 1)}
    write_json(opts.out, out)
    print(json.dumps({"chosen_cfg": out["chosen_cfg"]}))
    return out


if __name__ == "__main__":
    main()
