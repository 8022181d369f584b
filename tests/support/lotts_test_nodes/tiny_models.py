"""Tiny, seeded MODEL / CLIP / VAE for every supported family, built from ComfyUI's own classes.

Each family keeps the real code path: the real supported_models config class and model_base class,
the real tokenizers (bundled with ComfyUI, no download) and a real comfy.sd.CLIP / comfy.sd.VAE,
only with small widths. ComfyUI's layers skip weight init, so weights are filled from a seeded
generator (fan-in scaled normals, unit norms, zero biases) to keep every run identical.
"""

import dataclasses
import math

import comfy.ldm.flux.model
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy.supported_models_base
import comfy.taesd.taesd
import torch

FAMILIES = ("sd15", "sd21", "sdxl", "flux")

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
    "flux": dict(config_class=comfy.supported_models.Flux,
                 unet={"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 16,
                       "context_in_dim": 32, "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 4, "depth": 2,
                       "depth_single_blocks": 2, "axes_dim": [4, 6, 6], "theta": 10000, "patch_size": 2,
                       "qkv_bias": True, "guidance_embed": True, **_FLUX_EXTRA},
                 clip_options={"clip_l_model_config": {**_CLIP_TINY, "hidden_size": 16, "projection_dim": 16},
                               "t5xxl_model_config": {"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4,
                                                      "num_layers": 2}},
                 latent_channels=16),
}


def seeded_init_(module, seed):
    """Fill every parameter deterministically: fan-in scaled weights, unit norm gains, zero biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
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


def build_model(family, seed=0):
    spec = FAMILY_SPECS[family]
    config = spec["config_class"](dict(spec["unet"]))
    config.set_inference_dtype(torch.float32, None)
    base = config.get_model({}, "")
    seeded_init_(base.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(base, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def build_clip(family, seed=1):
    spec = FAMILY_SPECS[family]
    target = spec["config_class"](dict(spec["unet"])).clip_target({})
    clip = comfy.sd.CLIP(target=target, model_options={"dtype": torch.float32, **spec["clip_options"]})
    seeded_init_(clip.cond_stage_model, seed)
    return clip


def build_vae(family, seed=2):
    channels = FAMILY_SPECS[family]["latent_channels"]
    taesd = comfy.taesd.taesd.TAESD(latent_channels=channels)
    seeded_init_(taesd, seed)
    sd = {k: v for k, v in taesd.state_dict().items()}
    return comfy.sd.VAE(sd=sd)


_CACHE = {}


def tiny_family(family):
    """(MODEL, CLIP, VAE) for a family; built once per process (nodes must clone before patching)."""
    if family not in FAMILY_SPECS:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if family not in _CACHE:
        _CACHE[family] = (build_model(family), build_clip(family), build_vae(family))
    return _CACHE[family]
