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
        # FLUX.2 / Klein share the FLUX network class but not its latents (128 channels at 1/16) nor its
        # templated text, so token weights and previews would be silently wrong
        flux2 = getattr(comfy.model_base, "Flux2", None)
        if (flux2 is not None and isinstance(model.model, flux2)) or not isinstance(model.model, comfy.model_base.Flux):
            raise ValueError(f"model: FLUX.2 and Klein models ({type(model.model).__name__}) are not supported yet; "
                             "LoTTS supports FLUX.1, SD1.x, SD2.x and SDXL")
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


def latent_to_image_scale(model):
    """Pixels per latent cell along each side: the latent format's own ratio where the host records one
    (newer ComfyUI), else 8, the ratio of every family LoTTS supports."""
    return int(getattr(model.get_model_object("latent_format"), "spacial_downscale_ratio", 8))


def fix_empty_latent_channels(model, latent, samples):
    """comfy.sample.fix_empty_latent_channels, given the latent's downscale ratios where the host takes them."""
    import inspect

    import comfy.sample

    accepted = inspect.signature(comfy.sample.fix_empty_latent_channels).parameters
    extra = {k: latent[k] for k in ("downscale_ratio_spacial", "downscale_ratio_temporal") if k in accepted and k in latent}
    return comfy.sample.fix_empty_latent_channels(model, samples, **extra)


def refuse_multi_gpu(model):
    """Multi-GPU chunking runs conditioning chunks on threads, which would race the attention recorder."""
    get = getattr(model, "get_additional_models_with_key", None)
    if get is not None and get("multigpu"):
        raise ValueError("model: LoTTS capture does not support multi-GPU (MultiGPU CFG split) models yet; "
                         "use the model without the multi-GPU node")
