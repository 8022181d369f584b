"""Test-only ComfyUI nodes: tiny seeded models for every family (never shipped in the pack)."""

from .tiny_models import FAMILIES, tiny_family


class LoTTSTestTinyModels:
    CATEGORY = "testing/lotts"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"
    DESCRIPTION = "Tiny random-weight MODEL/CLIP/VAE of a model family, for tests."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": (list(FAMILIES), {"tooltip": "Model family to build."})}}

    def load(self, family):
        return tiny_family(family)


NODE_CLASS_MAPPINGS = {"LoTTSTestTinyModels": LoTTSTestTinyModels}


EVALUATION_COUNTS = {}


class LoTTSTestCountingModel:
    """Wraps a clone of MODEL so every denoiser row evaluated is counted under `label` (independent of the
    pack's own accounting, to check it)."""

    CATEGORY = "testing/lotts"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wrap"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL", {"tooltip": "Model to count."}),
                             "label": ("STRING", {"default": "count", "tooltip": "Counter name."})}}

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")  # always re-run: the counter must be fresh for each prompt

    def wrap(self, model, label):
        EVALUATION_COUNTS[label] = 0
        clone = model.clone()

        def wrapper(apply_model, args):
            EVALUATION_COUNTS[label] += args["input"].shape[0]
            return apply_model(args["input"], args["timestep"], **args["c"])

        clone.set_model_unet_function_wrapper(wrapper)
        return (clone,)


class _ContrastVerifier:
    """Deterministic test scorer: image contrast (std of pixels); higher is better."""

    name = "test-contrast"

    def score(self, images, prompts=None):
        return images.float().flatten(1).std(dim=1)


class LoTTSTestContrastVerifier:
    CATEGORY = "testing/lotts"
    RETURN_TYPES = ("LOTTS_VERIFIER",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def load(self):
        return (_ContrastVerifier(),)


NODE_CLASS_MAPPINGS.update({"LoTTSTestCountingModel": LoTTSTestCountingModel,
                            "LoTTSTestContrastVerifier": LoTTSTestContrastVerifier})
