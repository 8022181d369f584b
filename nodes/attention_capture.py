"""LoTTS stage 1: quality-prompt attention capture on finished candidates."""

from ..lotts_ops import defect_map, schedule
from . import _capture, _model_family, _preview
from ._prompt_tokens import DEFAULT_HIGH_TEMPLATE, DEFAULT_LOW_TEMPLATE, encode_quality_conditionings

ATTENTION_TYPE = "LOTTS_ATTENTION"


class LoTTSQualityAttentionCapture:
    CATEGORY = "LoTTS"
    FUNCTION = "capture"
    RETURN_TYPES = (ATTENTION_TYPE, "IMAGE")
    RETURN_NAMES = ("attention", "heatmap")
    OUTPUT_TOOLTIPS = (
        "Per-candidate attention maps under the original, high-quality and low-quality prompts (plus the "
        "predicted-noise difference; that alone on families without an attention hook). Feed it to "
        "'LoTTS Defect Mask'.",
        "Preview: where the low-quality prompt attends more than the high-quality one (red = more), "
        "after self-attention propagation; the noise difference where no attention is read.",
    )
    DESCRIPTION = (
        "Re-noises each finished candidate to the given noise level(s) and runs the frozen model once under "
        "the original prompt, 'A high-quality image of {p}.' and 'A low-quality image of {p}.', recording "
        "cross-attention over the prompt's own tokens and its self-attention propagation. Works on a clone: "
        "the input MODEL is never patched.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": (
                "The model that made the candidates. Attention is read on SD1.x, SD2.x, SDXL, SD3, FLUX.1, FLUX.2, "
                "Chroma, Qwen-Image, LongCat-Image, HiDream, HunyuanImage 2.1 and (ComfyUI 0.33+) Z-Image, Mage-Flow, "
                "Krea 2 and JoyImage; other families (ERNIE-Image, Lens, PixArt, ...) give the noise difference "
                "only.")}),
            "clip": ("CLIP", {"tooltip": "Its text encoder; encodes the three quality prompts."}),
            "samples": ("LATENT", {"tooltip": "Finished candidates (any batch size), e.g. a KSampler output."}),
            "prompt": ("STRING", {"multiline": True, "default": "",
                                  "tooltip": "The positive prompt the candidates were made from."}),
            "high_quality_template": ("STRING", {"default": DEFAULT_HIGH_TEMPLATE,
                                                 "tooltip": "{p} is replaced by the prompt."}),
            "low_quality_template": ("STRING", {"default": DEFAULT_LOW_TEMPLATE,
                                                "tooltip": "{p} is replaced by the prompt."}),
            "noise_levels": ("STRING", {"default": "0.2, 0.3", "tooltip": (
                "Noise levels the candidates are re-noised to before reading attention: 0 = clean, 1 = pure "
                "noise, as a fraction of the model's own schedule. Several values are averaged; early read-outs "
                "(0.1-0.4) localise best.")}),
            "noise_draws": ("INT", {"default": 1, "min": 1, "max": 16,
                                    "tooltip": "Independent noise draws per level, averaged."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "Seed of the re-noising; same seed, same maps."}),
            "layers": ("STRING", {"default": "auto", "tooltip": (
                "Which attention layers to read. 'auto': UNet blocks at 1/2 resolution or lower, all FLUX double "
                "blocks (single ones where a model has no others). 'all', or a list such as "
                "'input:4, middle:0, output:3' (UNet) or 'double:10-18' (FLUX).")}),
        }}

    def capture(self, model, clip, samples, prompt, high_quality_template, low_quality_template,
                noise_levels, noise_draws, seed, layers):
        arch = _model_family.architecture(model)
        _model_family.check_latent_channels(model, samples)
        levels = schedule.parse_float_list(noise_levels, "noise_levels", 0.0, 1.0)
        if any(level <= 0.0 for level in levels):
            raise ValueError("noise_levels: every level must be above 0 (0 means no noise, nothing to read)")
        # families without an attention hook get the noise difference alone (Defect Mask says so if asked more)
        attention = arch != _model_family.NOISE_ONLY
        selection = _model_family.parse_layer_selection(layers, arch) if attention else None
        encoded = encode_quality_conditionings(clip, prompt, high_quality_template, low_quality_template, attention)
        conds = [c for c, _ in encoded]
        weights = {i: w for i, (_, w) in enumerate(encoded)}
        result = _capture.capture(model, conds, weights, samples, levels, noise_draws, seed, selection, attention)
        result["prompt"] = prompt
        result["family"] = _model_family.family_name(model)
        result["family_display"] = _model_family.display_name(model)
        maps = result["maps"]
        if maps is not None:
            contrast = defect_map.normalize_maps(maps["low"]["ca_prop"] - maps["high"]["ca_prop"])
        else:
            contrast = defect_map.normalize_maps(result["noise_difference"])
        return (result, _preview.heatmap_images(contrast, samples["samples"].shape, result["latent_to_image"]))


NODE_CLASS_MAPPINGS = {"LoTTSQualityAttentionCapture": LoTTSQualityAttentionCapture}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSQualityAttentionCapture": "LoTTS Quality-Prompt Attention Capture"}
