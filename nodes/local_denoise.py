"""LoTTS stage 3: localized perturb-and-denoise, as a pair for the standard samplers and as one node."""

import comfy.samplers

from ..lotts_ops import schedule
from . import _local, _model_family

REFINEMENTS_TOOLTIP = "k: refinements per candidate (the paper's best: 2). The output batch is candidates x k."


class LoTTSPerturbLatent:
    CATEGORY = "LoTTS"
    FUNCTION = "perturb"
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Candidates repeated k times with the mask as noise_mask. Feed to KSamplerAdvanced "
                       "(add_noise enable, start_at_step = t0, return_with_leftover_noise disable) or "
                       "SamplerCustomAdvanced with split sigmas.",)
    DESCRIPTION = ("Prepares localized re-denoising for the standard samplers: the sampler adds step t0's noise "
                   "everywhere, keeps the region outside the mask on the candidate's own trajectory and "
                   "re-denoises only inside. Pair with 'LoTTS Harmonization Patch' for the final global steps.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "samples": ("LATENT", {"tooltip": "Finished candidates."}),
            "mask": ("MASK", {"tooltip": "Where to re-denoise: one mask for all candidates or one per candidate; "
                                         "any resolution with the latent's aspect ratio."}),
            "refinements": ("INT", {"default": 2, "min": 1, "max": 64, "tooltip": REFINEMENTS_TOOLTIP}),
        }}

    def perturb(self, samples, mask, refinements):
        return (_local.perturb_latent(samples, mask, refinements),)


class LoTTSHarmonizationPatch:
    CATEGORY = "LoTTS"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("A patched clone of the model; the input model is unchanged.",)
    DESCRIPTION = ("Lifts the inpainting mask for the last few sampling steps so the re-denoised region and "
                   "the rest are harmonized globally (LoTTS 'holistic consistency').")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "Model used by the sampler that re-denoises the perturbed latent."}),
            "global_steps": ("INT", {"default": 2, "min": 0, "max": 1000, "tooltip": (
                "g: the last g steps run without the mask. 0 keeps the outside exactly as it was.")}),
        }}

    def patch(self, model, global_steps):
        return (_local.with_harmonization(model, global_steps).clone(),)


class LoTTSLocalRefine:
    CATEGORY = "LoTTS"
    FUNCTION = "refine"
    RETURN_TYPES = ("LATENT", "MASK")
    RETURN_NAMES = ("refined", "masks")
    OUTPUT_TOOLTIPS = ("k refinements per candidate (candidate-major: c0r0, c0r1, c1r0, ...).",
                       "The mask used for each refinement, aligned with the refined batch (latent size).")
    DESCRIPTION = ("Localized perturb-and-denoise in one node: fresh noise inside the mask at step t0, the "
                   "outside kept on its own trajectory at the same noise level, masked denoising with the "
                   "outside re-imposed every step, then g global steps.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model that made the candidates."}),
            "positive": ("CONDITIONING", {"tooltip": "Same positive conditioning as the candidates."}),
            "negative": ("CONDITIONING", {"tooltip": "Same negative conditioning as the candidates."}),
            "samples": ("LATENT", {"tooltip": "Finished candidates."}),
            "mask": ("MASK", {"tooltip": "Where to re-denoise (one for all, or one per candidate)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "Seed of the fresh noise; same seed, same refinements."}),
            "steps": ("INT", {"default": 30, "min": 1, "max": 10000,
                              "tooltip": "Steps of the full schedule (as for the candidates)."}),
            "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                              "tooltip": "Classifier-free guidance scale."}),
            "sampler_name": (comfy.samplers.KSampler.SAMPLERS, {"tooltip": "Sampler."}),
            "scheduler": (comfy.samplers.KSampler.SCHEDULERS, {"tooltip": "Noise schedule."}),
            "start_at_step": ("INT", {"default": 12, "min": 0, "max": 10000, "tooltip": (
                "t0 as a step index: resume denoising here (noise of this step is injected in the mask). The "
                "paper's best: 25 of 50 for SD2.1, 15 of 50 for SDXL, 1 for FLUX. 0 = from pure noise (worst).")}),
            "start_fraction": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "t0 as a fraction of steps; when above 0 it overrides start_at_step.")}),
            "refinements": ("INT", {"default": 2, "min": 1, "max": 64, "tooltip": REFINEMENTS_TOOLTIP}),
            "global_steps": ("INT", {"default": 2, "min": 0, "max": 1000, "tooltip": (
                "g: the last g steps run without the mask to harmonize. 0 keeps the outside exactly.")}),
        }}

    def refine(self, model, positive, negative, samples, mask, seed, steps, cfg, sampler_name, scheduler,
               start_at_step, start_fraction, refinements, global_steps):
        _model_family.check_latent_channels(model, samples)
        start = schedule.resolve_start_step(steps, start_at_step, start_fraction)
        refined, noise_mask = _local.localized_refine(model, positive, negative, samples, mask, seed, steps, cfg,
                                                      sampler_name, scheduler, start, refinements, global_steps)
        return (refined, noise_mask.reshape(noise_mask.shape[0], *noise_mask.shape[-2:]))  # (B*k, H, W), 4-D or 5-D


NODE_CLASS_MAPPINGS = {
    "LoTTSPerturbLatent": LoTTSPerturbLatent,
    "LoTTSHarmonizationPatch": LoTTSHarmonizationPatch,
    "LoTTSLocalRefine": LoTTSLocalRefine,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LoTTSPerturbLatent": "LoTTS Perturb Latent (for KSamplerAdvanced)",
    "LoTTSHarmonizationPatch": "LoTTS Harmonization Patch",
    "LoTTSLocalRefine": "LoTTS Localized Refine",
}
