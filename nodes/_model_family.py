"""Which architecture a MODEL is, and where its attention can be observed."""

import comfy.ldm.flux.model
import comfy.ldm.modules.attention
import comfy.ldm.modules.diffusionmodules.openaimodel
import comfy.model_base

UNET = "unet"
FLUX = "flux"


def architecture(model):
    """'unet' (SD1.x, SD2.x, SDXL and other ComfyUI UNets) or 'flux'; a clear error for anything else."""
    diffusion_model = model.model.diffusion_model
    if isinstance(diffusion_model, comfy.ldm.modules.diffusionmodules.openaimodel.UNetModel):
        return UNET
    if isinstance(diffusion_model, comfy.ldm.flux.model.Flux):
        return FLUX
    raise ValueError(
        f"model: LoTTS attention capture supports UNet models (SD1.x, SD2.x, SDXL) and FLUX, "
        f"got {type(model.model).__name__} / {type(diffusion_model).__name__}")


def family_name(model):
    """A short family label for reports and per-family defaults."""
    base = model.model
    if isinstance(base, comfy.model_base.Flux):
        return "flux"
    if isinstance(base, comfy.model_base.SDXL):
        return "sdxl"
    if isinstance(base, comfy.model_base.BaseModel) and architecture(model) == UNET:
        context_dim = getattr(base.model_config, "unet_config", {}).get("context_dim")
        linear = getattr(base.model_config, "unet_config", {}).get("use_linear_in_transformer")
        return "sd2x" if linear and context_dim != 768 else "sd1x"
    return type(base).__name__.lower()


def unet_transformer_blocks(model):
    """[(block_name, block_id)] of every UNet block that holds a SpatialTransformer."""
    unet = model.model.diffusion_model
    spatial = comfy.ldm.modules.attention.SpatialTransformer
    found = []
    groups = (("input", unet.input_blocks), ("middle", [unet.middle_block]), ("output", unet.output_blocks))
    for name, blocks in groups:
        for block_id, block in enumerate(blocks):
            if block is not None and any(isinstance(m, spatial) for m in block.modules()):
                found.append((name, block_id))
    return found


def parse_layer_selection(text, arch):
    """'auto' / 'all' / 'input:4, middle:0, output:3' (UNet) / 'double:0-18, single:2' (FLUX).
    Returns None for auto, or a set of (block_name, index)."""
    text = (text or "auto").strip().lower()
    if text == "auto":
        return None
    if text == "all":
        return "all"
    allowed = ("input", "middle", "output") if arch == UNET else ("double", "single")
    chosen = set()
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        name, _, index = item.partition(":")
        if name not in allowed or not index:
            raise ValueError(f"layers: '{item}' is not one of {allowed} followed by ':index' (e.g. '{allowed[0]}:1')")
        low, _, high = index.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"layers: '{item}' needs a number or a range like 2-5 after ':'")
        for i in range(int(low), int(high or low) + 1):
            chosen.add((name, i))
    if not chosen:
        raise ValueError("layers: no layer listed; use 'auto', 'all' or e.g. 'input:4, middle:0'")
    return chosen


def check_latent_channels(model, samples, input_name="samples"):
    """A clear error when a latent was made by another model family (e.g. a 16-channel FLUX latent into SD1.x)."""
    expected = getattr(model.get_model_object("latent_format"), "latent_channels", None)
    channels = samples["samples"].shape[1]
    if expected is not None and channels != expected:
        raise ValueError(f"{input_name}: latent has {channels} channels, this {family_name(model)} model expects "
                         f"{expected}; was it made by another model family?")
