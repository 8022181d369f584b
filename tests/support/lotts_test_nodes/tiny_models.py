"""Tiny, seeded MODEL / CLIP / VAE for every supported family, built from ComfyUI's own classes.

Each family keeps the real code path: the real supported_models config class and model_base class,
the real tokenizers (bundled with ComfyUI, no download) and a real comfy.sd.CLIP / comfy.sd.VAE,
only with small widths. ComfyUI's layers skip weight init, so weights are filled from a seeded
generator (fan-in scaled normals, unit norms, zero biases) to keep every run identical.
"""

import contextlib
import dataclasses
import functools
import importlib
import inspect
import logging
import math
import pathlib

import comfy.ldm.flux.model
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy.supported_models_base
import comfy.taesd.taesd
import comfy.text_encoders.flux
import torch

from . import more_families

MORE_FAMILIES = ("lumina2", "auraflow", "omnigen2", "chroma_radiance", "pixart", "hunyuan_dit",  # both hosts
                 "ernie", "krea2", "ideogram4", "lens", "boogu", "joyimage", "mage_flow", "pixeldit", "anima",
                 "hidream_o1")  # ComfyUI 0.33 and newer; more_families.py

FAMILIES = ("sd15", "sd21", "sdxl", "flux", "sd3", "chroma", "flux2", "zimage", "qwen_image", "longcat_image",
            "hunyuan_image21", "hidream", *MORE_FAMILIES)

_UNET_COMMON = {
    "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
    "in_channels": 4, "out_channels": 4,
    "num_res_blocks": [1, 1], "channel_mult": [1, 2],
    "transformer_depth": [1, 1], "transformer_depth_output": [1, 1, 1, 1], "transformer_depth_middle": 1,
    "use_temporal_resblock": False, "use_temporal_attention": False,
}
_CLIP_TINY = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 3,
              "projection_dim": 32}

# newer hosts (0.33) require FluxParams.txt_ids_dims (text position axes; none for FLUX.1), 0.3.75 rejects it
_FLUX_EXTRA = ({"txt_ids_dims": []} if "txt_ids_dims" in {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}
               else {})

FAMILY_SPECS = {
    "sd15": dict(config_class=comfy.supported_models.SD15,
                 unet={**_UNET_COMMON, "model_channels": 32, "context_dim": 32, "adm_in_channels": None,
                       "use_linear_in_transformer": False},
                 clip_options={"clip_l_model_config": _CLIP_TINY}, latent_channels=4),
    "sd21": dict(config_class=comfy.supported_models.SD20,
                 unet={**_UNET_COMMON, "model_channels": 64, "context_dim": 32, "adm_in_channels": None,
                       "use_linear_in_transformer": True},
                 clip_options={"model_name": "clip_h", "clip_h_model_config": _CLIP_TINY}, latent_channels=4),
    # SDXL: context = concat(clip_l hidden, clip_g hidden); adm = clip_g pooled + 6 size embeddings of 256.
    "sdxl": dict(config_class=comfy.supported_models.SDXL,
                 unet={**_UNET_COMMON, "model_channels": 64, "context_dim": 64, "adm_in_channels": 32 + 1536,
                       "num_classes": "sequential", "use_linear_in_transformer": True},
                 clip_options={"clip_l_model_config": _CLIP_TINY, "clip_g_model_config": _CLIP_TINY},
                 latent_channels=4),
    "flux": dict(config_class=comfy.supported_models.Flux,  # noqa: E501
                 unet={"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 16,
                       "context_in_dim": 32, "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 4, "depth": 2,
                       "depth_single_blocks": 2, "axes_dim": [4, 6, 6], "theta": 10000, "patch_size": 2,
                       "qkv_bias": True, "guidance_embed": True, **_FLUX_EXTRA},
                 clip_options={"clip_l_model_config": {**_CLIP_TINY, "hidden_size": 16, "projection_dim": 16},
                               "t5xxl_model_config": {"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4,
                                                      "num_layers": 2}},
                 latent_channels=16),
}



_T5_TINY = {"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4, "num_layers": 2}
# llama-style text encoders: tiny widths, the real tokenizers; head_dim stays the class's 128
_LLAMA_TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 1,
               "num_key_value_heads": 1}


def _clip_target(module, tokenizer, te_factory, **kwargs):
    """A ClipTarget of a text encoder module, built with the encoder present (clip_target({}) of some families
    detects no encoder in an empty state dict)."""
    mod = importlib.import_module(f"comfy.text_encoders.{module}")
    return comfy.supported_models_base.ClipTarget(getattr(mod, tokenizer), getattr(mod, te_factory)(**kwargs))


_NEW_FAMILY_SPECS = {
    # SD3 / 3.5: MMDiT, hidden 64 x depth; context = clip_l / clip_g hidden states padded to T5's 4096
    "sd3": dict(config_class=getattr(comfy.supported_models, "SD3", None),
                unet={"in_channels": 16, "out_channels": 16, "pos_embed_scaling_factor": None, "patch_size": 2,
                      "depth": 2, "adm_in_channels": 64, "pos_embed_max_size": 32, "num_patches": 1024,
                      "context_embedder_config": {"target": "torch.nn.Linear",
                                                  "params": {"in_features": 4096, "out_features": 128}}},
                clip=("sd3_clip", "SD3Tokenizer", "sd3_clip", {"clip_l": True, "clip_g": True, "t5": False}),
                clip_options={"clip_l_model_config": _CLIP_TINY, "clip_g_model_config": _CLIP_TINY},
                latent_channels=16),
    "chroma": dict(config_class=getattr(comfy.supported_models, "Chroma", None),
                   unet={"image_model": "chroma", "in_channels": 64, "out_channels": 64, "context_in_dim": 32,
                         "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 4, "depth": 1, "depth_single_blocks": 1,
                         "axes_dim": [4, 6, 6], "theta": 10000, "patch_size": 2, "qkv_bias": True, "in_dim": 64,
                         "out_dim": 64, "hidden_dim": 64, "n_layers": 1, "txt_ids_dims": [], "vec_in_dim": None},
                   clip=("pixart_t5", "PixArtTokenizer", "pixart_te", {}),
                   clip_options={"t5xxl_model_config": _T5_TINY}, latent_channels=16),
    # FLUX.2: 128 latent channels at 1/16, patch 1, text = 3 Mistral layers (10, 20, 30) concatenated
    "flux2": dict(config_class=getattr(comfy.supported_models, "Flux2", None),
                  unet={"image_model": "flux2", "in_channels": 128, "out_channels": 128, "vec_in_dim": None,
                        "context_in_dim": 48, "hidden_size": 64, "mlp_ratio": 3.0, "num_heads": 4, "depth": 1,
                        "depth_single_blocks": 1, "axes_dim": [4, 4, 4, 4], "theta": 2000, "patch_size": 1,
                        "qkv_bias": False, "guidance_embed": True, "txt_ids_dims": [3], "global_modulation": True,
                        "mlp_silu_act": True, "ops_bias": False, "default_ref_method": "index",
                        "ref_index_scale": 10.0},
                  # FLUX.2 Klein's Qwen3 (layers 9, 18, 27; its tokenizer is bundled, Mistral's ships inside the
                  # checkpoint); hosts before Klein: a T5 of the same width
                  clip=(("flux", "KleinTokenizer", "klein_te", {}) if hasattr(comfy.text_encoders.flux, "klein_te")
                        else ("pixart_t5", "PixArtTokenizer", "pixart_te", {})),
                  clip_options={"qwen3_4b_model_config": {**_LLAMA_TINY, "hidden_size": 16, "intermediate_size": 32,
                                                          "num_hidden_layers": 28},
                                "t5xxl_model_config": {**_T5_TINY, "d_model": 48}},
                  latent_channels=128),
    # Z-Image: Lumina 2's NextDiT with Z-Image's modulation (its 256-wide time embedding needs dim >= 256);
    # text = Qwen3 in a chat template
    "zimage": dict(config_class=getattr(comfy.supported_models, "ZImage", None),
                   unet={"image_model": "lumina2", "patch_size": 2, "in_channels": 16, "dim": 256, "cap_feat_dim": 32,
                         "n_layers": 2, "n_refiner_layers": 1, "n_heads": 8, "n_kv_heads": 8, "qk_norm": True,
                         "multiple_of": 16, "axes_dims": [8, 12, 12], "axes_lens": [1536, 512, 512],
                         "rope_theta": 256.0, "ffn_dim_multiplier": 8.0 / 3.0, "z_image_modulation": True,
                         "time_scale": 1000.0, "pad_tokens_multiple": 32},  # as detected from Z-Image files
                   clip=("z_image", "ZImageTokenizer", "te", {}),
                   clip_options={"qwen3_4b_model_config": _LLAMA_TINY}, latent_channels=16),
    # Qwen-Image: 5-D latents (B, 16, 1, h, w) of the Wan 2.1 VAE; text = Qwen2.5-VL in a chat template
    "qwen_image": dict(config_class=getattr(comfy.supported_models, "QwenImage", None),
                       unet={"image_model": "qwen_image", "patch_size": 2, "in_channels": 64, "out_channels": 16,
                             "num_layers": 2, "attention_head_dim": 32, "num_attention_heads": 2,
                             "joint_attention_dim": 32, "axes_dims_rope": [8, 12, 12]},
                       clip=("qwen_image", "QwenImageTokenizer", "te", {}),
                       clip_options={"qwen25_7b_model_config": _LLAMA_TINY}, latent_channels=16, vae="wan21",
                       skip_init=("visual.",)),  # the vision tower is never run on text (left uninitialised)
    # LongCat-Image: FLUX's classes (no guidance, 3-axis text positions), text = Qwen2.5-VL in a fixed template that
    # its encoder cuts from both ends; tokens are (id, weight) pairs without word ids
    "longcat_image": dict(config_class=getattr(comfy.supported_models, "LongCatImage", None),
                          unet={"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": None,
                                "context_in_dim": 32, "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 4, "depth": 1,
                                "depth_single_blocks": 1, "axes_dim": [4, 6, 6], "theta": 10000, "patch_size": 2,
                                "qkv_bias": True, "guidance_embed": False, "txt_ids_dims": [1, 2]},
                          clip=("longcat_image", "LongCatImageTokenizer", "te", {}),
                          clip_options={"qwen25_7b_model_config": _LLAMA_TINY}, latent_channels=16,
                          skip_init=("visual.",)),
    # HunyuanImage 2.1: HunyuanVideo's double / single blocks (FLUX's, text then image) on 64 latent channels at 1/32,
    # patch [1, 1]; text = Qwen2.5-VL in its own chat template, and the model's mapper for ByT5 glyph tokens (the
    # ByT5 encoder itself, 0.2 G parameters at ComfyUI's fixed config, is left out: tests give its output); its 32x VAE
    "hunyuan_image21": dict(config_class=getattr(comfy.supported_models, "HunyuanImage21", None),
                            unet={"image_model": "hunyuan_video", "in_channels": 64, "out_channels": 64,
                                  "vec_in_dim": None, "context_in_dim": 32, "hidden_size": 64, "mlp_ratio": 2.0,
                                  "num_heads": 4, "depth": 1, "depth_single_blocks": 1, "axes_dim": [8, 8],
                                  "theta": 256, "patch_size": [1, 1], "qkv_bias": True, "guidance_embed": False,
                                  "byt5": True, "meanflow": False, "use_cond_type_embedding": False,
                                  "vision_in_dim": None, "meanflow_sum": False},
                            clip=("hunyuan_image", "HunyuanImageTokenizer", "te", {"byt5": False}),
                            clip_options={"qwen25_7b_model_config": {**_LLAMA_TINY, "num_hidden_layers": 4}},  # reads layer -3
                            latent_channels=64,
                            vae="hunyuan_image21", skip_init=("visual.",)),
    # HiDream: image tokens then text (T5, then Llama layers) through one attention per block, flattened q, no block
    # tags; MoE feed-forward; pooled = CLIP-L + CLIP-G projections
    "hidream": dict(config_class=getattr(comfy.supported_models, "HiDream", None),
                    unet={"image_model": "hidream", "patch_size": 2, "in_channels": 16, "out_channels": 16,
                          "num_layers": 1, "num_single_layers": 1, "attention_head_dim": 32,
                          "num_attention_heads": 2, "caption_channels": [32, 32], "text_emb_dim": 64,
                          "num_routed_experts": 2, "num_activated_experts": 1, "axes_dims_rope": [8, 12, 12],
                          "max_resolution": [32, 32], "llama_layers": [1, 2]},
                    clip=("hidream", "HiDreamTokenizer", "hidream_clip", {}),
                    clip_options={"clip_l_model_config": _CLIP_TINY, "clip_g_model_config": _CLIP_TINY,
                                  "t5xxl_model_config": _T5_TINY, "llama_model_config": _LLAMA_TINY},
                    latent_channels=16),

    # Lumina 2: Z-Image's NextDiT class with the original settings (as model_detection sets for dim 2304: GQA 24 / 8
    # heads -> kept 3:1 here, 3 equal-ish rope axes, theta 1e4, ffn x4, no Z-Image modulation / time scale / token
    # padding); [caption ; image] in one joint sequence after separate context / noise refiners. Text = Gemma 2's
    # second-to-last hidden state; Gemma's SentencePiece model ships only inside checkpoints ("spiece_model"), so a
    # tiny one is trained in code (vocabularies.gemma_tokenizer_data). The tokenizer adds only BOS: the system-prompt
    # template "<system> <Prompt Start> <prompt>" is added by the CLIPTextEncodeLumina2 node, not the tokenizer.
}
FAMILY_SPECS.update({k: v for k, v in {**_NEW_FAMILY_SPECS, **more_families.specs(_LLAMA_TINY, _T5_TINY)}.items()
                     if v["config_class"] is not None})
# families this host cannot build, and why (the tests skip with the reason)
UNAVAILABLE = {k: "this host has no model class for it" for k in FAMILIES if k not in FAMILY_SPECS}
_LLAMA_TOKENIZER = pathlib.Path(comfy.text_encoders.flux.__file__).parent / "llama_tokenizer" / "tokenizer.json"
if "hidream" in FAMILY_SPECS and not _LLAMA_TOKENIZER.exists():  # the 0.33 tarball lacks this blob (hosts README)
    UNAVAILABLE["hidream"] = f"HiDream's Llama tokenizer is missing from this host ({_LLAMA_TOKENIZER})"
    del FAMILY_SPECS["hidream"]


def _accepted(unet):
    """The unet config without the keys this host's model class does not take (params dataclasses and
    constructors gain fields between ComfyUI versions)."""
    model = unet.get("image_model")
    params = {"flux2": comfy.ldm.flux.model.FluxParams}.get(model)
    if model == "chroma":
        params = importlib.import_module("comfy.ldm.chroma.model").ChromaParams
    if model == "hunyuan_video":
        params = importlib.import_module("comfy.ldm.hunyuan_video.model").HunyuanVideoParams
    if model == "chroma_radiance":  # 0.33 added fields 0.3.75 rejects
        params = importlib.import_module("comfy.ldm.chroma_radiance.model").ChromaRadianceParams
    if params is not None:
        fields = {f.name for f in dataclasses.fields(params)} | {"image_model"}
        return {k: v for k, v in unet.items() if k in fields}
    if model in ("lumina2", "qwen_image"):
        cls = (importlib.import_module("comfy.ldm.lumina.model").NextDiT if model == "lumina2"
               else importlib.import_module("comfy.ldm.qwen_image.model").QwenImageTransformer2DModel)
        names = inspect.signature(cls.__init__).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in names.values()):
            return {k: v for k, v in unet.items() if k in names}
    return dict(unet)


def seeded_init_(module, seed, skip=()):
    """Fill every parameter deterministically: fan-in scaled weights, unit norm gains, zero biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
            if any(part in name for part in skip):
                continue
            leaf = name.rsplit(".", 1)[-1]
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            elif leaf in ("weight", "scale") and ("norm" in name or "ln" in name):
                p.fill_(1.0)
            elif leaf == "bias" or p.ndim == 0:
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            if p.ndim == 1 and leaf == "weight" and "norm" not in name and "ln" not in name:
                p.fill_(1.0)  # other 1-d gains (GroupNorm in ResBlocks is named in_layers.0 / out_layers.0)


@contextlib.contextmanager
def _narrowed(overrides):
    """While a model class is built, the module-level classes it builds at fixed full width (Anima's LLM adapter) take
    small widths; the originals are put back at once."""
    saved = []
    try:
        for (module_name, name), kwargs in (overrides or {}).items():
            module = importlib.import_module(module_name)
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, functools.partial(getattr(module, name), **kwargs))
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


def build_model(family, seed=0):
    spec = FAMILY_SPECS[family]
    config = spec["config_class"](_accepted(spec["unet"]))
    config.unet_config.update(spec.get("unet_extra", {}))  # widths a class forces through unet_extra_config
    config.set_inference_dtype(torch.float32, None)
    with _narrowed(spec.get("ctor_overrides")):
        base = config.get_model({}, "")
    seeded_init_(base.diffusion_model, seed)
    pos_embed = getattr(base.diffusion_model, "pos_embed", None)
    if isinstance(pos_embed, torch.Tensor) and not isinstance(pos_embed, torch.nn.Parameter):
        # SD3's position table is an empty buffer that checkpoints fill: uninitialised memory, sometimes NaN
        with torch.no_grad():
            pos_embed.copy_(torch.randn(pos_embed.shape, generator=torch.Generator().manual_seed(seed)) * 0.02)
    return comfy.model_patcher.ModelPatcher(base, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def build_clip(family, seed=1):
    spec = FAMILY_SPECS[family]
    if "clip" in spec:
        module, tokenizer, factory, kwargs = spec["clip"]
        target = _clip_target(module, tokenizer, factory, **kwargs)
    else:
        target = spec["config_class"](_accepted(spec["unet"])).clip_target({})
    extra = {}
    if "tokenizer_data" in spec:  # a vocabulary that ships inside checkpoints, built in code (vocabularies.py)
        extra["tokenizer_data"] = spec["tokenizer_data"]()
    model_options = {"dtype": torch.float32, **spec["clip_options"]}
    if spec.get("te_state_dict"):  # weights that exist only once a checkpoint loads (GPT-OSS's mixed-precision ops)
        extra["state_dict"] = _seeded_te_state_dict(target, model_options, seed, spec.get("skip_init", ()))
    clip = comfy.sd.CLIP(target=target, model_options=model_options, **extra)
    if "state_dict" not in extra:
        seeded_init_(clip.cond_stage_model, seed, spec.get("skip_init", ()))
    return clip


def _seeded_te_state_dict(target, model_options, seed, skip=()):
    """A seeded 'checkpoint' for a text encoder whose layers create their weights on load: built once, given the
    weights a load would assign (compute dtype, the op's original shape), seeded, read back."""
    te = target.clip(device=torch.device("cpu"), dtype=torch.float32, model_options=model_options)
    for module in te.modules():
        if hasattr(module, "_orig_shape") and getattr(module, "weight", None) is None:
            module.weight = torch.nn.Parameter(torch.empty(module._orig_shape, dtype=module.factory_kwargs["dtype"]),
                                               requires_grad=False)
    seeded_init_(te, seed, skip)
    return {k: v.detach() for k, v in te.state_dict().items()}


def build_vae(family, seed=2):
    if FAMILY_SPECS[family].get("vae") == "pixel":  # pixel-space families: ComfyUI's identity "VAE", nothing to seed
        return comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)})
    if FAMILY_SPECS[family].get("vae") == "hunyuan_image21":
        # ComfyUI builds this VAE at its full width from the shape of one key (64 latent channels at 1/32); there is
        # no narrow one, so it is the real size with seeded weights (about 0.4 G parameters, decoded at 64 x 64)
        logging.disable(logging.WARNING)  # it lists every key missing from that one-key state dict: all of them
        try:
            vae = comfy.sd.VAE(sd={"decoder.conv_in.weight": torch.zeros(1024, 64, 3, 3)})
        finally:
            logging.disable(logging.NOTSET)
        seeded_init_(vae.first_stage_model, seed)
        return vae
    if FAMILY_SPECS[family].get("vae") == "wan21":  # a narrow Wan 2.1 VAE: 5-D latents, as Qwen-Image's
        wan = importlib.import_module("comfy.ldm.wan.vae").WanVAE(
            dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
            temperal_downsample=[False, True, True], dropout=0.0)
        seeded_init_(wan, seed)
        return comfy.sd.VAE(sd=dict(wan.state_dict()))
    channels = FAMILY_SPECS[family]["latent_channels"]
    taesd = comfy.taesd.taesd.TAESD(latent_channels=channels)
    seeded_init_(taesd, seed)
    with torch.no_grad():  # 0-d parameters are zeroed above; a zero vae_scale would decode every latent to black
        taesd.vae_scale.fill_(1.0)
    sd = {k: v for k, v in taesd.state_dict().items()}
    if "metadata" in inspect.signature(comfy.sd.VAE.__init__).parameters:  # newer hosts: FLUX.2's TAESD reads
        return comfy.sd.VAE(sd=sd, metadata={"tae_latent_channels": channels})  # 32 from its first layer
    return comfy.sd.VAE(sd=sd)


_CACHE = {}


def tiny_family(family):
    """(MODEL, CLIP, VAE) for a family; built once per process (nodes must clone before patching)."""
    if family not in FAMILY_SPECS:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if family not in _CACHE:
        _CACHE[family] = (build_model(family), build_clip(family), build_vae(family))
    return _CACHE[family]
