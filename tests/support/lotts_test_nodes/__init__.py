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
