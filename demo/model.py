"""ComfyUI MODEL / CLIP / VAE of the LoTTS demo world, built with ComfyUI's own classes.

- MODEL: comfy.supported_models.SD15 (EPS prediction, SD1.x latent format and noise schedule) with a small
  unet_config: ComfyUI's UNetModel with SpatialTransformer cross-attention, wrapped in a ModelPatcher.
- CLIP: comfy.sd.CLIP with SD1's tokenizer (the real bundled CLIP BPE vocabulary) and SD1ClipModel with a
  small text transformer (same vocabulary and 77-token context, narrow width).
- VAE: comfy.sd.VAE from a TAESD state dict (ComfyUI auto-detects the "taesd_*" keys).

The weights file holds the UNet under "unet.", the text encoder under "clip." and the TAESD keys unprefixed,
so the same file is also a valid file for the standard VAELoader. The configs travel in the safetensors
metadata ("lotts_demo"), so the loader needs nothing but the file.
"""

import json
from pathlib import Path

import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.supported_models
import comfy.supported_models_base
import safetensors.torch
import torch

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = "lotts_demo_world.safetensors"
FORMAT = "lotts_demo_world/1"

UNET_CONFIG = {
    "use_checkpoint": False, "image_size": 16, "use_spatial_transformer": True, "legacy": False,
    "in_channels": 4, "out_channels": 4, "model_channels": 32, "channel_mult": [1, 2, 4],
    "num_res_blocks": [1, 1, 1], "transformer_depth": [0, 1, 1], "transformer_depth_output": [0, 0, 1, 1, 1, 1],
    "transformer_depth_middle": 1, "context_dim": 64, "adm_in_channels": None, "use_linear_in_transformer": True,
    "use_temporal_resblock": False, "use_temporal_attention": False,
    "num_heads": -1, "num_head_channels": 32,
}
CLIP_CONFIG = {"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 2, "num_hidden_layers": 3,
               "projection_dim": 64}


def unet_config_for(overrides=None):
    return {**UNET_CONFIG, **(overrides or {})}


def build_model(unet_config, state_dict=None):
    """A ModelPatcher around ComfyUI's SD15 model (EPS, SD1 latent format) with the given small UNet."""
    config = comfy.supported_models.SD15(dict(unet_config))
    # SD15 forces 8 heads through unet_extra_config; the demo UNet uses 32-channel heads instead.
    config.unet_config["num_heads"] = unet_config.get("num_heads", -1)
    config.unet_config["num_head_channels"] = unet_config.get("num_head_channels", 32)
    config.set_inference_dtype(torch.float32, None)
    base = config.get_model({}, "")
    if state_dict is not None:
        base.diffusion_model.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True)
    return comfy.model_patcher.ModelPatcher(base, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def build_clip(clip_config, state_dict=None):
    """comfy.sd.CLIP with SD1's tokenizer and a small SD1 text transformer."""
    target = comfy.supported_models_base.ClipTarget(comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel)
    clip = comfy.sd.CLIP(target=target, model_options={"dtype": torch.float32,
                                                       "clip_l_model_config": dict(clip_config)})
    if state_dict is not None:
        text_model(clip).transformer.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True)
    return clip


def text_model(clip):
    """The SDClipModel inside a CLIP (its .transformer holds the weights)."""
    return clip.cond_stage_model.clip_l


def build_vae(taesd_state_dict):
    vae = comfy.sd.VAE(sd={k: v.float() for k, v in taesd_state_dict.items()})
    vae.throw_exception_if_invalid()
    return vae


def save(path, unet_state, clip_state, taesd_state, info):
    """One fp16 safetensors file; `info` (configs, world, training summary) goes into the metadata."""
    tensors = {}
    for prefix, state in (("unet.", unet_state), ("clip.", clip_state), ("", taesd_state)):
        for key, value in state.items():
            tensors[prefix + key] = value.detach().to(torch.float16).contiguous()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(tensors, str(path), metadata={"lotts_demo": json.dumps({"format": FORMAT, **info})})


def read(path):
    """(unet_state, clip_state, taesd_state, info) from a demo weights file."""
    with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
        metadata = f.metadata() or {}
        if "lotts_demo" not in metadata:
            raise ValueError(f"{path} is not a LoTTS demo weights file (no 'lotts_demo' metadata)")
        info = json.loads(metadata["lotts_demo"])
        if info.get("format") != FORMAT:
            raise ValueError(f"{path}: unsupported demo format {info.get('format')!r}, expected {FORMAT!r}")
        unet, clip, taesd = {}, {}, {}
        for key in f.keys():
            if key.startswith("unet."):
                unet[key[5:]] = f.get_tensor(key)
            elif key.startswith("clip."):
                clip[key[5:]] = f.get_tensor(key)
            else:
                taesd[key] = f.get_tensor(key)
    return unet, clip, taesd, info


def load(path=None):
    """(MODEL, CLIP, VAE, info) from a demo weights file (default: the committed one)."""
    path = Path(path) if path is not None else WEIGHTS_DIR / DEFAULT_WEIGHTS
    unet, clip, taesd, info = read(path)
    model = build_model(info["unet_config"], unet)
    return model, build_clip(info["clip_config"], clip), build_vae(taesd), info
