"""Which architecture a MODEL is, and where its attention can be observed."""

import functools
import inspect

import comfy.ldm.flux.model
import comfy.ldm.modules.attention
import comfy.ldm.modules.diffusionmodules.openaimodel
import comfy.model_base

UNET = "unet"
FLUX = "flux"
NOISE_ONLY = "noise only"  # any other text-to-image family: the noise-difference signal needs no attention

# model_base class name -> (family key, what users call it, pixels per latent cell for hosts whose latent format
# does not record it). Families not listed are served by name with the latent format's ratio, else 8.
FAMILY_TABLE = {
    "Flux2": ("flux2", "FLUX.2", 16),
    "QwenImage": ("qwen_image", "Qwen-Image", 8),
    "Lumina2": ("lumina2", "Z-Image / Lumina 2", 8),
    "ZImagePixelSpace": ("zimage_pixel", "Z-Image (pixel space)", 1),
    "SD3": ("sd3", "SD3 / 3.5", 8),
    "Chroma": ("chroma", "Chroma", 8),
    "ChromaRadiance": ("chroma_radiance", "Chroma Radiance", 1),
    "HiDream": ("hidream", "HiDream", 8),
    "HunyuanImage21": ("hunyuan_image21", "HunyuanImage 2.1", 32),
    "HunyuanImage21Refiner": ("hunyuan_image21_refiner", "HunyuanImage 2.1 Refiner", 16),
    "LongCatImage": ("longcat_image", "LongCat-Image", 8),
    "ErnieImage": ("ernie", "ERNIE-Image", 16),
    "Krea2": ("krea2", "Krea 2", 8),
    "Ideogram4": ("ideogram4", "Ideogram 4", 16),
    "Lens": ("lens", "Lens", 16),
    "Boogu": ("boogu", "Boogu-Image", 8),
    "JoyImage": ("joyimage", "JoyImage", 8),
    "MageFlow": ("mage_flow", "Mage-Flow", 16),
    "PixelDiTT2I": ("pixeldit", "PixelDiT", 1),
    "Anima": ("anima", "Anima", 8),
    "HiDreamO1": ("hidream_o1", "HiDream-O1", 1),
    "AuraFlow": ("auraflow", "AuraFlow", 8),
    "Omnigen2": ("omnigen2", "OmniGen2", 8),
    "PixArt": ("pixart", "PixArt", 8),
    "HunyuanDiT": ("hunyuan_dit", "HunyuanDiT", 8),
}
_ATTENTION_FAMILIES = ("SD1.x, SD2.x, SDXL, SD3 / 3.5, FLUX.1, FLUX.2, Chroma, Qwen-Image, LongCat-Image, HiDream, "
                       "HunyuanImage 2.1, Mage-Flow, Krea 2, JoyImage and (on hosts that tag its blocks) Z-Image / "
                       "Lumina 2")
# joint-attention families the host tags by block: FLUX.1's text-then-image order (FLUX.1 itself is found by class),
# then those whose order differs
_TEXT_FIRST = ("Chroma", "Flux2", "QwenImage", "SD3", "LongCatImage", "MageFlow", "Krea2")
_IMAGE_FIRST = ("HiDream", "JoyImage")  # image tokens, then the text's (HiDream: T5's and two Llama layers')
_TEXT_LAST = ("JoyImage",)  # ... with any reference images' tokens between the image and the text
_IMAGE_LAST = ("HunyuanImage21",)  # image and text (Qwen2.5-VL, then any ByT5 glyphs), the order by host version


def _table_entry(model):
    for cls in type(model.model).__mro__:  # the most specific class listed (ChromaRadiance before Chroma)
        if cls.__name__ in FAMILY_TABLE:
            return FAMILY_TABLE[cls.__name__]
    return None


def _has_flux_layout(model):
    """Joint text-image attention the capture can read: FLUX.1, FLUX.2 / Klein, Chroma, Qwen-Image, LongCat-Image,
    SD3, Mage-Flow and Krea 2 (text tokens, then the image's patch tokens), HiDream, JoyImage and HunyuanImage 2.1
    (another order, see `joint_token_order`), tagged block_type / block_index by the host (by the capture's block
    patch on SD3, see `untagged_joint_blocks`; by call order on HiDream, see `blocks_in_call_order`). Chroma Radiance
    (pixel patches) shares FLUX's classes, not its layout."""
    base = model.model
    if type(base).__name__ in _TEXT_FIRST + _IMAGE_FIRST + _IMAGE_LAST:
        return True
    if type(base).__name__ == "Lumina2":
        return _host_tags_blocks(type(base.diffusion_model))
    if not isinstance(base, comfy.model_base.Flux) or not isinstance(base.diffusion_model, comfy.ldm.flux.model.Flux):
        return False
    return _table_entry(model) is None


@functools.cache
def _host_tags_blocks(diffusion_model_class):
    """Z-Image / Lumina 2 run caption (padded to a multiple) then image tokens through single-stream layers; newer
    hosts tag each layer's attention block_type / block_index, older ones (0.3.75) tag none and have no block
    patch to tag them through, so there the family stays on the noise difference."""
    try:
        return "block_index" in inspect.getsource(diffusion_model_class._forward)
    except (AttributeError, OSError, TypeError):
        return False


def joint_text_multiple(model):
    """Z-Image pads its caption tokens to a multiple of this before the image tokens (1: no padding)."""
    return int(getattr(model.model.diffusion_model, "pad_tokens_multiple", None) or 1)


def untagged_joint_blocks(model):
    """How many joint blocks run attention without block_type / block_index in transformer_options (SD3's MMDiT,
    whose q, k arrive flattened as (B, N, heads*d)); the capture tags them through a "dit" block patch."""
    if type(model.model).__name__ == "SD3":
        return len(model.model.diffusion_model.joint_blocks)
    return 0


def joint_token_order(model):
    """How a joint-attention family orders its tokens: "text first" (FLUX.1's, and most), "image first" (HiDream:
    the image's tokens, then T5's and the Llama layers'; HunyuanImage 2.1 on hosts whose HunyuanVideo blocks are
    built flipped, 0.3.75), "image first, text last" (JoyImage: reference images' tokens may sit between) or
    "image last" (HunyuanImage 2.1 on 0.33: all text, Qwen then any ByT5 glyph tokens, then exactly the image's)."""
    name = type(model.model).__name__
    if name in _TEXT_LAST:
        return "image first, text last"
    if name in _IMAGE_FIRST:
        return "image first"
    if name in _IMAGE_LAST:
        blocks = model.model.diffusion_model.double_blocks
        return "image first" if len(blocks) and getattr(blocks[0], "flipped_img_txt", False) else "image last"
    return "text first"


def weights_cover_all_text(model):
    """HiDream's prompt weights span every text token of its attention (T5 and both Llama streams), so a call with
    more tokens than image + text is not the layout read here (an edit model's image condition widens the image).
    JoyImage's text is read from the end at the weights' length instead (`joint_token_order`)."""
    return type(model.model).__name__ in _IMAGE_FIRST and type(model.model).__name__ not in _TEXT_LAST


def auto_block_type(model):
    """The blocks the 'auto' layer choice reads: FLUX-style double blocks, or the single-stream blocks of a model
    that has no others (Krea 2)."""
    return "single" if type(model.model).__name__ == "Krea2" else "double"


def blocks_in_call_order(model):
    """(double, single) block counts of a model whose blocks run one attention call each, in order, untagged
    (HiDream): the capture names each call's block by counting; None where the host tags blocks."""
    unet = model.model.diffusion_model
    if type(model.model).__name__ == "HiDream":
        return len(unet.double_stream_blocks), len(unet.single_stream_blocks)
    return None


def joint_text_prefix(model):
    """Learned tokens the model puts before the text in its joint attention (SD3's registers), weight 0."""
    return int(getattr(model.model.diffusion_model, "register_length", 0) or 0)


def patch_size(model):
    """Latent cells per image token along each side (FLUX.1 / Chroma 2; FLUX.2, Mage-Flow, HunyuanImage 2.1 1)."""
    unet = model.model.diffusion_model
    size = getattr(unet, "patch_size", None) or getattr(unet, "patch", None) or 2  # Krea 2 calls it `patch`
    return int(size[-1] if isinstance(size, (list, tuple)) else size)


def architecture(model):
    """'unet' (SD1.x, SD2.x, SDXL and other ComfyUI UNets) or 'flux' (joint text-image attention: FLUX.1, FLUX.2,
    Chroma, Qwen-Image, SD3, HiDream, HunyuanImage 2.1, ...), where the capture can read attention; 'noise only' for
    every other family ComfyUI samples with a text conditioning."""
    base = getattr(model, "model", None)
    if getattr(base, "diffusion_model", None) is None:
        raise ValueError(f"model: {type(base).__name__} has no diffusion model; connect a text-to-image MODEL")
    if isinstance(base.diffusion_model, comfy.ldm.modules.diffusionmodules.openaimodel.UNetModel):
        return UNET
    if _has_flux_layout(model):
        return FLUX
    return NOISE_ONLY


def display_name(model):
    entry = _table_entry(model)
    return entry[1] if entry else {"flux": "FLUX.1", "sdxl": "SDXL", "sd1x": "SD1.x", "sd2x": "SD2.x"}.get(
        family_name(model), type(model.model).__name__)


def require_attention(model, input_name="signal"):
    """The architecture, or one error naming the family and what works instead when it has no attention hook."""
    arch = architecture(model)
    if arch == NOISE_ONLY:
        raise ValueError(
            f"{input_name}: attention is not captured for {display_name(model)} models ({type(model.model).__name__}); "
            f"LoTTS reads attention on {_ATTENTION_FAMILIES}. Use signal 'noise difference', which works on "
            f"every family" + ("; or update ComfyUI (0.33 and newer tag Z-Image's layers)"
                               if type(model.model).__name__ == "Lumina2" else ""))
    return arch


def family_name(model):
    """A short family key for reports and per-family defaults."""
    base = model.model
    entry = _table_entry(model)
    if entry:
        return entry[0]
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
    (newer ComfyUI), else the family table's, else 8 (SD1.x / 2.x / XL, FLUX.1 and most others)."""
    recorded = getattr(model.get_model_object("latent_format"), "spacial_downscale_ratio", None)
    if recorded is not None:
        return int(recorded)
    entry = _table_entry(model)
    return entry[2] if entry else 8


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
