"""(a) Localization quality on planted defects with ground truth, through the pack's own capture.

Held-out defect images of the demo world (split "test") are encoded with the demo VAE (VAEEncode) and read
by the pack's capture engine (nodes/_capture.capture) exactly as the LoTTS nodes do (layers "auto", one noise
draw per level). Every defect map is compared with the ground-truth mask at latent resolution (16x16; a cell
is defective when more than 20 % of its pixels are, as in demo/evaluate.py):

- pooled AUROC over all cells of all images, and the mean of per-image AUROCs;
- IoU of the top-r mask with the truth at the pack's r = 0.5 and at r = the image's true defective fraction;
- recall at r = 0.5: the share of defective cells inside the mask LoTTS would re-denoise (random: 0.5).

Capture noise levels and lambda are chosen on split "calib" (a small grid, criterion: mean per-image AUROC
of the pack's signal, attention with self-attention propagation) and reported on split "test" with 95 %
bootstrap intervals over images. A negative control swaps the quality words for neutral ones.

    .host/venv/bin/python bench/localization.py [--n-test 150] [--n-calib 60]
"""

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import Bench, add_run_arguments, bootstrap, fmt, fmt_ci, markdown_table, plt, write_json

HIGH, LOW = "A high-quality image of {p}.", "A low-quality image of {p}."
CONTROL_A, CONTROL_B = "A photo of {p}.", "An image of {p}."  # no quality meaning in the world's captions
PACK_LEVELS, PACK_LAMBDA = (0.2, 0.3), 0.3  # the nodes' defaults
GRID_LEVELS = ((0.1,), (0.2,), (0.3,), (0.5,), (0.2, 0.3), (0.1, 0.2, 0.3))
GRID_LAMBDA = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
WINDOW, STRIDE = 32, 16  # NIQE / BRISQUE sliding windows (pixels)


# -- data -----------------------------------------------------------------------------------------------
def defect_images(bench, split, n, first=0):
    """The first n images of `split` (from index `first`) with a defect that marks at least one latent cell."""
    chosen, skipped, i = [], 0, first
    while len(chosen) < n:
        s = bench.world.sample(i, split)
        i += 1
        if not s["has_defect"]:
            continue
        if not bench.evaluate.cell_labels([s["defect_mask"]], (16, 16))[0].any():
            skipped += 1
            continue
        chosen.append({**s, "index": i - 1})
    return chosen, skipped


def capture_one(bench, latent, prompt, high, low, levels, seed, draws=1):
    pack = bench.pack.nodes
    encoded = pack._prompt_tokens.encode_quality_conditionings(bench.clip, prompt, high, low)
    return pack._capture.capture(bench.model, [c for c, _ in encoded], {i: w for i, (_, w) in enumerate(encoded)},
                                 {"samples": latent}, list(levels), draws, seed, None)


def mean_captures(captures):
    """Average of single-level captures (the capture engine averages its passes the same way)."""
    maps = {c: {k: sum(x["maps"][c][k] for x in captures) / len(captures) for k in ("ca", "ca_prop")}
            for c in ("orig", "high", "low")}
    return {"maps": maps, "noise_difference": sum(x["noise_difference"] for x in captures) / len(captures)}


def signal_maps(bench, attention, lam):
    """name -> (1, H, W) map for every signal derived from one capture."""
    p = bench.pack.nodes.defect_mask.defect_probability_from_capture
    maps = attention["maps"]
    return {
        f"LoTTS attention: SA, lambda={lam:g}": p(attention, "attention", lam, True),
        f"attention without SA, lambda={lam:g}": p(attention, "attention", lam, False),
        "attention contrast only: SA, lambda=0": p(attention, "attention", 0.0, True),
        "CA_orig: plain cross-attention of the prompt": maps["orig"]["ca"],
        "noise difference |eps_low - eps_high|": p(attention, "noise difference", lam, True),
        f"attention (lambda={lam:g}) + noise difference": p(attention, "attention + noise difference", lam, True),
    }


# -- no-reference IQA local maps ------------------------------------------------------------------------
def iqa_local_map(image, score_fn, hw):
    """Score 32x32 windows at stride 16, spread each window's score over its pixels (mean of covering windows),
    area-resize to the latent grid. Higher = worse quality = more defective. Windows where the metric is
    undefined (flat: NIQE 1000 / BRISQUE NaN) get the image's median defined score (no evidence either way)."""
    size = image.shape[0]
    starts = list(range(0, size - WINDOW + 1, STRIDE))
    scores = np.array([[score_fn(image[y:y + WINDOW, x:x + WINDOW]) for x in starts] for y in starts], np.float64)
    bad = ~np.isfinite(scores) | (scores >= 999)
    fill = float(np.median(scores[~bad])) if (~bad).any() else 0.0
    scores[bad] = fill
    acc = np.zeros((size, size))
    cnt = np.zeros((size, size))
    for a, y in enumerate(starts):
        for b, x in enumerate(starts):
            acc[y:y + WINDOW, x:x + WINDOW] += scores[a, b]
            cnt[y:y + WINDOW, x:x + WINDOW] += 1
    full = torch.from_numpy(acc / np.maximum(cnt, 1)).float()[None, None]
    return F.adaptive_avg_pool2d(full, hw)[0], int(bad.sum())


# -- metrics ----------------------------------------------------------------------------------------------
def per_image_metrics(dm, maps, labels):
    """maps, labels: (N, H, W). Per image: auroc, iou at r=0.5, iou at r=true area, recall at r=0.5."""
    n, h, w = labels.shape
    p = dm.normalize_maps(maps.float())
    m50 = dm.top_area_mask(p, 0.5)
    true_area = labels.flatten(1).float().mean(1)
    m_true = torch.stack([dm.top_area_mask(p[i:i + 1], float(true_area[i]))[0] for i in range(n)])
    lab = labels.float()
    recall = (m50 * lab).flatten(1).sum(1) / lab.flatten(1).sum(1).clamp_min(1)
    return {
        "auroc": np.array([dm.auroc(maps[i], labels[i]) if 0 < labels[i].sum() < h * w else math.nan
                           for i in range(n)]),
        "iou_r50": dm.iou(m50, lab).numpy(),
        "iou_true_area": dm.iou(m_true, lab).numpy(),
        "recall_r50": recall.numpy(),
    }


def summarize(dm, maps, labels, reps):
    per = per_image_metrics(dm, maps, labels)
    n = labels.shape[0]
    pooled_maps = dm.normalize_maps(maps.float())  # per-image normalisation before pooling across images

    def pooled(idx):
        return dm.auroc(pooled_maps[idx], labels[idx])

    out = {"pooled_auroc": pooled(np.arange(n)), "pooled_auroc_ci": bootstrap(pooled, n, reps=reps, seed=1),
           "auroc_per_image": [None if math.isnan(v) else round(float(v), 5) for v in per["auroc"]]}
    for key, values in per.items():
        out[f"{key}_mean"] = float(np.nanmean(values))
        out[f"{key}_ci"] = bootstrap(lambda idx, v=values: float(np.nanmean(v[idx])), n, reps=reps, seed=2)
    return out


# -- calibration ------------------------------------------------------------------------------------------
def calibrate(bench, n, reps):
    dm = bench.pack.lotts_ops.defect_map
    samples, skipped = defect_images(bench, "calib", n)
    raw = bench.vae_encode([s["image"] for s in samples])
    labels = bench.evaluate.cell_labels([s["defect_mask"] for s in samples], raw.shape[-2:])
    levels = sorted({lv for group in GRID_LEVELS for lv in group})
    per_level = {lv: [capture_one(bench, raw[k:k + 1], s["prompt"], HIGH, LOW, (lv,), seed=s["index"])
                      for k, s in enumerate(samples)] for lv in levels}
    grid = []
    p = bench.pack.nodes.defect_mask.defect_probability_from_capture
    for group in GRID_LEVELS:
        captures = [mean_captures([per_level[lv][k] for lv in group]) for k in range(len(samples))]
        noise = torch.cat([c["noise_difference"] for c in captures])
        noise_auroc = float(np.nanmean(per_image_metrics(dm, noise, labels)["auroc"]))
        for lam in GRID_LAMBDA:
            for sa in (True, False):
                maps = torch.cat([p(c, "attention", lam, sa) for c in captures])
                auroc = float(np.nanmean(per_image_metrics(dm, maps, labels)["auroc"]))
                grid.append({"levels": list(group), "lambda": lam, "self_attention": sa,
                             "attention_auroc_per_image": round(auroc, 4),
                             "noise_difference_auroc_per_image": round(noise_auroc, 4)})
    best = max((g for g in grid if g["self_attention"]), key=lambda g: g["attention_auroc_per_image"])
    default = next(g for g in grid if g["levels"] == list(PACK_LEVELS) and g["lambda"] == PACK_LAMBDA
                   and g["self_attention"])
    return {"n_images": len(samples), "skipped_tiny_defects": skipped, "grid": grid,
            "chosen": {"levels": best["levels"], "lambda": best["lambda"],
                       "criterion": "mean per-image AUROC of attention (SA) on calib",
                       "calib_auroc": best["attention_auroc_per_image"]},
            "pack_default_calib_auroc": default["attention_auroc_per_image"]}


# -- test ---------------------------------------------------------------------------------------------------
def run_test(bench, n, levels, lam, reps, iqa_n):
    pack = bench.pack
    dm = pack.lotts_ops.defect_map
    samples, skipped = defect_images(bench, "test", n)
    raw = bench.vae_encode([s["image"] for s in samples])
    hw = tuple(raw.shape[-2:])
    labels = bench.evaluate.cell_labels([s["defect_mask"] for s in samples], hw)
    maps = {}
    timing = {}

    def add(name, m):
        maps.setdefault(name, []).append(m.float())

    t = time.time()
    nfe = 0
    for k, s in enumerate(samples):
        latent = raw[k:k + 1]
        chosen = capture_one(bench, latent, s["prompt"], HIGH, LOW, levels, seed=s["index"])
        nfe += chosen["model_evaluations"]
        for name, m in signal_maps(bench, chosen, lam).items():
            add(name, m)
        if tuple(levels) != PACK_LEVELS or lam != PACK_LAMBDA:
            default = capture_one(bench, latent, s["prompt"], HIGH, LOW, PACK_LEVELS, seed=s["index"])
            add(f"LoTTS attention at pack defaults (levels 0.2, 0.3; lambda={PACK_LAMBDA:g})",
                pack.nodes.defect_mask.defect_probability_from_capture(
                default, "attention", PACK_LAMBDA, True))
        control = capture_one(bench, latent, s["prompt"], CONTROL_A, CONTROL_B, levels, seed=s["index"])
        cp = pack.nodes.defect_mask.defect_probability_from_capture
        add("NEG. CONTROL (neutral words): contrast only, lambda=0", cp(control, "attention", 0.0, True))
        add(f"NEG. CONTROL (neutral words): SA, lambda={lam:g}", cp(control, "attention", lam, True))
        add("NEG. CONTROL (neutral words): noise difference", control["noise_difference"])
    timing["captures"] = round(time.time() - t, 1)
    gen = torch.Generator().manual_seed(0)
    maps["random map"] = [torch.rand((1, *hw), generator=gen) for _ in samples]
    images = np.stack([s["image"] for s in samples])
    seg = bench.scorers.defect_probability_maps(images)
    maps["reference: supervised segmenter (trained on masks)"] = list(
        F.adaptive_avg_pool2d(seg[:, None], hw)[:, 0].split(1))
    cam = bench.scorers.verifier_net.local_logits(world_input(bench, images))
    maps["world verifier's local logits (CAM-like)"] = list(
        F.interpolate(cam[:, None], size=hw, mode="bilinear", align_corners=False)[:, 0].split(1))
    t = time.time()
    niqe, brisque = pack.lotts_ops.verifiers.niqe, pack.lotts_ops.verifiers.brisque
    undefined = {"NIQE": 0, "BRISQUE": 0}
    for s in samples[:iqa_n]:
        m, bad = iqa_local_map(s["image"], lambda w: niqe.niqe_rgb(w, 16), hw)
        add(f"NIQE local map ({WINDOW}px windows, 16px blocks)", m)
        undefined["NIQE"] += bad
        m, bad = iqa_local_map(s["image"], brisque.brisque_rgb, hw)
        add(f"BRISQUE local map ({WINDOW}px windows)", m)
        undefined["BRISQUE"] += bad
    timing["iqa_maps"] = round(time.time() - t, 1)
    results = []
    for name, parts in maps.items():
        m = torch.cat(parts)
        lab = labels[:m.shape[0]]
        results.append({"method": name, "n_images": int(m.shape[0]), **summarize(dm, m, lab, reps)})
    by_name = {r["method"]: r for r in results}
    pairs = [(f"LoTTS attention: SA, lambda={lam:g}", f"NEG. CONTROL (neutral words): SA, lambda={lam:g}"),
             ("attention contrast only: SA, lambda=0", "NEG. CONTROL (neutral words): contrast only, lambda=0"),
             ("noise difference |eps_low - eps_high|", "NEG. CONTROL (neutral words): noise difference"),
             (f"LoTTS attention: SA, lambda={lam:g}", "CA_orig: plain cross-attention of the prompt"),
             ("noise difference |eps_low - eps_high|", "CA_orig: plain cross-attention of the prompt")]
    return {"paired": [paired_difference(by_name[a], by_name[b], reps) for a, b in pairs
                       if a in by_name and b in by_name],
            "n_images": len(samples), "skipped_tiny_defects": skipped, "levels": list(levels), "lambda": lam,
            "capture_nfe_per_image": nfe / len(samples), "iqa_undefined_windows": undefined,
            "true_defective_cell_fraction": float(labels.float().mean()), "timing_seconds": timing,
            "results": results}


def paired_difference(a, b, reps):
    """Per-image AUROC of map a minus map b on the same images (the neutral-word control and plain
    cross-attention must be beaten on the same image, not just on average), with a bootstrap interval."""
    diff = np.array([np.nan if x is None or y is None else x - y
                     for x, y in zip(a["auroc_per_image"], b["auroc_per_image"], strict=True)])
    return {"a": a["method"], "b": b["method"], "n_images": int(np.sum(~np.isnan(diff))),
            "mean": float(np.nanmean(diff)),
            "ci": bootstrap(lambda idx: float(np.nanmean(diff[idx])), len(diff), reps=reps, seed=3),
            "a_better_fraction": float(np.nanmean(diff > 0))}


@torch.inference_mode()
def world_input(bench, images):
    import world_scorers

    return world_scorers.to_input(images)


# -- report -------------------------------------------------------------------------------------------------
def write_report(out, path):
    test = out["test"]
    rows = []
    for r in test["results"]:
        rows.append([r["method"], r["n_images"], fmt_ci(r["auroc_mean"], r["auroc_ci"]),
                     fmt_ci(r["pooled_auroc"], r["pooled_auroc_ci"]), fmt_ci(r["recall_r50_mean"], r["recall_r50_ci"]),
                     fmt_ci(r["iou_r50_mean"], r["iou_r50_ci"]), fmt_ci(r["iou_true_area_mean"], r["iou_true_area_ci"])])
    table = markdown_table(["defect map", "images", "AUROC per image", "AUROC pooled", "recall @ r=0.5",
                            "IoU @ r=0.5", "IoU @ r=true area"], rows)
    calib = out["calib"]
    crow = []
    for group in GRID_LEVELS:
        cells = {(g["lambda"], g["self_attention"]): g for g in calib["grid"] if g["levels"] == list(group)}
        if not cells:
            continue
        crow.append([", ".join(str(v) for v in group)]
                    + [f"{fmt(cells[(lam, True)]['attention_auroc_per_image'])} / "
                       f"{fmt(cells[(lam, False)]['attention_auroc_per_image'])}" for lam in GRID_LAMBDA]
                    + [fmt(next(iter(cells.values()))["noise_difference_auroc_per_image"])])
    text = (f"## Localization on planted defects (split test, {test['n_images']} defect images)\n\n"
            f"Chosen on calib ({calib['n_images']} images): noise levels {test['levels']}, lambda {test['lambda']} "
            f"(calib AUROC {fmt(calib['chosen']['calib_auroc'])}; pack defaults 0.2, 0.3 / 0.3: "
            f"{fmt(calib['pack_default_calib_auroc'])}). Latent grid 16x16, true defective cells: "
            f"{100 * test['true_defective_cell_fraction']:.1f} % of all cells. 95 % bootstrap intervals over images.\n\n"
            + table + _paired_table(test.get("paired", [])) + "\n### Calibration grid (split calib, mean per-image AUROC; attention with SA / without SA)\n\n"
            + markdown_table(["noise levels"] + [f"lambda {lam}" for lam in GRID_LAMBDA] + ["noise difference"],
                             crow))
    Path(path).write_text(text)
    return text


def _paired_table(paired):
    if not paired:
        return ""
    rows = [[p["a"], p["b"], fmt_ci(p["mean"], p["ci"]), f"{100 * p['a_better_fraction']:.0f} %"] for p in paired]
    return ("\n### Paired on the same images: does the quality contrast add anything?\n\n"
            "Per-image AUROC of A minus B (95 % bootstrap interval). Above 0: the quality words locate defects "
            "better than neutral words / than the prompt's plain cross-attention on the same images.\n\n"
            + markdown_table(["A", "B", "AUROC A - B", "images where A is better"], rows))


def plot(out, path):
    pyplot = plt()
    res = out["test"]["results"]
    names = [r["method"] for r in res]
    fig, axes = pyplot.subplots(1, 2, figsize=(13, 0.42 * len(res) + 1.5), sharey=True)
    y = np.arange(len(res))
    for ax, key, title, chance in ((axes[0], "auroc", "AUROC per image (mean)", 0.5),
                                   (axes[1], "recall_r50", "recall of defective cells @ r = 0.5", 0.5)):
        vals = np.array([r[f"{key}_mean"] for r in res])
        ci = np.array([r[f"{key}_ci"] for r in res])
        colors = ["#888888" if "CONTROL" in n or n == "random map" else
                  "#4477aa" if "attention" in n or "noise" in n or "CA_orig" in n else "#cc6677" for n in names]
        ax.barh(y, vals, xerr=[vals - ci[:, 0], ci[:, 1] - vals], color=colors, capsize=3)
        ax.axvline(chance, color="k", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_title(title, fontsize=10)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([n[:60] for n in names], fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"Defect localization on {out['test']['n_images']} held-out defect images (demo world, 95 % CI)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return path


def main(argv=None, bench=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-test", type=int, default=150)
    parser.add_argument("--n-calib", type=int, default=60)
    parser.add_argument("--n-iqa", type=int, default=None, help="images for the NIQE/BRISQUE maps (default all)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    add_run_arguments(parser, "localization.json")
    opts = parser.parse_args(argv)
    bench = bench or Bench(weights=opts.demo_weights, threads=opts.threads, scorers=opts.scorers)
    out = {"settings": vars(opts)}
    with torch.inference_mode():
        out["calib"] = calibrate(bench, opts.n_calib, opts.bootstrap)
        chosen = out["calib"]["chosen"]
        print("calib:", chosen, flush=True)
        out["test"] = run_test(bench, opts.n_test, tuple(chosen["levels"]), chosen["lambda"], opts.bootstrap,
                               opts.n_iqa if opts.n_iqa is not None else opts.n_test)
    out["seconds"] = bench.seconds()
    path = write_json(opts.out, out)
    print(write_report(out, path.with_suffix(".md")))
    if not opts.no_plot:
        plot(out, path.with_suffix(".png"))
    return out


if __name__ == "__main__":
    main()
