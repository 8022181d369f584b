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

from ..lotts_ops import compute
from . import _capture, _counting, _lineages, _model_family, _preview, _pruning, _sampling_capture


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
    region_selection: bool = False  # per region, the best of the k re-draws, composited (a k+1-th candidate)
    capture_mode: str = _sampling_capture.CAPTURE_MODES[0]  # the seeds' first capture: re-noised or within sampling


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
    broken = int((~torch.isfinite(images.flatten(1)).all(dim=1)).sum())
    if broken:  # a NaN image would be scored, maybe picked, and saved as black
        raise RuntimeError(f"{broken} of {images.shape[0]} candidates decoded to NaN or inf values: the model or the "
                           f"VAE overflowed (fp16? try bf16 or fp32 weights / --fp32-vae)")
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


def _initial_candidates(model, vae, verifier, latent, settings, prompt, seed, per_item, progress, pruning=None,
                        local=None):
    """Counting clone, `per_item` samples per latent item (with pruning: only the survivors finish), decoded and
    scored. Returns the clone, its counter, the finished latents, the sampling NFE, images, scores, labels,
    the number finished per item, a report of the pruning (None without) and, with `local` asking for capture
    within sampling, the seeds' capture (else None; its NFE is not in the sampling NFE)."""
    counted, counter = _counting.counting_clone(model)
    items = latent["samples"].shape[0]
    labels = [f"s{j}" for _ in range(items) for j in range(per_item)]
    pruned, within = None, None
    capture_within = local is not None and local.capture_mode == _sampling_capture.CAPTURE_MODES[1]

    def sample_capturing(noise, latent_image, start_step=0):
        nonlocal within
        samples, within = _sampling_capture.sample_with_capture(
            counted, noise, latent_image, settings, local.conds, local.token_weights, local.noise_levels,
            local.selection, local.signal != "noise difference", counter, seed, start_step)
        return samples

    if capture_within and pruning is None:
        repeated, noise = _candidate_batch(counted, latent, seed, per_item)
        comfy.model_management.throw_exception_if_processing_interrupted()
        candidates = sample_capturing(noise, repeated)
        finished_per_item = per_item
    elif pruning is None:
        candidates = sample_candidates(counted, latent, settings, seed, per_item)
        finished_per_item = per_item
    else:
        repeated, noise = _candidate_batch(counted, latent, seed, per_item)
        finish = (lambda kept: sample_capturing(torch.zeros_like(kept), kept, pruning.at_step)) if capture_within else None
        candidates, survivors, early = _pruning.sample_pruned(counted, vae, verifier, repeated, noise, settings, prompt,
                                                              seed, items, per_item, pruning, decode, finish)
        finished_per_item = len(survivors) // items
        kept = set(survivors)
        pruned = {"at_step": pruning.at_step, "keep": pruning.keep, "sampled": items * per_item,
                  "finished": len(survivors), "early_scores": [round(float(s), 5) for s in early],
                  "full_sample_equivalents": (items * per_item * pruning.at_step
                                              + len(survivors) * (settings.steps - pruning.at_step)) / settings.steps,
                  "pruned": [label for i, label in enumerate(labels) if i not in kept]}
        labels = [labels[i] for i in survivors]
    nfe_sampling = counter.count - (within["model_evaluations"] if within else 0)
    images, scores = decode_and_score(vae, verifier, candidates, prompt)
    if progress:
        progress.advance(images)
    return counted, counter, candidates, nfe_sampling, images, scores, labels, finished_per_item, pruned, within


def best_of_n(model, vae, verifier, latent, settings, prompt, seed, n, progress=None, pruning=None):
    items = latent["samples"].shape[0]
    _, counter, candidates, nfe_sampling, images, scores, labels, finished, pruned, _ = _initial_candidates(
        model, vae, verifier, latent, settings, prompt, seed, n, progress, pruning)
    grouped = scores.reshape(items, finished)
    winners = [i * finished + int(grouped[i].argmax()) for i in range(items)]
    report = _report("best_of_n", counter, nfe_sampling, items, finished, settings,
                     {"n": n, "samples_per_prompt": n, "scores": [round(float(s), 5) for s in scores],
                      "labels": labels, "winners": [labels[w] for w in winners], "pruning": pruned})
    mask = torch.zeros(items, *candidates.shape[-2:])
    return SearchResult(candidates[winners], images[winners], mask, images, scores, labels, winners, report)


def _start(model, vae, verifier, latent, settings, local, prompt, seed, seeds, progress, pruning):
    counted, counter, current, nfe_sampling, images, scores, labels, lineages, pruned, within = _initial_candidates(
        model, vae, verifier, latent, settings, prompt, seed, seeds, progress, pruning, local)
    state = _lineages.Lineages(counted, counter, vae, verifier, settings, local, prompt, current, images, scores,
                               labels, decode, within)
    return state, nfe_sampling, lineages, pruned


def _finish(state, items, lineages, nfe_sampling, settings, local, seeds, pruned, extra):
    all_images, all_scores = torch.cat(state.pool_images), torch.cat(state.pool_scores)
    grouped = state.scores.reshape(items, lineages)
    chosen = [i * lineages + int(grouped[i].argmax()) for i in range(items)]
    winners = [state.index[c] for c in chosen]
    counter = state.counter
    report = _report("lotts", counter, nfe_sampling, items, lineages, settings, {
        "seeds": seeds, "refinements": local.refinements, "rounds": local.rounds,
        "samples_per_prompt": compute.lotts_samples_per_prompt(seeds, local.refinements, local.rounds),
        "nfe_sampling": nfe_sampling, "nfe_capture": state.nfe_capture,
        "nfe_refinement": counter.count - nfe_sampling - state.nfe_capture,
        "start_step": local.start_step, "global_steps": local.global_steps, "area_ratio": local.area_ratio,
        "mask_mode": local.mask_mode, "pruning": pruned, "crop_padding": local.crop_padding,
        "region_selection": local.region_selection, "capture_mode": local.capture_mode,
        "nfe_refinement_area_weighted": round(state.nfe_refinement_area_weighted, 3),
        "scores": [round(float(s), 5) for s in all_scores], "labels": state.labels,
        "winners": [state.labels[w] for w in winners], **extra})
    return SearchResult(state.current[chosen], all_images[winners], state.masks[chosen], all_images, all_scores,
                        state.labels, winners, report)


def lotts(model, vae, verifier, latent, settings, local, prompt, seed, seeds, progress=None, pruning=None):
    """s seeds per latent item, then `rounds` times: localize, refine k times, keep the best of each lineage."""
    items = latent["samples"].shape[0]
    state, nfe_sampling, lineages, pruned = _start(model, vae, verifier, latent, settings, local, prompt, seed,
                                                   seeds, progress, pruning)
    everyone = list(range(items * lineages))
    for round_index in range(local.rounds):
        state.round(everyone, seed + 1_000_003 * (round_index + 1), progress)
    return _finish(state, items, lineages, nfe_sampling, settings, local, seeds, pruned, {})


def round_cost(settings, local, lineages=1, captured=False):
    """NFE of one refinement round of `lineages` lineages: the capture passes (none when `captured` within
    sampling already) and k re-draws from t0."""
    passes = 1 if settings.cfg == 1.0 else 2
    capture = len(local.noise_levels) * local.noise_draws * len(_capture.cond_names(local.signal != "noise difference"))
    return lineages * (0 if captured else capture) + lineages * local.refinements * (settings.steps - local.start_step) * passes


def lotts_budgeted(model, vae, verifier, latent, settings, local, prompt, seed, seeds, nfe_budget, stop_score,
                   progress=None, pruning=None):
    """Best-first LoTTS under an NFE budget per latent item: after the seeds, refine the item's best lineage
    (at most `rounds` times each) while its score is under `stop_score` and the next round still fits in the
    budget; a lineage with nothing to re-denoise is not refined again."""
    items = latent["samples"].shape[0]
    state, nfe_sampling, lineages, pruned = _start(model, vae, verifier, latent, settings, local, prompt, seed,
                                                   seeds, progress, pruning)
    steps_taken = []
    sampled = nfe_sampling + state.nfe_capture  # with capture within sampling, the seeds' capture is spent too
    for item in range(items):
        spent = sampled / items
        open_lineages = set(range(item * lineages, (item + 1) * lineages))
        while open_lineages:
            lineage = max(open_lineages, key=lambda j: float(state.scores[j]))
            cost = round_cost(settings, local, captured=state.has_capture(lineage))
            if spent + cost > nfe_budget:
                break
            best = max(range(item * lineages, (item + 1) * lineages), key=lambda j: float(state.scores[j]))
            if float(state.scores[best]) >= stop_score:
                break
            steps_taken.append(state.labels[state.index[lineage]])  # the parent this step refines
            if not state.round([lineage], seed + 1_000_003 * len(steps_taken)):
                open_lineages.discard(lineage)
            elif state.rounds_done[lineage] >= local.rounds:
                open_lineages.discard(lineage)
            spent += cost
        if progress:
            progress.advance(state.images[item * lineages:(item + 1) * lineages])
    return _finish(state, items, lineages, nfe_sampling, settings, local, seeds, pruned,
                   {"nfe_budget": nfe_budget, "stop_score": stop_score, "best_first_steps": steps_taken})


def stage_progress(total):
    """Stages: the candidates, then per LoTTS round the masks and the refinements, each with a preview."""
    return _preview.StageProgress(total)
