"""(b) Quality versus compute, LoTTS against Best-of-N, and (c) how much of the image outside the mask changes.

Through the pack's own search functions (nodes/_search.best_of_n / lotts, the code behind the LoTTS Best-of-N
and LoTTS Search nodes) on the demo world model, a fixed prompt set (split "test"), euler / normal:

- Best-of-N for N in 1..27, nested: one call with N = 27 per prompt; candidate j uses noise index j of the seed
  (the pack's convention), so the first N candidates are exactly what N would sample. NFE = N x steps x 2.
- LoTTS with s = 1, 2, 3 seeds (the first s Best-of-N candidates), k = 2, one round; and s = 3 with two rounds
  (--lotts-seeds; the largest s is the main configuration below).
- Selection by the world verifier (bench/world_scorers.py, our ImageReward stand-in). Reported per method and
  budget: the chosen image's verifier score, the held-out defect measure (segmenter's defective-area fraction,
  never used for selection), the measured NFE (counted on the model clone) and the paper's samples per prompt.
- The budget ratio at which Best-of-N first matches LoTTS at s = 3 (lotts_ops.compute.matching_budget_ratio),
  in NFE and in samples per prompt, with 95 % bootstrap intervals over prompts ("never" = not within N = 27).
- t0 (start fraction) is chosen on calib prompts by the verifier score of LoTTS s = 3.
- (c) For LoTTS refinements of the s = 3 seeds: mean |change| of latents and decoded pixels inside the mask,
  outside it, and outside it farther than one latent cell (8 px), with global harmonization g = 0 and g = 2.
  The same refinements with the mask replaced (random, whole image, the held-out segmenter's map as an
  oracle), at every t0 tried on calib, show what choosing *where* to re-denoise is worth on this model.

    .host/venv/bin/python bench/quality_vs_compute.py [--prompts 24] [--steps 20] [--cfg 5]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import world_scorers
from common import RESULTS, Bench, add_run_arguments, bootstrap, fmt_ci, markdown_table, plt, write_json

HIGH, LOW = "A high-quality image of {p}.", "A low-quality image of {p}."
BON_N = (1, 2, 3, 4, 6, 9, 12, 18, 27)
T0_GRID = (0.0, 0.3, 0.5)  # start fractions tried on calib; 0 = from pure noise inside the mask


class Runner:
    def __init__(self, bench, steps, cfg, levels, lam, signal, area_ratio, refinements, global_steps, bon_n=BON_N,
                 lotts_seeds=(1, 2, 3)):
        self.bench = bench
        self.lotts_seeds = tuple(lotts_seeds)
        self.bon_n = tuple(bon_n)
        self.search = bench.pack.nodes._search
        self.steps, self.cfg = steps, cfg
        self.levels, self.lam, self.signal = list(levels), lam, signal
        self.area_ratio, self.refinements, self.global_steps = area_ratio, refinements, global_steps
        self.negative = bench.encode_text("")
        self.latent = bench.nodes.EmptyLatentImage().generate(bench.world.RESOLUTION, bench.world.RESOLUTION, 1)[0]

    def settings(self, prompt):
        return self.search.SamplingSettings(self.bench.encode_text(prompt), self.negative, self.steps, self.cfg,
                                            "euler", "normal")

    def local(self, prompt, start_step, rounds, global_steps=None):
        pack = self.bench.pack.nodes
        encoded = pack._prompt_tokens.encode_quality_conditionings(self.bench.clip, prompt, HIGH, LOW)
        return self.search.LocalSettings(
            conds=[c for c, _ in encoded], token_weights={i: w for i, (_, w) in enumerate(encoded)},
            noise_levels=self.levels, noise_draws=1, selection=None, area_ratio=self.area_ratio,
            foreground_weight=self.lam, signal=self.signal, start_step=start_step, refinements=self.refinements,
            global_steps=self.global_steps if global_steps is None else global_steps, rounds=rounds)

    def best_of_n(self, prompt, seed, n):
        b = self.bench
        r = self.search.best_of_n(b.model, b.vae, b.verifier, self.latent, self.settings(prompt), prompt, seed, n)
        return r

    def lotts(self, prompt, seed, seeds, start_step, rounds=1):
        b = self.bench
        return self.search.lotts(b.model, b.vae, b.verifier, self.latent, self.settings(prompt),
                                 self.local(prompt, start_step, rounds), prompt, seed, seeds)

    def lotts_entry(self, prompt, seed, seeds, start_step, rounds=1):
        r = self.lotts(prompt, seed, seeds, start_step, rounds)
        chosen = r.best_images
        return {"seeds": seeds, "rounds": rounds, "nfe": r.report["nfe"],
                "samples_per_prompt": r.report["samples_per_prompt"],
                "nfe_breakdown": {k: r.report[k] for k in ("nfe_sampling", "nfe_capture", "nfe_refinement")},
                "score": float(self.bench.verifier.score(chosen, [prompt])[0]),
                "area": float(self.bench.scorers.defect_area(chosen)[0]),
                "winner": r.report["winners"][0],
                "refined_won": "r" in r.report["winners"][0]}


def run_prompt(runner, prompt, seed, start_step, rounds2, check_nesting=False):
    bench = runner.bench
    bon_n = runner.bon_n
    bon = runner.best_of_n(prompt, seed, max(bon_n))
    scores = bon.all_scores.numpy()
    areas = bench.scorers.defect_area(bon.all_images).numpy()
    nfe_per_sample = bon.report["nfe"] / max(bon_n)
    entry = {"prompt": prompt, "seed": seed, "bon_all_scores": scores.tolist(), "bon_all_areas": areas.tolist(),
             "bon_nfe_max": bon.report["nfe"], "bon": []}
    for n in bon_n:
        j = int(np.argmax(scores[:n]))
        entry["bon"].append({"n": n, "nfe": nfe_per_sample * n, "samples_per_prompt": n,
                             "score": float(scores[j]), "area": float(areas[j]), "winner": j})
    if check_nesting:  # the nested reading must equal separate Best-of-N runs, NFE included
        for n in bon_n[:3]:
            r = runner.best_of_n(prompt, seed, n)
            nested = entry["bon"][bon_n.index(n)]
            assert r.report["nfe"] == nested["nfe"] == n * runner.steps * 2, (r.report["nfe"], nested)
            # same noise, same picks; the scores agree to float noise (on 0.33 a batch of 1 and of 27 differ by ~1e-4)
            assert abs(float(r.all_scores.max()) - nested["score"]) < 1e-3, (r.all_scores, nested)
        entry["nesting_checked"] = True
    entry["lotts"] = [runner.lotts_entry(prompt, seed, s, start_step) for s in runner.lotts_seeds]
    if rounds2:
        entry["lotts_rounds2"] = runner.lotts_entry(prompt, seed, runner.lotts_seeds[-1], start_step, rounds=2)
    return entry


# -- (c) change outside the mask, and what the mask is worth ----------------------------------------------
MASK_SOURCES = ("LoTTS defect map", "LoTTS defect map, area matched to the oracle's", "random mask, same area",
                "random mask, area matched to the oracle's", "whole image (r = 1, SDEdit-like)",
                "oracle: the held-out segmenter's defect spots, one cell margin")
FRESH_SEED = "fresh seed instead (a new full sample, same prompt)"


def oracle_cells(bench, images, hw):
    """The defect region itself: latent cells holding a spot of the held-out segmenter (p > 0.5), one cell margin."""
    spots = (bench.scorers.defect_probability_maps(images) > world_scorers.AREA_THRESHOLD).float()
    cells = F.adaptive_max_pool2d(spots[:, None], hw)
    return F.max_pool2d(cells, 3, 1, 1)[:, 0]


def mask_sources(runner, p, images, seed):
    """The LoTTS mask and comparison masks for the same candidates: which part of LoTTS's result comes from *where*
    it re-denoises and how much. The oracle uses the held-out judge, so its held-out column is not independent."""
    dm = runner.bench.pack.lotts_ops.defect_map
    hw = p.shape[-2:]
    gen = torch.Generator().manual_seed(seed)
    oracle = oracle_cells(runner.bench, images, hw)
    noise = torch.rand(p.shape, generator=gen)

    def matched(maps):  # top-r with r = the oracle's area in each image (an empty oracle: an empty mask)
        return torch.stack([dm.top_area_mask(maps[i:i + 1], float(oracle[i].mean()))[0] if oracle[i].any()
                            else torch.zeros_like(maps[i]) for i in range(maps.shape[0])])

    return {MASK_SOURCES[0]: dm.top_area_mask(p, runner.area_ratio), MASK_SOURCES[1]: matched(p),
            MASK_SOURCES[2]: dm.top_area_mask(noise, runner.area_ratio), MASK_SOURCES[3]: matched(noise),
            MASK_SOURCES[4]: torch.ones_like(p), MASK_SOURCES[5]: oracle}


def fresh_seed_rows(runner, settings, prompt, parents, seed):
    """The standing baseline for a refinement: instead, a new full sample of the same prompt (k per parent)."""
    bench = runner.bench
    n = parents["images"].shape[0] * runner.refinements
    fresh = bench.vae_decode(runner.search.sample_candidates(bench.model, runner.latent, settings, seed, n))
    scores, areas = bench.verifier.score(fresh, [prompt]), bench.scorers.defect_area(fresh)
    nan = float("nan")
    return [{"latent_inside": nan, "latent_outside": nan, "latent_outside_far": nan, "pixel_inside": nan,
             "pixel_outside": nan, "pixel_outside_far": nan,
             "score_gain": float(scores[b] - parents["scores"][b // runner.refinements]),
             "area_change": float(areas[b] - parents["areas"][b // runner.refinements])} for b in range(n)]


def refine_and_measure(runner, settings, prompt, cand, parents, masks, round_seed, start_step, g):
    """k refinements per candidate (as one LoTTS round makes them); change vs the parent in and outside the mask."""
    bench, pack = runner.bench, runner.bench.pack.nodes
    refined, noise_mask = pack._local.localized_refine(bench.model, settings.positive, settings.negative,
                                                       {"samples": cand}, masks, round_seed, settings.steps,
                                                       settings.cfg, "euler", "normal", start_step,
                                                       runner.refinements, g, show_progress=False)
    out = refined["samples"]
    images = bench.vae_decode(out)
    k = runner.refinements
    parent_latents = cand.repeat_interleave(k, 0)
    parent_images = parents["images"].repeat_interleave(k, 0)
    m = noise_mask[:, 0] > 0.5  # (B*k, h, w)
    near = F.max_pool2d(m.float()[:, None], 3, 1, 1)[:, 0] > 0.5
    dlat = (out - parent_latents).abs().mean(1) / parent_latents.std()  # in units of the latents' std
    mpx = F.interpolate(m.float()[:, None], scale_factor=8, mode="nearest")[:, 0] > 0.5
    nearpx = F.interpolate(near.float()[:, None], scale_factor=8, mode="nearest")[:, 0] > 0.5
    dpx = (images - parent_images).abs().mean(-1)
    scores = bench.verifier.score(images, [prompt])
    areas = bench.scorers.defect_area(images)

    def mean_or_nan(x):
        return float(x.mean()) if x.numel() else float("nan")

    rows = [{"latent_inside": mean_or_nan(dlat[b][m[b]]), "latent_outside": mean_or_nan(dlat[b][~m[b]]),
             "latent_outside_far": mean_or_nan(dlat[b][~near[b]]),
             "pixel_inside": mean_or_nan(dpx[b][mpx[b]]), "pixel_outside": mean_or_nan(dpx[b][~mpx[b]]),
             "pixel_outside_far": mean_or_nan(dpx[b][~nearpx[b]]),
             "score_gain": float(scores[b] - parents["scores"][b // k]),
             "area_change": float(areas[b] - parents["areas"][b // k])} for b in range(out.shape[0])]
    return rows, images, scores


def _summary(items):
    def nanmean(values):  # a whole-image mask has no outside: nan, without numpy's empty-slice warning
        values = np.array(values, dtype=float)
        return float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")

    out = {key: nanmean([r[key] for r in items]) for key in items[0]}
    out["refinements"] = len(items)
    out["improved_fraction"] = float(np.mean([r["score_gain"] > 0 for r in items]))
    gains = np.array([r["score_gain"] for r in items])
    out["score_gain_ci"] = bootstrap(lambda idx: float(gains[idx].mean()), len(gains), seed=4)
    return out


def outside_change(runner, prompts, seed, start_step, seeds=3, source_steps=None):
    """Refinements of the s seeds exactly as one LoTTS round makes them (capture -> mask -> localized_refine):
    with g = 0 and the configured g for the LoTTS mask at t0 = start_step, and every mask source at the
    configured g for each t0 in `source_steps` (default: start_step only)."""
    source_steps = sorted(set(source_steps or []) | {start_step})
    bench, search = runner.bench, runner.search
    pack = bench.pack.nodes
    dm = bench.pack.lotts_ops.defect_map
    k = runner.refinements
    g_main = runner.global_steps
    rows = {f"g={g}": [] for g in sorted({0, g_main})}
    by_source = {(step, name): [] for step in source_steps for name in MASK_SOURCES}
    fresh_rows = []
    reference = []
    example = None
    for i, prompt in enumerate(prompts):
        settings = runner.settings(prompt)
        cand = search.sample_candidates(bench.model, runner.latent, settings, seed + i, seeds)
        local = runner.local(prompt, start_step, 1)
        round_seed = seed + i + 1_000_003
        attention = pack._capture.capture(bench.model, local.conds, local.token_weights, {"samples": cand},
                                          local.noise_levels, 1, round_seed, None)
        p = dm.normalize_maps(pack.defect_mask.defect_probability_from_capture(attention, local.signal,
                                                                               local.foreground_weight, True))
        images = bench.vae_decode(cand)
        parents = {"images": images, "scores": bench.verifier.score(images, [prompt]),
                   "areas": bench.scorers.defect_area(images)}
        reference.append(float((images[1:] - images[:-1]).abs().mean()))
        masks = mask_sources(runner, p, images, round_seed)
        fresh_rows.extend(fresh_seed_rows(runner, settings, prompt, parents, round_seed + 17))
        runs = [(start_step, name, g) for name in masks
                for g in ([0, g_main] if name == MASK_SOURCES[0] and g_main != 0 else [g_main])]
        runs += [(step, name, g_main) for step in source_steps if step != start_step for name in masks]
        for step, name, g in runs:
            items, refined_images, scores = refine_and_measure(runner, settings, prompt, cand, parents, masks[name],
                                                               round_seed, step, g)
            if name == MASK_SOURCES[0] and step == start_step:
                rows[f"g={g}"].extend(items)
            if g == g_main:
                by_source[(step, name)].extend(items)
            if i == 0 and g == g_main and name == MASK_SOURCES[0] and step == start_step:
                mpx = F.interpolate(masks[name][:, None].float(), scale_factor=8, mode="nearest")[:, 0] > 0.5
                example = {"parents": images, "masks": mpx,
                           "refined": refined_images.reshape(seeds, k, *refined_images.shape[1:]),
                           "parent_scores": parents["scores"], "scores": scores.reshape(seeds, k),
                           "prompt": prompt, "g": g}
    summary = {key: _summary(items) for key, items in rows.items()}
    summary["mask_sources_by_t0_step"] = {str(step): {name: _summary(by_source[(step, name)]) for name in MASK_SOURCES}
                                          for step in source_steps}
    summary["fresh_seed_baseline"] = _summary(fresh_rows)
    summary["reference_pixel_change_between_two_seeds"] = float(np.mean(reference))
    summary["mask_area"] = runner.area_ratio
    return summary, example


def plot_example(example, path):
    """One prompt: each seed's image, its mask, and its k refinements, with verifier scores."""
    pyplot = plt()
    seeds, k = example["refined"].shape[:2]
    fig, axes = pyplot.subplots(seeds, 2 + k, figsize=(2.1 * (2 + k), 2.3 * seeds), squeeze=False)
    for j in range(seeds):
        parent = example["parents"][j].numpy()
        overlay = parent * 0.55 + 0.45 * np.array([1.0, 0.1, 0.1]) * example["masks"][j].numpy()[..., None]
        panels = [(parent, f"seed {j}: {float(example['parent_scores'][j]):+.2f}"), (overlay, "mask (r = 0.5)")]
        panels += [(example["refined"][j, i].numpy(), f"refined {i}: {float(example['scores'][j, i]):+.2f}")
                   for i in range(k)]
        for ax, (img, title) in zip(axes[j], panels, strict=True):
            ax.imshow(np.clip(img, 0, 1))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.suptitle(f"{example['prompt']} (g = {example['g']}; verifier score, higher is better)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


# -- analysis ------------------------------------------------------------------------------------------------
def matching(compute, entries, budget_key, value_key, higher_better, lotts_index=None, rounds2=False):
    """Budget ratio at which Best-of-N first reaches LoTTS (s = 3, or the rounds-2 entry) on the mean value."""
    sign = 1.0 if higher_better else -1.0
    n_bon = len(entries[0]["bon"])
    bon_budget = [float(np.mean([e["bon"][j][budget_key] for e in entries])) for j in range(n_bon)]

    def lotts_value(e):
        return (e["lotts_rounds2"] if rounds2 else e["lotts"][-1])[value_key]

    lotts_budget = float(np.mean([(e["lotts_rounds2"] if rounds2 else e["lotts"][-1])[budget_key] for e in entries]))

    def ratio(idx):
        bon = [sign * float(np.mean([entries[i]["bon"][j][value_key] for i in idx])) for j in range(n_bon)]
        target = sign * float(np.mean([lotts_value(entries[i]) for i in idx]))
        return compute.matching_budget_ratio([lotts_budget], [target], bon_budget, bon)

    point = ratio(np.arange(len(entries)))
    return {"ratio": point, "ci": bootstrap(ratio, len(entries), reps=1000, seed=3),
            "lotts_budget": lotts_budget,
            "bon_budget_matching": None if point is None else point * lotts_budget}


def analyse(bench, entries, rounds2):
    compute = bench.pack.lotts_ops.compute
    n = len(entries)
    table = []
    for j, item in enumerate(entries[0]["bon"]):
        table.append(_row(f"Best-of-N, N={item['n']}", [e["bon"][j] for e in entries]))
    for j, item in enumerate(entries[0]["lotts"]):
        table.append(_row(f"LoTTS s={item['seeds']}, k=2, 1 round", [e["lotts"][j] for e in entries]))
    if rounds2:
        table.append(_row(f"LoTTS s={entries[0]['lotts_rounds2']['seeds']}, k=2, 2 rounds",
                          [e["lotts_rounds2"] for e in entries]))
    match = {}
    for budget in ("nfe", "samples_per_prompt"):
        for value, higher in (("score", True), ("area", False)):
            match[f"{value}_by_{budget}"] = matching(compute, entries, budget, value, higher)
            if rounds2:
                match[f"{value}_by_{budget}_rounds2"] = matching(compute, entries, budget, value, higher, rounds2=True)
    refined_won = float(np.mean([e["lotts"][-1]["refined_won"] for e in entries]))
    scores = np.concatenate([e["bon_all_scores"] for e in entries])
    areas = np.concatenate([e["bon_all_areas"] for e in entries])
    within = [_spearman(np.array(e["bon_all_scores"]), -np.array(e["bon_all_areas"])) for e in entries]
    agreement = {"generated_images": int(len(scores)),
                 "spearman_score_vs_minus_area_all": _spearman(scores, -areas),
                 "spearman_score_vs_minus_area_within_prompt_mean": float(np.nanmean(within)),
                 "flagged_defective_fraction_area_over_0.5pct": float((areas >= 0.005).mean())}
    return {"n_prompts": n, "table": table, "matching": match, "lotts_s3_refinement_won_fraction": refined_won,
            "judges_on_generated_images": agreement}


def _spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _row(name, items):
    score = np.array([x["score"] for x in items])
    area = np.array([x["area"] for x in items])
    n = len(items)
    return {"method": name, "nfe": float(np.mean([x["nfe"] for x in items])),
            "samples_per_prompt": float(np.mean([x["samples_per_prompt"] for x in items])),
            "score": float(score.mean()), "score_ci": bootstrap(lambda i: score[i].mean(), n, seed=4),
            "area": float(area.mean()), "area_ci": bootstrap(lambda i: area[i].mean(), n, seed=5),
            "defect_free_fraction": float((area < 0.005).mean())}


def write_report(out, path):
    a = out["analysis"]
    s = out["settings"]
    main_s = s["lotts_seeds"].split(",")[-1]
    rows = [[r["method"], f"{r['nfe']:.0f}", f"{r['samples_per_prompt']:g}", fmt_ci(r["score"], r["score_ci"], 2),
             fmt_ci(100 * r["area"], [100 * v for v in r["area_ci"]], 2), f"{100 * r['defect_free_fraction']:.0f} %"]
            for r in a["table"]]
    text = (f"## Quality versus compute ({a['n_prompts']} test prompts, {s['steps']} euler steps, cfg {s['cfg']})\n\n"
            f"LoTTS: k = 2, r = {s['area_ratio']}, t0 = step {out['start_step']} of {s['steps']} (start fraction "
            f"{out['t0']['chosen']}, chosen on calib), g = {s['global_steps']}, capture levels {s['levels']}, "
            f"lambda {s['lambda']}, signal {s['signal']}. Selection: world verifier. Held-out measure: segmenter's "
            f"defective-area fraction of the chosen image (lower is better; never used for selection). "
            f"95 % bootstrap intervals over prompts.\n\n"
            + markdown_table(["method", "NFE / prompt", "samples / prompt (paper)", "verifier score (higher better)",
                              "held-out defect area % (lower better)", "chosen image defect-free (area < 0.5 %)"],
                             rows))
    j = a["judges_on_generated_images"]
    text += (f"\nJudges on the {j['generated_images']} generated Best-of-N candidates: Spearman(verifier score, "
             f"-held-out area) = {j['spearman_score_vs_minus_area_all']:.2f} over all, "
             f"{j['spearman_score_vs_minus_area_within_prompt_mean']:.2f} within a prompt (mean); "
             f"{100 * j['flagged_defective_fraction_area_over_0.5pct']:.0f} % of them have a held-out defect area "
             f">= 0.5 %. LoTTS s = {main_s} picked a refinement (not an original seed) for "
             f"{100 * a['lotts_s3_refinement_won_fraction']:.0f} % of prompts.\n")
    mrows = []
    for key, m in a["matching"].items():
        value, _, budget = key.partition("_by_")
        mrows.append([value.replace("score", "verifier score").replace("area", "held-out defect area"),
                      budget.replace("_rounds2", " (LoTTS 2 rounds)"), f"{m['lotts_budget']:.0f}",
                      f"never (> {s['bon_n'].split(',')[-1]} samples)" if m["ratio"] is None else f"{m['bon_budget_matching']:.0f}",
                      fmt_ci(m["ratio"], m["ci"], 2)])
    text += (f"\n### Budget at which Best-of-N first matches LoTTS (s = {main_s})\n\n"
             "ratio = Best-of-N budget / LoTTS budget (> 1: LoTTS is cheaper for the same quality; the paper "
             "reports 2.8-4x in samples per prompt on real models). 'never' = not reached within the largest N.\n\n"
             + markdown_table(["measure", "budget unit", "LoTTS budget", "Best-of-N budget that matches",
                               "ratio [95 % CI]"], mrows))
    c = out["outside_change"]
    crow = []
    for g in [key for key in c if key.startswith("g=")]:
        x = c[g]
        crow.append([g, x["refinements"], f"{x['latent_inside']:.4f}", f"{x['latent_outside']:.4f}",
                     f"{x['latent_outside_far']:.4f}", f"{x['pixel_inside']:.4f}", f"{x['pixel_outside']:.4f}",
                     f"{x['pixel_outside_far']:.4f}", f"{x['score_gain']:+.3f}", f"{100 * x['improved_fraction']:.0f} %",
                     f"{100 * x['area_change']:+.2f}"])
    text += (f"\n### Change outside the mask (LoTTS refinements of the s = {main_s} seeds, r = {s['area_ratio']})\n\n"
             "Mean absolute change refined - parent: latents (in units of the latents' standard deviation) and decoded pixels ([0, 1]), inside "
             "the mask, outside it, and outside farther than one latent cell (8 px) from it. For scale: two "
             f"different seeds differ by {c['reference_pixel_change_between_two_seeds']:.4f} per pixel on average.\n\n"
             + markdown_table(["harmonization", "refinements", "latent in", "latent out", "latent out far",
                               "pixel in", "pixel out", "pixel out far", "verifier gain vs parent",
                               "improved", "held-out area change (pp)"], crow))
    if "mask_sources_by_t0_step" in c:
        mrow = [[step, name, x["refinements"], fmt_ci(x["score_gain"], x["score_gain_ci"], 3),
                 f"{100 * x['improved_fraction']:.0f} %", f"{100 * x['area_change']:+.2f}", f"{x['pixel_outside']:.4f}"]
                for step, by_name in c["mask_sources_by_t0_step"].items() for name, x in by_name.items()]
        if "fresh_seed_baseline" in c:
            x = c["fresh_seed_baseline"]
            mrow.append(["-", FRESH_SEED, x["refinements"], fmt_ci(x["score_gain"], x["score_gain_ci"], 3),
                         f"{100 * x['improved_fraction']:.0f} %", f"{100 * x['area_change']:+.2f}", "-"])
        text += (f"\n### Where to re-denoise: the LoTTS mask against other masks (same candidates, same seeds, "
                 f"g = {s['global_steps']}; t0 = {out['start_step']} is the chosen start step)\n\n"
                 "One LoTTS round's refinements with the mask replaced. Gain = verifier score of a refinement minus "
                 "its parent's (95 % bootstrap interval over refinements); 'improved' = share of refinements that "
                 "beat their parent. The oracle row masks the held-out segmenter's own defect spots (the defect "
                 "region itself, one latent cell of margin), so its held-out column is not an independent measure. "
                 "The last row is the standing baseline: a new full sample of the same prompt instead of a "
                 "refinement (it costs a whole sample).\n\n"
                 + markdown_table(["t0 step", "mask", "refinements", "verifier gain vs parent", "improved",
                                   "held-out area change (pp)", "pixel change outside"], mrow))
    t = out["t0"]
    trow = [[f"{v['start_fraction']}", v["start_step"], f"{v['score']:.3f}", f"{100 * v['area']:.2f}"]
            for v in t["grid"]]
    text += (f"\n### t0 on calib prompts (LoTTS s = {main_s}; chosen by the verifier score)\n\n"
             + markdown_table(["start fraction", "t0 step", "verifier score", "held-out area %"], trow))
    Path(path).write_text(text)
    return text


def plot(out, path):
    pyplot = plt()
    a = out["analysis"]
    bon = [r for r in a["table"] if r["method"].startswith("Best")]
    lot = [r for r in a["table"] if r["method"].startswith("LoTTS s=") and "1 round" in r["method"]]
    r2 = [r for r in a["table"] if "2 rounds" in r["method"]]
    fig, axes = pyplot.subplots(2, 2, figsize=(11, 8))
    for col, (key, label) in enumerate((("score", "verifier score of the chosen image (higher is better)"),
                                        ("area", "held-out defect area % (lower is better)"))):
        scale = 100.0 if key == "area" else 1.0
        for row, budget in enumerate(("nfe", "samples_per_prompt")):
            ax = axes[row, col]
            main_s = out["settings"]["lotts_seeds"]
            for rows, name, style in ((bon, "Best-of-N", "o-"), (lot, f"LoTTS s={main_s} (k=2)", "s-"),
                                      (r2, f"LoTTS s={main_s.split(',')[-1]}, 2 rounds", "D")):
                if not rows:
                    continue
                x = [r[budget] for r in rows]
                y = np.array([r[key] for r in rows]) * scale
                ci = np.array([r[f"{key}_ci"] for r in rows]) * scale
                ax.plot(x, y, style, label=name)
                ax.fill_between(x, ci[:, 0], ci[:, 1], alpha=0.15)
            ax.set_xscale("log")
            ax.set_xlabel("NFE per prompt (measured)" if budget == "nfe" else "samples per prompt (paper's unit)")
            ax.set_ylabel(label, fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"Quality vs compute on the demo world ({a['n_prompts']} test prompts, 95 % CI over prompts)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return path


def choose_t0(runner, prompts, seed):
    grid = []
    for frac in T0_GRID:
        start = runner.bench.pack.lotts_ops.schedule.resolve_start_step(runner.steps, 0, frac)
        items = [runner.lotts_entry(p, seed + i, runner.lotts_seeds[-1], start) for i, p in enumerate(prompts)]
        grid.append({"start_fraction": frac, "start_step": start, "score": float(np.mean([x["score"] for x in items])),
                     "area": float(np.mean([x["area"] for x in items]))})
        print(json.dumps(grid[-1]), flush=True)
    best = max(grid, key=lambda g: g["score"])
    return {"grid": grid, "chosen": best["start_fraction"], "start_step": best["start_step"],
            "n_prompts": len(prompts), "criterion": f"mean verifier score of LoTTS s={runner.lotts_seeds[-1]} on calib prompts"}


def capture_settings(choice, path):
    """(levels, lambda) from localization.py's JSON ('calib': its calib choice) or the pack's defaults."""
    if choice == "calib":
        path = RESULTS / path
        if path.is_file():
            chosen = json.loads(path.read_text())["calib"]["chosen"]
            return chosen["levels"], chosen["lambda"], "calib choice of bench/localization.py"
    return [0.2, 0.3], 0.3, "pack defaults"


def main(argv=None, bench=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--bon-n", default=",".join(map(str, BON_N)), help="Best-of-N budgets (nested)")
    parser.add_argument("--lotts-seeds", default="1,2,3", help="LoTTS seed counts s (the last is the main one)")
    parser.add_argument("--calib-prompts", type=int, default=12)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--capture", choices=("calib", "defaults"), default="calib",
                        help="capture levels/lambda: the calib choice of localization.py, or the pack defaults")
    parser.add_argument("--localization-json", default="localization.json", help="where localization.py wrote")
    parser.add_argument("--signal", default="attention")
    parser.add_argument("--area-ratio", type=float, default=0.5)
    parser.add_argument("--global-steps", type=int, default=2)
    parser.add_argument("--t0", type=float, default=None, help="start fraction; default: choose on calib")
    parser.add_argument("--no-rounds2", action="store_true")
    parser.add_argument("--change-prompts", type=int, default=8)
    add_run_arguments(parser, "quality_vs_compute.json")
    opts = parser.parse_args(argv)
    bench = bench or Bench(weights=opts.demo_weights, threads=opts.threads, scorers=opts.scorers)
    levels, lam, source = capture_settings(opts.capture, opts.localization_json)
    bon_n = tuple(int(v) for v in opts.bon_n.split(","))
    runner = Runner(bench, opts.steps, opts.cfg, levels, lam, opts.signal, opts.area_ratio, 2, opts.global_steps,
                    bon_n, [int(v) for v in opts.lotts_seeds.split(",")])
    settings = {**vars(opts), "levels": levels, "lambda": lam, "capture_source": source, "refinements": 2}
    _, _, _, info = bench.demo.model.read(bench.weights)
    out = {"settings": settings, "world_version": info.get("world_version"),
           "world_variant": info.get("variant", "independent")}
    t = time.time()
    with torch.inference_mode():
        if opts.t0 is None:
            out["t0"] = choose_t0(runner, bench.world.prompts("calib", opts.calib_prompts), opts.seed + 50_000)
        else:
            step = bench.pack.lotts_ops.schedule.resolve_start_step(opts.steps, 0, opts.t0)
            out["t0"] = {"grid": [], "chosen": opts.t0, "start_step": step, "criterion": "given"}
        out["start_step"] = out["t0"]["start_step"]
        out["seconds_t0"] = round(time.time() - t, 1)
        prompts = bench.world.prompts("test", opts.prompts)
        entries = []
        for i, prompt in enumerate(prompts):
            entries.append(run_prompt(runner, prompt, opts.seed + i, out["start_step"], not opts.no_rounds2,
                                      check_nesting=(i == 0)))
            print(json.dumps({"prompt": i, "bon27": entries[-1]["bon"][-1]["score"],
                              "lotts_max_s": entries[-1]["lotts"][-1]["score"], "seconds": round(time.time() - t, 1)}),
                  flush=True)
        out["seconds_search"] = round(time.time() - t, 1)
        out["entries"] = entries
        out["analysis"] = analyse(bench, entries, not opts.no_rounds2)
        source_steps = [g["start_step"] for g in out["t0"]["grid"]]  # every t0 tried on calib
        out["outside_change"], example = outside_change(runner, prompts[:opts.change_prompts], opts.seed,
                                                        out["start_step"], runner.lotts_seeds[-1], source_steps)
    out["seconds"] = bench.seconds()
    path = write_json(opts.out, out)
    print(write_report(out, path.with_suffix(".md")))
    if not opts.no_plot:
        plot(out, path.with_suffix(".png"))
        plot_example(example, path.with_name(path.stem + "_example.png"))
    return out


if __name__ == "__main__":
    main()
