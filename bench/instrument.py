"""Is the demo world model a valid instrument for "LoTTS against Best-of-N"? Gates measured on GENERATED samples.

Through a real ComfyUI in-process (bench/common.Bench) with the demo model; plain sampling is 20 euler / normal
steps, cfg 5, negative "". Judges: the prompt-adherence checker (bench/adherence.py), the held-out segmenter
(bench/world_scorers.py; an image or a region is "defective" when it holds a spot of p > 0.5 of at least
MIN_SPOT_PIXELS). 95 % intervals are percentile bootstraps over prompts, parents or images.

1. Prompt adherence of plain samples: prompted colours present, prompted (colour, shape) objects correct,
   background right; the same checker on the renders and on their round trips through the demo VAE beside it.
2. Autoencoder: PSNR of held-out renders through VAEEncode -> VAEDecode; the segmenter's false-positive rate
   on round trips of CLEAN renders (and its hit rate on round trips of renders with defects).
3. Re-draws. Parents: plain samples the segmenter calls defective; the region is its largest spot, in latent
   cells, grown by one cell (the oracle mask: the defect region itself). Each parent is re-drawn k = 2 times
   there (the pack's nodes/_local.localized_refine, g = 0) from start steps T0_FRACTIONS of the schedule (0 = pure noise inside).
   Fresh seeds of the same prompt are the baseline. Re-draw diversity ratio = mean |pixel difference| inside
   the region between the two re-draws / the same between two fresh seeds. Oracle clear rate = share of
   re-draws whose region holds no spot; fresh clear rate = share of fresh seeds clean in the same region.
4. Localization on generated candidates: AUROC of the capture's noise difference and attention maps against
   the segmenter's spots (latent cells), each beside its neutral-word control (same capture, quality words
   replaced by words with no quality meaning in the world's captions).

    .host/venv/bin/python bench/instrument.py [--prompts 48] [--seeds 3]
"""

import argparse
import time
from pathlib import Path

import adherence
import numpy as np
import torch
import torch.nn.functional as F
import world_scorers
from common import Bench, add_run_arguments, bootstrap, fmt, fmt_ci, markdown_table, write_json
from localization import CONTROL_A, CONTROL_B, HIGH, LOW, capture_one

T0_FRACTIONS = (0.0, 0.25, 0.5)  # start steps 0 (pure noise inside the region), 5 and 10 of 20
CAPTURE_LEVELS = (0.1, 0.2, 0.3)
ATTENTION_LAMBDA = 1.0
CLEAR_PIXELS = world_scorers.MIN_SPOT_PIXELS // 2  # fewer p > 0.5 pixels than this in a region: clean there
GATES = {  # name: (threshold, direction, what)
    "prompt_colour_present": (0.90, ">=", "prompted colours present in plain samples"),
    "prompt_shape_correct": (0.70, ">=", "prompted (colour, shape) objects correct in plain samples"),
    "vae_psnr_db": (28.0, ">=", "autoencoder PSNR on held-out renders (dB)"),
    "segmenter_fp_clean_roundtrip": (0.05, "<=", "segmenter calls a round trip of a clean render defective"),
    "redraw_diversity_ratio": (0.6, ">=", "re-draw diversity ratio (best start step)"),
    "oracle_over_fresh_clear": (0.6, ">=", "oracle re-draw clear rate / fresh-seed clean rate (best start step)"),
}


class Sampler:
    def __init__(self, bench, steps, cfg):
        self.bench, self.steps, self.cfg = bench, steps, cfg
        self.search = bench.pack.nodes._search
        self.negative = bench.encode_text("")
        size = bench.world.RESOLUTION
        self.empty = bench.nodes.EmptyLatentImage().generate(size, size, 1)[0]

    def settings(self, prompt):
        return self.search.SamplingSettings(self.bench.encode_text(prompt), self.negative, self.steps, self.cfg,
                                            "euler", "normal")

    def sample(self, prompt, seed, n):
        latents = self.search.sample_candidates(self.bench.model, self.empty, self.settings(prompt), seed, n)
        return latents, self.bench.vae_decode(latents).clamp(0, 1)

    def redraw(self, prompt, parent_latent, cell_mask, seed, start_step, k):
        local = self.bench.pack.nodes._local
        s = self.settings(prompt)
        out, _ = local.localized_refine(self.bench.model, s.positive, s.negative, {"samples": parent_latent},
                                        cell_mask[None].float(), seed, self.steps, self.cfg, "euler", "normal",
                                        start_step, k, 0, show_progress=False)
        return self.bench.vae_decode(out["samples"]).clamp(0, 1)


def t0_steps(steps):
    return sorted({round(f * steps) for f in T0_FRACTIONS})


def roundtrip(bench, images_uint8):
    with torch.inference_mode():
        return bench.vae_decode(bench.vae_encode(list(images_uint8))).clamp(0, 1)


def mean_ci(values, reps, seed=0):
    values = np.asarray(values, np.float64)
    return float(values.mean()), bootstrap(lambda idx: float(values[idx].mean()), len(values), reps=reps, seed=seed)


# -- 1. prompt adherence ------------------------------------------------------------------------------------
def prompt_adherence(bench, sampler, checker, n_prompts, seeds, reps):
    world = bench.world
    scenes = [world.sample(i, "test") for i in range(n_prompts)]
    per_prompt, samples = [], []
    for i, scene in enumerate(scenes):
        latents, images = sampler.sample(scene["prompt"], 1000 + i, seeds)
        checks = checker.check(images, [scene["prompt"]] * seeds)
        per_prompt.append(checks)
        samples.append({"prompt": scene["prompt"], "latents": latents, "images": images})
    renders = np.stack([s["image"] for s in scenes])
    prompts = [s["prompt"] for s in scenes]
    rows = {"plain samples": per_prompt,
            "renders": [[c] for c in checker.check(renders, prompts)],
            "renders through the demo VAE": [[c] for c in checker.check(roundtrip(bench, renders), prompts)]}
    out = {}
    for name, groups in rows.items():
        entry = {"images": sum(len(g) for g in groups)}
        for key, pick in (("colour_present", 2), ("shape_correct", 3)):
            hits = [sum(o[pick] for c in g for o in c["objects"]) for g in groups]
            totals = [sum(len(c["objects"]) for c in g) for g in groups]
            hits, totals = np.array(hits, float), np.array(totals, float)
            entry[key] = float(hits.sum() / totals.sum())
            entry[key + "_ci"] = bootstrap(lambda idx, h=hits, t=totals: float(h[idx].sum() / t[idx].sum()),
                                           len(groups), reps=reps, seed=3)
        bg = np.array([np.mean([c["background_right"] for c in g]) for g in groups])
        entry["background_right"], entry["background_right_ci"] = mean_ci(bg, reps, seed=4)
        out[name] = entry
    return out, samples


# -- 2. autoencoder and the segmenter's false positives -----------------------------------------------------
def autoencoder_gates(bench, n, reps, first=40_000):
    world = bench.world
    scenes = [world.sample(i, "test") for i in range(first, first + n)]
    images = np.stack([s["image"] for s in scenes])
    recon = roundtrip(bench, images).numpy()
    err = (recon - images.astype(np.float32) / 255.0) ** 2
    mse_per_image = err.mean(axis=(1, 2, 3))
    masks = np.stack([s["defect_mask"] for s in scenes])
    inside = err.mean(axis=-1)[masks].mean() if masks.any() else float("nan")
    clean = np.stack([world.sample(i, "test", with_defect=False)["image"] for i in range(first, first + n)])
    broken = np.stack([world.sample(i, "test", with_defect=True)["image"] for i in range(first, first + n)])
    scorers = bench.scorers
    flags = {"clean renders": scorers.defective(clean), "clean renders through the demo VAE":
             scorers.defective(roundtrip(bench, clean)), "renders with defects through the demo VAE":
             scorers.defective(roundtrip(bench, broken))}
    out = {"images": n, "psnr_db": float(-10 * np.log10(mse_per_image.mean())),
           "psnr_db_ci": bootstrap(lambda idx: float(-10 * np.log10(mse_per_image[idx].mean())), n, reps=reps, seed=5),
           "psnr_db_in_defects": float(-10 * np.log10(inside))}
    for name, f in flags.items():
        out[f"segmenter_defective: {name}"], out[f"segmenter_defective: {name} ci"] = mean_ci(f.astype(float), reps)
    return out


# -- 3. re-draws ---------------------------------------------------------------------------------------------
def largest_spot_region(prob_map, hw):
    """(spot pixels (H, W) bool, region cells (h, w) bool: the spot's cells grown by one cell) or None."""
    from scipy import ndimage

    labelled, n = ndimage.label(prob_map > world_scorers.AREA_THRESHOLD, structure=np.ones((3, 3)))
    if n == 0:
        return None
    sizes = np.bincount(labelled.reshape(-1))[1:]
    if sizes.max() < world_scorers.MIN_SPOT_PIXELS:
        return None
    spot = labelled == (int(sizes.argmax()) + 1)
    cells = F.adaptive_max_pool2d(torch.from_numpy(spot).float()[None, None], hw)
    return spot, F.max_pool2d(cells, 3, 1, 1)[0, 0] > 0


def region_pixels(cells, size):
    return F.interpolate(cells.float()[None, None], size=(size, size), mode="nearest")[0, 0].bool().numpy()


def spot_pixels_in(bench, images, region):
    probs = bench.scorers.defect_probability_maps(images).numpy()
    return ((probs > world_scorers.AREA_THRESHOLD) & region[None]).sum(axis=(1, 2))


def mean_abs_in(a, b, region):
    return float((a - b).abs().mean(dim=-1)[:, torch.from_numpy(region)].mean())


def redraws(bench, sampler, samples, max_parents, fresh, reps):
    size = bench.world.RESOLUTION
    parents = []
    for i, s in enumerate(samples):
        probs = bench.scorers.defect_probability_maps(s["images"]).numpy()
        for j in range(len(probs)):
            found = largest_spot_region(probs[j], tuple(s["latents"].shape[-2:]))
            if found is not None:
                parents.append({"prompt_index": i, "j": j, "prompt": s["prompt"], "latent": s["latents"][j:j + 1],
                                "image": s["images"][j:j + 1], "cells": found[1]})
    n_candidates = sum(len(s["images"]) for s in samples)
    parents = parents[:max_parents]
    rows = []
    for p_index, parent in enumerate(parents):
        region = region_pixels(parent["cells"], size)
        _, fresh_images = sampler.sample(parent["prompt"], 50_000 + p_index, fresh)
        fresh_spots = spot_pixels_in(bench, fresh_images, region)
        pairs = [(a, b) for a in range(fresh) for b in range(a + 1, fresh)]
        row = {"prompt": parent["prompt"], "cells": int(parent["cells"].sum()),
               "parent_spot_pixels": int(spot_pixels_in(bench, parent["image"], region)[0]),
               "fresh_clean": float((fresh_spots < CLEAR_PIXELS).mean()),
               "fresh_fresh": float(np.mean([mean_abs_in(fresh_images[a:a + 1], fresh_images[b:b + 1], region)
                                             for a, b in pairs])),
               "parent_fresh": mean_abs_in(fresh_images, parent["image"], region), "t0": {}}
        for t0 in t0_steps(sampler.steps):
            images = sampler.redraw(parent["prompt"], parent["latent"], parent["cells"], 70_000 + p_index, t0, 2)
            spots = spot_pixels_in(bench, images, region)
            row["t0"][t0] = {"cleared": float((spots < CLEAR_PIXELS).mean()),
                             "redraw_redraw": mean_abs_in(images[0:1], images[1:2], region),
                             "parent_redraw": mean_abs_in(images, parent["image"], region),
                             "outside_change": float((images - parent["image"]).abs().mean(dim=-1)[
                                 :, torch.from_numpy(~region)].mean())}
        rows.append(row)
    out = {"candidates_scanned": n_candidates, "parents": len(rows), "fresh_per_parent": fresh,
           "mean_region_cells": float(np.mean([r["cells"] for r in rows])) if rows else float("nan"), "by_t0": {}}
    if not rows:
        return out, rows
    fresh_clean = np.array([r["fresh_clean"] for r in rows])
    ff = np.array([r["fresh_fresh"] for r in rows])
    out["fresh_clear_rate"], out["fresh_clear_rate_ci"] = mean_ci(fresh_clean, reps, seed=6)
    for t0 in t0_steps(sampler.steps):
        cleared = np.array([r["t0"][t0]["cleared"] for r in rows])
        rr = np.array([r["t0"][t0]["redraw_redraw"] for r in rows])
        pr = np.array([r["t0"][t0]["parent_redraw"] for r in rows])
        entry = {}
        entry["oracle_clear_rate"], entry["oracle_clear_rate_ci"] = mean_ci(cleared, reps, seed=7)
        entry["redraw_diversity_ratio"] = float(rr.mean() / ff.mean())
        entry["redraw_diversity_ratio_ci"] = bootstrap(lambda idx, a=rr: float(a[idx].mean() / ff[idx].mean()),
                                                       len(rows), reps=reps, seed=8)
        entry["parent_redraw_over_fresh_fresh"] = float(pr.mean() / ff.mean())
        entry["oracle_over_fresh_clear"] = float(cleared.mean() / max(fresh_clean.mean(), 1e-9))
        entry["oracle_over_fresh_clear_ci"] = bootstrap(
            lambda idx, c=cleared: float(c[idx].mean() / max(fresh_clean[idx].mean(), 1e-9)), len(rows), reps=reps,
            seed=9)
        entry["outside_change"] = float(np.mean([r["t0"][t0]["outside_change"] for r in rows]))
        out["by_t0"][t0] = entry
    return out, rows


# -- 4. localization on generated candidates -------------------------------------------------------------------
def localization(bench, samples, max_images, reps):
    dm = bench.pack.lotts_ops.defect_map
    p_from = bench.pack.nodes.defect_mask.defect_probability_from_capture
    aurocs = {k: [] for k in ("noise difference", "attention", "noise difference, neutral words",
                              "attention, neutral words", "random map")}
    gen = torch.Generator().manual_seed(0)
    used = 0
    for s in samples:
        probs = bench.scorers.defect_probability_maps(s["images"]) > world_scorers.AREA_THRESHOLD
        labels = F.adaptive_avg_pool2d(probs.float()[:, None], tuple(s["latents"].shape[-2:]))[:, 0] > 0.2
        for j in range(len(labels)):
            if used >= max_images or not (0 < int(labels[j].sum()) < labels[j].numel()):
                continue
            used += 1
            latent = s["latents"][j:j + 1]
            quality = capture_one(bench, latent, s["prompt"], HIGH, LOW, CAPTURE_LEVELS, seed=used)
            neutral = capture_one(bench, latent, s["prompt"], CONTROL_A, CONTROL_B, CAPTURE_LEVELS, seed=used)
            for suffix, cap in (("", quality), (", neutral words", neutral)):
                aurocs["noise difference" + suffix].append(dm.auroc(cap["noise_difference"][0], labels[j]))
                aurocs["attention" + suffix].append(
                    dm.auroc(p_from(cap, "attention", ATTENTION_LAMBDA, True)[0], labels[j]))
            aurocs["random map"].append(dm.auroc(torch.rand(labels[j].shape, generator=gen), labels[j]))
    out = {"images": used, "levels": list(CAPTURE_LEVELS), "attention_lambda": ATTENTION_LAMBDA}
    for name, values in aurocs.items():
        if values:
            out[name], out[name + " ci"] = mean_ci(values, reps, seed=10)
    return out


# -- report ------------------------------------------------------------------------------------------------------
def gate_rows(summary):
    rows = []
    for key, (threshold, direction, what) in GATES.items():
        value = summary.get(key)
        ci = summary.get(key + "_ci", [float("nan")] * 2)
        passed = value is not None and (value >= threshold if direction == ">=" else value <= threshold)
        rows.append([what, f"{direction} {threshold:g}", fmt_ci(value, ci), "pass" if passed else "MISSED"])
    return rows


def headline(result):
    a = result["adherence"]["plain samples"]
    ae = result["autoencoder"]
    out = {"prompt_colour_present": a["colour_present"], "prompt_colour_present_ci": a["colour_present_ci"],
           "prompt_shape_correct": a["shape_correct"], "prompt_shape_correct_ci": a["shape_correct_ci"],
           "vae_psnr_db": ae["psnr_db"], "vae_psnr_db_ci": ae["psnr_db_ci"],
           "segmenter_fp_clean_roundtrip": ae["segmenter_defective: clean renders through the demo VAE"],
           "segmenter_fp_clean_roundtrip_ci": ae["segmenter_defective: clean renders through the demo VAE ci"]}
    r = result["redraws"]
    if r["by_t0"]:
        best = max(r["by_t0"], key=lambda t: r["by_t0"][t]["oracle_clear_rate"])
        e = r["by_t0"][best]
        out.update({"redraw_t0_step": best, "redraw_diversity_ratio": e["redraw_diversity_ratio"],
                    "redraw_diversity_ratio_ci": e["redraw_diversity_ratio_ci"],
                    "oracle_clear_rate": e["oracle_clear_rate"], "oracle_clear_rate_ci": e["oracle_clear_rate_ci"],
                    "fresh_clear_rate": r["fresh_clear_rate"], "fresh_clear_rate_ci": r["fresh_clear_rate_ci"],
                    "oracle_over_fresh_clear": e["oracle_over_fresh_clear"],
                    "oracle_over_fresh_clear_ci": e["oracle_over_fresh_clear_ci"]})
    loc = result["localization"]
    for key, name in (("auroc_noise_difference", "noise difference"), ("auroc_attention", "attention"),
                      ("auroc_neutral_control", "noise difference, neutral words"),
                      ("auroc_attention_neutral_control", "attention, neutral words")):
        if name in loc:
            out[key], out[key + "_ci"] = loc[name], loc[name + " ci"]
    return out


def report(result):
    s = result["summary"]
    lines = ["# World-v2 instrument report", "",
             f"Demo model: `{Path(result['demo_weights']).name}` ({result['model_info']}). Plain sampling: "
             f"{result['steps']} euler / normal steps, cfg {result['cfg']:g}. 95 % bootstrap intervals.", "",
             "## Gates", "", markdown_table(["gate", "threshold", "measured [95 % CI]", "result"], gate_rows(s))]
    lines += ["## 1. Prompt adherence (checker: bench/adherence.py)", ""]
    rows = [[name, e["images"], fmt_ci(e["colour_present"], e["colour_present_ci"]),
             fmt_ci(e["shape_correct"], e["shape_correct_ci"]), fmt_ci(e["background_right"], e["background_right_ci"])]
            for name, e in result["adherence"].items()]
    lines += [markdown_table(["images", "n", "prompted colours present", "prompted objects correct",
                              "background right"], rows)]
    ae = result["autoencoder"]
    lines += ["## 2. Autoencoder and the held-out segmenter", "",
              f"PSNR on {ae['images']} held-out renders: {fmt_ci(ae['psnr_db'], ae['psnr_db_ci'], 2)} dB "
              f"({fmt(ae['psnr_db_in_defects'], 2)} dB inside defect pixels).", ""]
    rows = [[k.split(": ", 1)[1], fmt_ci(v, ae[k + " ci"])] for k, v in ae.items()
            if k.startswith("segmenter_defective") and not k.endswith(" ci")]
    lines += [markdown_table(["images", "segmenter calls defective"], rows)]
    r = result["redraws"]
    lines += ["## 3. Re-draws of a defect region (oracle mask) against fresh seeds", "",
              f"{r['parents']} defective parents (of {r['candidates_scanned']} plain samples scanned); region "
              f"{fmt(r.get('mean_region_cells', float('nan')), 1)} latent cells on average; k = 2 re-draws each, "
              f"{r['fresh_per_parent']} fresh seeds of the same prompt. Fresh seed clean in the region: "
              f"{fmt_ci(r.get('fresh_clear_rate'), r.get('fresh_clear_rate_ci', [float('nan')] * 2))}.", ""]
    rows = [[t0, fmt_ci(e["oracle_clear_rate"], e["oracle_clear_rate_ci"]),
             fmt_ci(e["oracle_over_fresh_clear"], e["oracle_over_fresh_clear_ci"]),
             fmt_ci(e["redraw_diversity_ratio"], e["redraw_diversity_ratio_ci"]),
             fmt(e["parent_redraw_over_fresh_fresh"]), fmt(e["outside_change"], 4)] for t0, e in r["by_t0"].items()]
    lines += [markdown_table(["start step t0 (0 = pure noise inside)", "re-draw clears the region",
                              "clear rate / fresh clean rate", "diversity ratio (re-draw pair / fresh pair)",
                              "parent-vs-re-draw / fresh pair", "mean |change| outside"], rows)]
    loc = result["localization"]
    lines += ["## 4. Localization on generated candidates (labels: the segmenter's spots)", "",
              f"{loc['images']} candidates; capture levels {loc['levels']}, attention lambda {loc['attention_lambda']:g}.", ""]
    rows = [[k, fmt_ci(v, loc[k + " ci"])] for k, v in loc.items() if isinstance(v, float) and k + " ci" in loc]
    lines += [markdown_table(["signal", "mean per-image AUROC"], rows)]
    return "\n".join(lines)


def measure(bench, checker, sampler, opts):
    t0 = time.time()
    result = {"demo_weights": bench.weights, "steps": opts.steps, "cfg": opts.cfg, "options": vars(opts)}
    _, _, _, info = bench.demo.model.read(bench.weights)
    result["world_version"] = info.get("world_version")
    result["model_info"] = f"world v{info.get('world_version')}, {info.get('variant', 'independent')}, " \
                           f"{info.get('steps')} UNet steps"
    result["adherence"], samples = prompt_adherence(bench, sampler, checker, opts.prompts, opts.seeds, opts.reps)
    print("adherence", round(time.time() - t0), result["adherence"]["plain samples"], flush=True)
    result["autoencoder"] = autoencoder_gates(bench, opts.autoencoder_images, opts.reps)
    print("autoencoder", round(time.time() - t0), flush=True)
    result["redraws"], result["redraw_rows"] = redraws(bench, sampler, samples, opts.parents, opts.fresh, opts.reps)
    print("redraws", round(time.time() - t0), flush=True)
    result["localization"] = localization(bench, samples, opts.localization_images, opts.reps)
    return result



def main(argv=None, bench=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, "instrument.json")
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--seeds", type=int, default=3, help="plain samples per prompt")
    parser.add_argument("--autoencoder-images", type=int, default=200)
    parser.add_argument("--parents", type=int, default=40)
    parser.add_argument("--fresh", type=int, default=4)
    parser.add_argument("--localization-images", type=int, default=60)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--adherence-weights", default=None)
    parser.add_argument("--reps", type=int, default=1000)
    opts = parser.parse_args(argv)
    t0 = time.time()
    if bench is None:
        bench = Bench(weights=opts.demo_weights, threads=opts.threads, scorers=opts.scorers)
    checker = adherence.load(opts.adherence_weights or adherence.WEIGHTS)
    sampler = Sampler(bench, opts.steps, opts.cfg)
    with torch.inference_mode():
        result = measure(bench, checker, sampler, opts)
    result["seconds"] = time.time() - t0
    result["summary"] = headline(result)
    path = write_json(opts.out, result)
    text = report(result)
    path.with_suffix(".md").write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
