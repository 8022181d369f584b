"""ComfyUI node: load the LoTTS demo world model (MODEL, CLIP, VAE) from demo/weights/.

A demo loader lives apart from the product nodes because the demo model is far smaller than any SD1.x
checkpoint ComfyUI's CheckpointLoaderSimple can detect (its detector matches SD15 by a 768-wide text
context and 320 UNet channels). The VAE part is a plain TAESD state dict, so the same file also loads
with the standard VAELoader when placed in models/vae.
"""

from pathlib import Path

from . import model as demo_model


def weight_files():
    files = sorted(p.name for p in Path(demo_model.WEIGHTS_DIR).glob("*.safetensors"))
    return files or [demo_model.DEFAULT_WEIGHTS]


class LoTTSDemoModelLoader:
    CATEGORY = "LoTTS/demo"
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    RETURN_NAMES = ("model", "clip", "vae")
    OUTPUT_TOOLTIPS = (
        "A small SD1.x-style UNet (ComfyUI's UNetModel with cross-attention, EPS prediction, SD1 noise "
        "schedule) trained on the synthetic quality world; sample it with the standard KSampler.",
        "Its text encoder: SD1's tokenizer with a small CLIP text transformer.",
        "Its TAESD-shaped autoencoder (8x downscale, 4 latent channels).",
    )
    DESCRIPTION = (
        "Loads the LoTTS demo model: a tiny text-to-image latent diffusion model trained on CPU on a synthetic "
        "world of coloured shapes where some images carry local defects (captioned 'low quality'). Use 128x128 "
        "latents (EmptyLatentImage 128x128), prompts such as 'a red circle and a blue square on a striped "
        "background', and the quality templates 'A high-quality image of {p}.' / 'A low-quality image of {p}.'. "
        "For demonstrations and measurements only; not a general image model.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "weights": (weight_files(), {"tooltip": (
                "Demo weights file in the pack's demo/weights folder (written by `python -m demo.train`).")}),
        }}

    def load(self, weights):
        folder = Path(demo_model.WEIGHTS_DIR).resolve()
        path = (folder / weights).resolve()
        if path.parent != folder or not path.is_file():
            raise ValueError(f"weights: {weights!r} is not a file in {folder}")
        model, clip, vae, _ = demo_model.load(path)
        return (model, clip, vae)


NODE_CLASS_MAPPINGS = {"LoTTSDemoModelLoader": LoTTSDemoModelLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSDemoModelLoader": "LoTTS Demo Model Loader (synthetic world)"}
