"""Is the world v3 model a valid instrument, at every complexity? Gates and localization, beside trivial cues.

Per number of objects (1-6), on split "test" prompts, through a real ComfyUI in-process with the v3 demo model
(20 euler / normal steps, the cfg chosen on calib prompts by bench/world3_cfg.py), judged by the held-out judges of bench/judges_v3.py (the parser for adherence,
the segmenter for defects; neither ever selects):
1. Adherence of plain samples: prompted colours present, objects right (the whole multiset of (colour, shape)),
   the right number of objects; the parser on the renders and their VAE round trips beside it (checker validity).
2. Autoencoder: PSNR of renders through VAEEncode -> VAEDecode; the segmenter's false-positive rate on round trips
   of clean renders, its hit rate on round trips of renders with defects.
3. Re-draws (bench/instrument.redraws): parents are samples the segmenter calls defective, the oracle mask is the
   largest spot grown by a cell; oracle clear rate against a fresh seed's clean rate there, diversity ratio.
4. Localization, per-image AUROC over latent cells: the noise difference and the attention contrast, each beside
   its neutral-words control, and the trivial cues (bench/trivial_cues.py, each and their cross-validated
   combination); on planted renders (ground-truth masks) and on generated candidates (segmenter spots).

    .host/venv/bin/python bench/world3_gates.py [--prompts 8] [--seeds 3]
"""

import argparse
import json
import time
from pathlib import Path

import instrument
import judges_v3
import numpy as np
import torch
import torch.nn.functional as F
import trivial_cues
import world3_cfg
from common import Bench, add_run_arguments, autoencoder_digest, bootstrap, write_json
from localization import CONTROL_A, CONTROL_B, HIGH, LOW, capture_one

from demo import world3

V3_WEIGHTS = judges_v3.DEMO_MODEL


def v3_weights(opts):
    return opts.demo_weights or V3_WEIGHTS


def v3_cfg(opts):
    """--cfg, else the cfg chosen on calib prompts for these weights (bench/world3_cfg.py)."""
    return world3_cfg.chosen_cfg(v3_weights(opts)) if opts.cfg is None else opts.cfg


def start_v3_bench(opts, env=None):
    """ComfyUI with the v3 demo model (bench/common.Bench) and the v3 judges as `bench.judges` (also `bench.scorers`,
    the name v2's instrument code reads the segmenter through). `env`: an environment already started (tests)."""
    weights = v3_weights(opts)
    judges = judges_v3.load(opts.scorers or judges_v3.WEIGHTS)
    trained_for = judges.info.get("parser_autoencoder_sha256")
    if trained_for is not None and trained_for != autoencoder_digest(weights):
        raise ValueError(f"the adherence checker was trained on round trips through another model's autoencoder than "
                         f"{Path(weights).name}'s: retrain it (bench/judges_v3.py --retrain --nets parser)")
    bench = Bench(env=env, weights=weights, threads=None if env else opts.threads)
    bench.world = world3
    bench.judges = bench.scorers = judges
    return bench
GATES = {  # key: (threshold, direction)
    "colours_present": (0.90, ">="), "objects_right": (0.70, ">="), "count_right": (0.70, ">="),
    "vae_psnr_db": (28.0, ">="), "segmenter_fp_clean_roundtrip": (0.05, "<="),
    "oracle_over_fresh_clear": (0.6, ">="), "trivial_cue_auroc_planted": (0.70, "<="),
    "trivial_cue_auroc_generated": (0.70, "<="),
}


def mean_ci(values, reps, seed=0):
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return [None, None, None]
    return [round(float(values.mean()), 4),
            *[round(float(x), 4) for x in bootstrap(lambda idx: float(values[idx].mean()), len(values), reps, seed)]]


def own_palette(prompt):
    objects, background = world3.parse_prompt(prompt)
    tone = background.split()[2]
    return [*world3.BACKGROUND_TONES[tone], *(world3.COLOURS[c] for c, _ in objects)]


def to_uint8(images):
    return (images.clamp(0, 1) * 255).round().byte().numpy()


def adherence_block(judges, images, prompts):
    rows = judges.adherence(images, prompts)
    return {k: float(np.mean([r[k] for r in rows])) for k in ("colours_present", "objects_right", "count_right",
                                                              "background_right")}


SPOT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
CALIB_FIRST = 120_000  # split "calib" scenes the judges never trained on (the segmenter's start at 100_000)


def calibrate_segmenter(bench, judges, count):
    """The segmenter's spot threshold, chosen on calib scenes through the model's VAE (the gate's condition): the
    lowest on the grid whose false-positive rate on clean round trips meets the gate; its hit rate on round
    trips of the same scenes with defects beside it. The test figures are then read at that threshold."""
    clean = np.stack([world3.sample(CALIB_FIRST + i, "calib", with_defect=False)["image"] for i in range(count)])
    broken = np.stack([world3.sample(CALIB_FIRST + i, "calib", with_defect=True)["image"] for i in range(count)])
    clean_rt, broken_rt = instrument.roundtrip(bench, clean), instrument.roundtrip(bench, broken)
    grid = []
    for threshold in SPOT_THRESHOLDS:
        judges.set_spot_threshold(threshold)
        grid.append({"threshold": threshold, "fp_clean_roundtrip": float(judges.defective(clean_rt).mean()),
                     "hit_defect_roundtrip": float(judges.defective(broken_rt).mean())})
    limit = GATES["segmenter_fp_clean_roundtrip"][0]
    chosen = next((row for row in grid if row["fp_clean_roundtrip"] <= limit), grid[-1])
    judges.set_spot_threshold(chosen["threshold"])
    return {"split": "calib", "first": CALIB_FIRST, "scenes": count, "chosen": chosen, "grid": grid}


def autoencoder_block(bench, judges, n, count, reps):
    first = 40_000
    scenes = [world3.sample(first + i, "test", n_objects=n) for i in range(count)]
    images = np.stack([s["image"] for s in scenes])
    recon = instrument.roundtrip(bench, images).numpy()
    mse = ((recon - images.astype(np.float32) / 255.0) ** 2).mean(axis=(1, 2, 3))
    clean = np.stack([world3.sample(first + i, "test", n_objects=n, with_defect=False)["image"] for i in range(count)])
    broken = np.stack([world3.sample(first + i, "test", n_objects=n, with_defect=True)["image"] for i in range(count)])
    return {"vae_psnr_db": round(float(-10 * np.log10(mse.mean())), 3),
            "segmenter_fp_clean_render": float(judges.defective(clean).mean()),
            "segmenter_fp_clean_roundtrip": mean_ci(judges.defective(instrument.roundtrip(bench, clean)), reps, 1),
            "segmenter_hit_defect_roundtrip": float(judges.defective(instrument.roundtrip(bench, broken)).mean()),
            "parser_on_renders": adherence_block(judges, images, [s["prompt"] for s in scenes]),
            "parser_on_roundtrips": adherence_block(judges, torch.from_numpy(recon), [s["prompt"] for s in scenes])}


def capture_aurocs(bench, latent, prompt, labels, seed):
    """AUROC of the noise difference and the attention contrast, quality and neutral words, for one latent."""
    p_from = bench.pack.nodes.defect_mask.defect_probability_from_capture
    out = {}
    for suffix, (high, low) in (("", (HIGH, LOW)), (", neutral words", (CONTROL_A, CONTROL_B))):
        cap = capture_one(bench, latent, prompt, high, low, instrument.CAPTURE_LEVELS, seed=seed)
        out["noise difference" + suffix] = trivial_cues.auroc(cap["noise_difference"][0].detach().numpy(), labels)
        out["attention" + suffix] = trivial_cues.auroc(
            p_from(cap, "attention", instrument.ATTENTION_LAMBDA, True)[0].detach().numpy(), labels)
    return out


def localization_block(bench, images_uint8, latents, prompts, labels, reps):
    """Per-image AUROC of the LoTTS signals and the trivial cues on the same images and cell labels."""
    keep = [i for i, y in enumerate(labels) if y.any() and not y.all()]
    signals = {}
    for i in keep:
        for name, value in capture_aurocs(bench, latents[i:i + 1], prompts[i], labels[i], seed=i).items():
            signals.setdefault(name, []).append(value)
    out = {"images": len(keep), **{k: mean_ci(v, reps, 2) for k, v in signals.items()}}
    if len(keep) < 2:  # too few images with both defective and clean cells (tiny smoke runs)
        out["trivial"], out["trivial_best"] = {}, {"cue": None, "auroc": [None, None, None]}
        return out
    masks = np.stack([F.interpolate(torch.from_numpy(labels[i]).float()[None, None], scale_factor=8)[0, 0].numpy() > 0.5
                      for i in keep])
    cues = trivial_cues.evaluate(images_uint8[keep], masks, [own_palette(prompts[i]) for i in keep],
                                 trivial_cues.world_palette(world3))
    out["trivial"] = {k: cues[k]["auroc"] for k in (*trivial_cues.CUES, "combined")}
    out["trivial_best"] = cues["best"]
    return out


def complexity_block(bench, judges, sampler, n, opts):
    prompts = [world3.sample(i, "test", n_objects=n)["prompt"] for i in range(opts.prompts)]
    samples, adherence = [], []
    for i, prompt in enumerate(prompts):
        latents, images = sampler.sample(prompt, 1000 + 13 * i + n, opts.seeds)
        samples.append({"prompt": prompt, "latents": latents, "images": images})
        adherence += judges.adherence(images, [prompt] * opts.seeds)
    out = {k: mean_ci([float(r[k]) for r in adherence], opts.reps, 3)
           for k in ("colours_present", "objects_right", "count_right", "background_right")}
    all_images = torch.cat([s["images"] for s in samples])
    out["sample_clean_rate"] = float(1 - judges.defective(all_images).mean())
    out["autoencoder"] = autoencoder_block(bench, judges, n, opts.ae_images, opts.reps)
    redraw, _ = instrument.redraws(bench, sampler, samples, opts.parents, 4, opts.reps)
    out["redraws"] = redraw
    # generated candidates: labels from the held-out segmenter's spots
    gen_imgs, gen_lat, gen_prompts, gen_labels = [], [], [], []
    for s in samples:
        spots = judges.defect_probability_maps(s["images"]) > 0.5
        cells = F.adaptive_avg_pool2d(spots.float()[:, None], tuple(s["latents"].shape[-2:]))[:, 0] > 0.2
        for j in range(len(cells)):
            gen_imgs.append(to_uint8(s["images"][j]))
            gen_lat.append(s["latents"][j:j + 1])
            gen_prompts.append(s["prompt"])
            gen_labels.append(cells[j].numpy())
    out["localization_generated"] = localization_block(bench, np.stack(gen_imgs), torch.cat(gen_lat), gen_prompts,
                                                       gen_labels, opts.reps)
    images, masks, _, _ = trivial_cues.planted(world3, "test", opts.planted, n_objects=n)
    planted_prompts = [world3.sample(i, "test", n_objects=n, with_defect=True)["prompt"] for i in range(opts.planted)]
    labels = [trivial_cues.cell_labels(m) for m in masks]
    out["localization_planted"] = localization_block(bench, images, bench.vae_encode(list(images)), planted_prompts,
                                                     labels, opts.reps)
    return out


def headline(blocks):
    """The gate keys per complexity, with pass/fail."""
    per = {}
    for n, b in blocks.items():
        redraw = b["redraws"].get("by_t0", {})
        best = max(redraw, key=lambda t: redraw[t]["oracle_clear_rate"]) if redraw else None
        values = {"colours_present": b["colours_present"][0], "objects_right": b["objects_right"][0],
                  "count_right": b["count_right"][0], "vae_psnr_db": b["autoencoder"]["vae_psnr_db"],
                  "segmenter_fp_clean_roundtrip": b["autoencoder"]["segmenter_fp_clean_roundtrip"][0],
                  "oracle_over_fresh_clear": redraw[best]["oracle_over_fresh_clear"] if best is not None else None,
                  "trivial_cue_auroc_planted": b["localization_planted"]["trivial_best"]["auroc"][0],
                  "trivial_cue_auroc_generated": b["localization_generated"]["trivial_best"]["auroc"][0],
                  "auroc_noise_difference_generated": b["localization_generated"].get("noise difference", [None])[0],
                  "auroc_attention_generated": b["localization_generated"].get("attention", [None])[0],
                  "auroc_noise_difference_planted": b["localization_planted"].get("noise difference", [None])[0],
                  "auroc_attention_planted": b["localization_planted"].get("attention", [None])[0]}
        values["passed"] = {k: v is not None and (v >= t if d == ">=" else v <= t)
                            for k, (t, d) in GATES.items() for v in [values[k]]}
        per[n] = values
    return per


@torch.no_grad()
def main(argv=None, env=None):
    """`env`: a harness environment already started in this process (the smoke test)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, "world3_gates.json")
    parser.add_argument("--prompts", type=int, default=8, help="test prompts per complexity")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parents", type=int, default=8, help="re-draw parents per complexity")
    parser.add_argument("--ae-images", type=int, default=48)
    parser.add_argument("--planted", type=int, default=24, help="planted renders per complexity for localization")
    parser.add_argument("--objects", default="1,2,3,4,5,6")
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--cfg", type=float, default=None, help="default: the choice in results/world3_cfg.json")
    parser.add_argument("--calib-scenes", type=int, default=96, help="calib scenes for the segmenter's threshold")
    opts = parser.parse_args(argv)
    opts.cfg = v3_cfg(opts)
    t0 = time.time()
    bench = start_v3_bench(opts, env)
    judges = bench.judges
    calibration = calibrate_segmenter(bench, judges, opts.calib_scenes)
    print(json.dumps({"segmenter_calibration": calibration["chosen"]}), flush=True)
    sampler = instrument.Sampler(bench, 20, opts.cfg)
    blocks = {}
    for n in (int(x) for x in opts.objects.split(",")):
        blocks[str(n)] = complexity_block(bench, judges, sampler, n, opts)
        print(json.dumps({"objects": n, "seconds": round(time.time() - t0), **headline({str(n): blocks[str(n)]})[str(n)]},
                         default=str), flush=True)
    out = {"world_version": 3, "settings": vars(opts), "gates": {k: list(v) for k, v in GATES.items()},
           "segmenter_calibration": calibration,
           "per_complexity": headline(blocks), "blocks": blocks, "seconds": round(time.time() - t0, 1)}
    write_json(opts.out, out)
    return out


if __name__ == "__main__":
    main()
