"""Test-time search in ComfyUI terms: Best-of-N and LoTTS (s seeds x k local refinements x rounds).

Both run on a counting clone of the MODEL, so the reported NFE is every denoiser evaluation made:
sampling (CFG's two passes), quality-prompt capture passes and refinements. Candidate j of a latent item
uses noise index j of `seed`, so Best-of-N's first s candidates are LoTTS's s seeds (equal-budget
comparisons share them).
"""

from dataclasses import dataclass, field

import comfy.model_management
import comfy.sample
import comfy.utils
import torch

from ..lotts_ops import compute, defect_map, regions
from . import _capture, _counting, _crop, _local, _model_family, _preview, _pruning
from .defect_mask import defect_probability_from_capture


@dataclass
class SamplingSettings:
    positive: list
    negative: list
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str


@dataclass
class LocalSettings:
    conds: list
    token_weights: dict
    noise_levels: list
    noise_draws: int
    selection: object
    area_ratio: float
    foreground_weight: float
    signal: str
    start_step: int
    refinements: int
    global_steps: int
    rounds: int
    mask_mode: str = "top area (paper)"
    region_threshold: float = 0.6
    region_min_area: float = 0.01
    region_max_area: float = 0.3
    crop_padding: int = -1  # >= 0: re-denoise only a crop of the mask's box grown by this many latent cells


MASK_MODES = ("top area (paper)", "defect regions")


def defect_masks(p, local):
    """The paper's top-r area of the map, or its strongest connected regions (empty where none stands out)."""
    if local.mask_mode == MASK_MODES[0]:
        return defect_map.top_area_mask(p, local.area_ratio)
    if local.mask_mode == MASK_MODES[1]:
        return regions.region_masks(p, local.region_threshold, local.region_min_area, local.region_max_area)
    raise ValueError(f"mask_mode: must be one of {MASK_MODES}, got {local.mask_mode!r}")


@dataclass
class SearchResult:
    best_latents: torch.Tensor
    best_images: torch.Tensor
    best_masks: torch.Tensor  # latent size; zeros where an unrefined candidate won
    all_images: torch.Tensor
    all_scores: torch.Tensor
    labels: list
    winners: list
    report: dict = field(default_factory=dict)


def _candidate_batch(model, latent, seed, per_item):
    items = latent["samples"]
    repeated = items.repeat_interleave(per_item, dim=0)
    repeated = _model_family.fix_empty_latent_channels(model, latent, repeated)
    noise = torch.cat([comfy.sample.prepare_noise(repeated[i * per_item:(i + 1) * per_item], seed)
                       for i in range(items.shape[0])])
    return repeated, noise


def sample_candidates(model, latent, settings, seed, per_item):
    """`per_item` full samplings per latent item (item-major), noise index j = candidate j of the item."""
    repeated, noise = _candidate_batch(model, latent, seed, per_item)
    comfy.model_management.throw_exception_if_processing_interrupted()
    return comfy.sample.sample(model, noise, settings.steps, settings.cfg, settings.sampler_name, settings.scheduler,
                               settings.positive, settings.negative, repeated, disable_pbar=True, seed=seed)


def decode(vae, latents):
    comfy.model_management.throw_exception_if_processing_interrupted()
    images = vae.decode(latents)
    if images.ndim == 5:  # video VAEs return (B, T, H, W, C); one frame here
        images = images.reshape(-1, *images.shape[-3:])
    return images


def decode_and_score(vae, verifier, latents, prompt):
    images = decode(vae, latents)
    return images, verifier.score(images, [prompt] * images.shape[0])


def _report(method, counter, nfe_sampling, items, per_item, settings, extra):
    pruned = extra.get("pruning")
    # sampling work in whole samples: a pruned candidate ran at_step of the steps
    full_samples = pruned["full_sample_equivalents"] if pruned else items * per_item
    nfe_per_sample = nfe_sampling / full_samples
    return {"method": method, "nfe": counter.count, "nfe_per_image": counter.count / items,
            "nfe_per_full_sample": nfe_per_sample,
            "equivalent_full_samples": compute.equivalent_full_samples(counter.count / items, nfe_per_sample),
            "steps": settings.steps, "cfg": settings.cfg, **extra}


def _initial_candidates(model, vae, verifier, latent, settings, prompt, seed, per_item, progress, pruning=None):
    """Counting clone, `per_item` samples per latent item (with pruning: only the survivors finish), decoded and
    scored. Returns the clone, its counter, the finished latents, the sampling NFE, images, scores, labels,
    the number finished per item and a report of the pruning (None without)."""
    counted, counter = _counting.counting_clone(model)
    items = latent["samples"].shape[0]
    labels = [f"s{j}" for _ in range(items) for j in range(per_item)]
    pruned = None
    if pruning is None:
        candidates = sample_candidates(counted, latent, settings, seed, per_item)
        finished_per_item = per_item
    else:
        repeated, noise = _candidate_batch(counted, latent, seed, per_item)
        candidates, survivors, early = _pruning.sample_pruned(counted, vae, verifier, repeated, noise, settings, prompt,
                                                              seed, items, per_item, pruning, decode)
        finished_per_item = len(survivors) // items
        pruned = {"at_step": pruning.at_step, "keep": pruning.keep, "sampled": items * per_item,
                  "finished": len(survivors), "early_scores": [round(float(s), 5) for s in early],
                  "full_sample_equivalents": (items * per_item * pruning.at_step
                                              + len(survivors) * (settings.steps - pruning.at_step)) / settings.steps,
                  "pruned": [labels[i] for i in range(len(labels)) if i not in set(survivors)]}
        labels = [labels[i] for i in survivors]
    nfe_sampling = counter.count
    images, scores = decode_and_score(vae, verifier, candidates, prompt)
    if progress:
        progress.advance(images)
    return counted, counter, candidates, nfe_sampling, images, scores, labels, finished_per_item, pruned


def best_of_n(model, vae, verifier, latent, settings, prompt, seed, n, progress=None, pruning=None):
    items = latent["samples"].shape[0]
    _, counter, candidates, nfe_sampling, images, scores, labels, finished, pruned = _initial_candidates(
        model, vae, verifier, latent, settings, prompt, seed, n, progress, pruning)
    grouped = scores.reshape(items, finished)
    winners = [i * finished + int(grouped[i].argmax()) for i in range(items)]
    report = _report("best_of_n", counter, nfe_sampling, items, finished, settings,
                     {"n": n, "samples_per_prompt": n, "scores": [round(float(s), 5) for s in scores],
                      "labels": labels, "winners": [labels[w] for w in winners], "pruning": pruned})
    mask = torch.zeros(items, *candidates.shape[-2:])
    return SearchResult(candidates[winners], images[winners], mask, images, scores, labels, winners, report)


def lotts(model, vae, verifier, latent, settings, local, prompt, seed, seeds, progress=None, pruning=None):
    """s seeds per latent item, then `rounds` times: localize, refine k times, keep the best of each lineage."""
    items = latent["samples"].shape[0]
    counted, counter, current, nfe_sampling, images, scores, labels, lineages, pruned = _initial_candidates(
        model, vae, verifier, latent, settings, prompt, seed, seeds, progress, pruning)
    pool_images, pool_scores = [images], [scores]
    lineage_index = list(range(items * lineages))  # pool index of each lineage's current best
    current = current.clone()  # lineage winners are written into it; sampling's output stays untouched
    current_images = images.clone()
    current_scores = scores.clone()
    current_masks = torch.zeros(current.shape[0], *current.shape[-2:])
    nfe_capture = 0
    nfe_refinement_area_weighted = 0.0
    for round_index in range(local.rounds):
        round_seed = seed + 1_000_003 * (round_index + 1)
        before = counter.count
        attention = _capture.capture(counted, local.conds, local.token_weights, {"samples": current},
                                     local.noise_levels, local.noise_draws, round_seed, local.selection)
        nfe_capture += counter.count - before
        p = defect_map.normalize_maps(defect_probability_from_capture(attention, local.signal,
                                                                      local.foreground_weight, True))
        masks = defect_masks(p, local)
        # a lineage whose mask is empty has nothing to re-denoise: it spends no refinement compute
        active = [i for i in range(current.shape[0]) if bool(masks[i].any())]
        if progress:
            progress.advance(_preview.mask_overlay(current_images, masks))
        if not active:
            if progress:
                progress.advance()
            continue
        before = counter.count
        if local.crop_padding >= 0:
            refined, weighted = _crop.refine_in_crops(
                counted, settings.positive, settings.negative, {"samples": current[active]}, masks[active], round_seed,
                settings.steps, settings.cfg, settings.sampler_name, settings.scheduler, local.start_step,
                local.refinements, local.global_steps, local.crop_padding, counter)
        else:
            refined, _ = _local.localized_refine(counted, settings.positive, settings.negative,
                                                 {"samples": current[active]}, masks[active], round_seed,
                                                 settings.steps, settings.cfg, settings.sampler_name,
                                                 settings.scheduler, local.start_step, local.refinements,
                                                 local.global_steps, show_progress=False)
            weighted = counter.count - before
        nfe_refinement_area_weighted += weighted
        # parents and children in ONE scoring call: batch-relative verifiers (rank ensembles) only
        # compare within a batch
        refined_images = decode(vae, refined["samples"])
        batch_scores = verifier.score(torch.cat([current_images, refined_images]),
                                      [prompt] * (current.shape[0] + refined_images.shape[0]))
        current_scores = batch_scores[:current.shape[0]].clone()
        refined_scores = batch_scores[current.shape[0]:]
        offset = sum(len(s) for s in pool_scores)
        pool_images.append(refined_images)
        pool_scores.append(refined_scores)
        k = local.refinements
        for slot, lineage in enumerate(active):
            labels.extend(f"{labels[lineage_index[lineage]]}r{round_index + 1}.{j}" for j in range(k))
            block = refined_scores[slot * k:(slot + 1) * k]
            best = int(block.argmax())
            if float(block[best]) > float(current_scores[lineage]):  # a refinement must beat its parent
                current[lineage] = refined["samples"][slot * k + best]
                current_images[lineage] = refined_images[slot * k + best]
                current_scores[lineage] = block[best]
                current_masks[lineage] = masks[lineage]
                lineage_index[lineage] = offset + slot * k + best
        if progress:
            progress.advance(refined_images)
    all_images, all_scores = torch.cat(pool_images), torch.cat(pool_scores)
    grouped = current_scores.reshape(items, lineages)
    chosen = [i * lineages + int(grouped[i].argmax()) for i in range(items)]
    winners = [lineage_index[c] for c in chosen]
    report = _report("lotts", counter, nfe_sampling, items, lineages, settings, {
        "seeds": seeds, "refinements": local.refinements, "rounds": local.rounds,
        "samples_per_prompt": compute.lotts_samples_per_prompt(seeds, local.refinements, local.rounds),
        "nfe_sampling": nfe_sampling, "nfe_capture": nfe_capture,
        "nfe_refinement": counter.count - nfe_sampling - nfe_capture,
        "start_step": local.start_step, "global_steps": local.global_steps, "area_ratio": local.area_ratio,
        "mask_mode": local.mask_mode, "pruning": pruned, "crop_padding": local.crop_padding,
        "nfe_refinement_area_weighted": round(nfe_refinement_area_weighted, 3),
        "scores": [round(float(s), 5) for s in all_scores], "labels": labels,
        "winners": [labels[w] for w in winners]})
    return SearchResult(current[chosen], all_images[winners], current_masks[chosen], all_images, all_scores,
                        labels, winners, report)


def stage_progress(total):
    """Stages: the candidates, then per LoTTS round the masks and the refinements, each with a preview."""
    return _preview.StageProgress(total)
