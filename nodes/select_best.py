"""Select-best: score a batch with a verifier; keep the best images with their latents and masks aligned."""

import json

import torch

from . import _grid


def _aligned(name, value, batch):
    if value is None:
        return None
    if value.shape[0] not in (1, batch):
        raise ValueError(f"{name}: batch size {value.shape[0]} does not match images batch size {batch}")
    return value.expand(batch, *value.shape[1:]) if value.shape[0] == 1 else value


class LoTTSSelectBest:
    CATEGORY = "LoTTS"
    FUNCTION = "select"
    RETURN_TYPES = ("IMAGE", "LATENT", "MASK", "STRING", "IMAGE")
    RETURN_NAMES = ("images", "latent", "mask", "scores", "preview")
    OUTPUT_TOOLTIPS = (
        "The top_k images, best first.",
        "The latents of those images (same order); None when no latent was connected.",
        "Their masks (same order), when a mask was connected; else empty masks.",
        "JSON: every input's score (higher is better) and the chosen indices.",
        "All inputs with their scores; the chosen ones framed in green.",
    )
    DESCRIPTION = ("Scores a batch with a verifier and returns the best images, and the latents and masks at the "
                   "same indices, so a refined batch stays aligned with what made it.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Candidates to score (e.g. originals + refinements, batched)."}),
            "verifier": ("LOTTS_VERIFIER", {"tooltip": "Scorer; higher is better."}),
            "prompt": ("STRING", {"multiline": True, "default": "",
                                  "tooltip": "Prompt for prompt-aware verifiers; ignored by NIQE/BRISQUE."}),
            "top_k": ("INT", {"default": 1, "min": 1, "max": 4096, "tooltip": "How many to keep."}),
        }, "optional": {
            "latent": ("LATENT", {"tooltip": "Latents aligned with images (same batch), filtered alike."}),
            "mask": ("MASK", {"tooltip": "Masks aligned with images (same batch or one for all), filtered alike."}),
        }}

    def select(self, images, verifier, prompt, top_k, latent=None, mask=None):
        batch = images.shape[0]
        samples = _aligned("latent", latent["samples"] if latent is not None else None, batch)
        masks = _aligned("mask", mask.unsqueeze(0) if mask is not None and mask.ndim == 2 else mask, batch)
        scores = verifier.score(images, [prompt] * batch)
        order = torch.argsort(scores, descending=True, stable=True)[:min(top_k, batch)]
        chosen = order.tolist()
        out_latent = None
        if latent is not None:
            out_latent = {k: v for k, v in latent.items() if k not in ("samples", "noise_mask", "batch_index")}
            out_latent["samples"] = samples[order]
            if "noise_mask" in latent and latent["noise_mask"].shape[0] == batch:
                out_latent["noise_mask"] = latent["noise_mask"][order]
        out_mask = masks[order] if masks is not None else torch.zeros(len(chosen), images.shape[1], images.shape[2])
        report = json.dumps({"scores": [round(float(s), 5) for s in scores], "chosen": chosen,
                             "verifier": getattr(verifier, "name", type(verifier).__name__)})
        preview = _grid.score_grid(images, scores, winners=set(chosen))
        return {"ui": {"text": [report]}, "result": (images[order], out_latent, out_mask, report, preview)}


NODE_CLASS_MAPPINGS = {"LoTTSSelectBest": LoTTSSelectBest}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSSelectBest": "LoTTS Select Best"}
