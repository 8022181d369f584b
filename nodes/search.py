"""The all-in-one LoTTS search node and a Best-of-N baseline with the same compute accounting."""

import json

import comfy.samplers
import torch

from ..lotts_ops import schedule
from . import _grid, _model_family, _region_inputs, _search, _search_options
from ._prompt_tokens import DEFAULT_HIGH_TEMPLATE, DEFAULT_LOW_TEMPLATE, encode_quality_conditionings
from .defect_mask import SIGNALS

VERIFIER_TYPE = "LOTTS_VERIFIER"
OUTPUTS = ("IMAGE", "LATENT", "MASK", "IMAGE", "STRING", "INT")
OUTPUT_NAMES = ("best_image", "best_latent", "best_mask", "candidates_preview", "report", "nfe")
OUTPUT_TOOLTIPS = (
    "The verifier's best image per latent item.",
    "Its latent (for further sampling or upscaling).",
    "The defect mask that produced the winner (all zeros when an unrefined candidate won).",
    "Every scored candidate with its score; winners framed in green.",
    "JSON: NFE (every model evaluation: sampling with CFG's passes, capture, refinement), samples per prompt, "
    "scores and winners.",
    "Model evaluations (NFE) spent, per the whole batch.",
)


def _sampling_inputs():
    return {
        "model": ("MODEL", {"tooltip": (
            "The diffusion model: any text-to-image family with signal 'noise difference'; the attention signal on "
            "SD1.x, SD2.x, SDXL, SD3, FLUX.1, FLUX.2, Chroma, Qwen-Image, LongCat-Image, HiDream, HunyuanImage 2.1 and "
            "(ComfyUI 0.33+) Z-Image, Mage-Flow, Krea 2 and JoyImage.")}),
        "vae": ("VAE", {"tooltip": "Decodes candidates for the verifier."}),
        "verifier": (VERIFIER_TYPE, {"tooltip": "Scores candidates; higher is better (see the verifier nodes)."}),
        "positive": ("CONDITIONING", {"tooltip": "Positive conditioning, as for a KSampler."}),
        "negative": ("CONDITIONING", {"tooltip": "Negative conditioning, as for a KSampler."}),
        "latent_image": ("LATENT", {"tooltip": "Empty latent(s); each batch item is searched separately."}),
        "prompt": ("STRING", {"multiline": True, "default": "",
                              "tooltip": "The positive prompt text (for the verifier and the quality prompts)."}),
        "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                         "tooltip": "Base seed: candidate j uses noise j of this seed, as a batch would."}),
        "steps": ("INT", {"default": 30, "min": 1, "max": 10000, "tooltip": "Sampling steps of every candidate."}),
        "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                          "tooltip": "Guidance scale (1.0 skips the unconditional pass: half the NFE)."}),
        "sampler_name": (comfy.samplers.KSampler.SAMPLERS, {"tooltip": "Sampler."}),
        "scheduler": (comfy.samplers.KSampler.SCHEDULERS, {"tooltip": "Noise schedule."}),
    }


def _outputs(result):
    grid = _grid.score_grid(result.all_images, result.all_scores, winners=set(result.winners), labels=result.labels)
    height, width = result.best_images.shape[1:3]  # the decoded size: right whatever the latent scale
    masks = torch.nn.functional.interpolate(result.best_masks.unsqueeze(1), size=(height, width), mode="nearest")[:, 0]
    report = json.dumps(result.report)
    return {"ui": {"text": [report]},
            "result": (result.best_images, {"samples": result.best_latents}, masks, grid, report,
                       int(result.report["nfe"]))}


def _pruning(prune_at_step, prune_keep, steps):
    if not prune_at_step:
        return None
    pruning = _search._pruning.Pruning(prune_at_step, prune_keep)
    _search._pruning.check(pruning, steps)
    return pruning


def _require_prompt(prompt):
    if not (prompt or "").strip():
        raise ValueError("prompt: is empty; the verifier and the quality prompts need the prompt text")


class LoTTSBestOfN:
    CATEGORY = "LoTTS/search"
    FUNCTION = "search"
    RETURN_TYPES = OUTPUTS
    RETURN_NAMES = OUTPUT_NAMES
    OUTPUT_TOOLTIPS = OUTPUT_TOOLTIPS
    DESCRIPTION = "Baseline: sample N whole images and keep the verifier's best, with the same NFE accounting."

    @classmethod
    def INPUT_TYPES(cls):
        optional, hidden = _search_options.options_input()
        return {"required": {**_sampling_inputs(), "n": ("INT", {
            "default": 9, "min": 1, "max": 256, "tooltip": "Number of full samples per latent item."})},
                "optional": optional, "hidden": hidden}

    def search(self, model, vae, verifier, positive, negative, latent_image, prompt, seed, steps, cfg, sampler_name,
               scheduler, n, options=None, graph=None, node_id=None, **linked):
        _require_prompt(prompt)
        options = _search_options.resolve(options, graph, node_id, linked)
        pruning = _pruning(options["prune_at_step"], options["prune_keep"], steps)
        settings = _search.SamplingSettings(positive, negative, steps, cfg, sampler_name, scheduler)
        result = _search.best_of_n(model, vae, verifier, latent_image, settings, prompt, seed, n,
                                   _search.stage_progress(1), pruning)
        return _outputs(result)


class LoTTSSearch:
    CATEGORY = "LoTTS/search"
    FUNCTION = "search"
    RETURN_TYPES = OUTPUTS
    RETURN_NAMES = OUTPUT_NAMES
    OUTPUT_TOOLTIPS = OUTPUT_TOOLTIPS
    DESCRIPTION = ("LoTTS in one node: s seeds, then per round: localize defects by quality-prompt attention, "
                   "re-denoise only there k times, keep a refinement only if the verifier prefers it to its parent. "
                   "Budget in the paper's unit: s x (1 + k x rounds) samples per prompt.")

    @classmethod
    def INPUT_TYPES(cls):
        optional, hidden = _search_options.options_input()
        return {"required": {
            **_sampling_inputs(),
            "clip": ("CLIP", {"tooltip": "Text encoder for the quality prompts."}),
            "seeds": ("INT", {"default": 3, "min": 1, "max": 256, "tooltip": "s: initial candidates per item."}),
            "refinements": ("INT", {"default": 2, "min": 1, "max": 64,
                                    "tooltip": "k: local refinements per candidate and round (paper: 2)."}),
            "rounds": ("INT", {"default": 1, "min": 1, "max": 16,
                               "tooltip": "Rounds: refine each lineage's current best again (depth of the search)."}),
            "start_at_step": ("INT", {"default": 12, "min": 0, "max": 10000,
                                      "tooltip": "t0 step index where re-denoising resumes (see Localized Refine)."}),
            "start_fraction": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                         "tooltip": "t0 as a fraction of steps; above 0 it overrides start_at_step."}),
            "global_steps": ("INT", {"default": 2, "min": 0, "max": 1000,
                                     "tooltip": "g: final steps without the mask (harmonization)."}),
            "area_ratio": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                     "tooltip": "r: fraction of the image re-denoised (paper: 0.5)."}),
            "foreground_weight": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 10.0, "step": 0.05,
                                            "tooltip": "lambda: weight of the original prompt's attention."}),
            "signal": (list(SIGNALS), {"default": "attention", "tooltip": "Defect signal (see LoTTS Defect Mask)."}),
            "noise_levels": ("STRING", {"default": "0.2, 0.3",
                                        "tooltip": "Capture noise levels (0 clean .. 1 noise), averaged."}),
            "high_quality_template": ("STRING", {"default": DEFAULT_HIGH_TEMPLATE, "tooltip": "{p} = the prompt."}),
            "low_quality_template": ("STRING", {"default": DEFAULT_LOW_TEMPLATE, "tooltip": "{p} = the prompt."}),
            "layers": ("STRING", {"default": "auto", "tooltip": "Attention layers read (see the capture node)."}),
        }, "optional": optional, "hidden": hidden}

    def search(self, model, vae, verifier, positive, negative, latent_image, prompt, seed, steps, cfg, sampler_name,
               scheduler, clip, seeds, refinements, rounds, start_at_step, start_fraction, global_steps, area_ratio,
               foreground_weight, signal, noise_levels, high_quality_template, low_quality_template, layers,
               options=None, graph=None, node_id=None, **linked):
        _require_prompt(prompt)
        options = _search_options.resolve(options, graph, node_id, linked)
        pruning = _pruning(options["prune_at_step"], options["prune_keep"], steps)
        attention = signal != "noise difference"  # the noise difference needs no recorder and no token weights
        arch = _model_family.require_attention(model) if attention else _model_family.architecture(model)
        start = schedule.resolve_start_step(steps, start_at_step, start_fraction)
        if global_steps > steps - start:
            raise ValueError(f"global_steps: {global_steps} is more than the {steps - start} steps after t0={start}")
        encoded = encode_quality_conditionings(clip, prompt, high_quality_template, low_quality_template, attention)
        local = _search.LocalSettings(
            conds=[c for c, _ in encoded], token_weights={i: w for i, (_, w) in enumerate(encoded)},
            noise_levels=schedule.parse_float_list(noise_levels, "noise_levels", 1e-3, 1.0), noise_draws=1,
            selection=_model_family.parse_layer_selection(layers, arch) if attention else None, area_ratio=area_ratio,
            foreground_weight=foreground_weight, signal=signal, start_step=start, refinements=refinements,
            global_steps=global_steps, rounds=rounds, mask_mode=options["mask_mode"],
            region_threshold=options["region_threshold"], region_min_area=options["region_min_area"],
            region_max_area=options["region_max_area"], crop_padding=options["crop_padding"],
            region_selection=options["region_selection"], capture_mode=options["capture_mode"])
        _region_inputs.masks_for(torch.zeros(1, 2, 2), local)  # a bad mask_mode or area limits fail before sampling
        settings = _search.SamplingSettings(positive, negative, steps, cfg, sampler_name, scheduler)
        nfe_budget, stop_score = options["nfe_budget"], options["stop_score"]
        if nfe_budget:
            passes = 1 if cfg == 1.0 else 2
            if nfe_budget < seeds * steps * passes:
                raise ValueError(f"nfe_budget: {nfe_budget} does not cover sampling the {seeds} seeds "
                                 f"({seeds * steps * passes} model evaluations at {steps} steps)")
            items = latent_image["samples"].shape[0]
            result = _search.lotts_budgeted(model, vae, verifier, latent_image, settings, local, prompt, seed, seeds,
                                            nfe_budget, stop_score, _search.stage_progress(1 + items), pruning)
        else:
            result = _search.lotts(model, vae, verifier, latent_image, settings, local, prompt, seed, seeds,
                                   _search.stage_progress(1 + 2 * rounds), pruning)
        return _outputs(result)


NODE_CLASS_MAPPINGS = {"LoTTSSearch": LoTTSSearch, "LoTTSBestOfN": LoTTSBestOfN}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSSearch": "LoTTS Search (all-in-one)", "LoTTSBestOfN": "LoTTS Best-of-N Baseline"}
