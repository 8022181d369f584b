"""Build reward models from the files users download, with transformers classes (imported lazily).

Nothing here downloads: every path is a local file, tokenizers load with ``local_files_only=True``.
Weights are read with safetensors or ``torch.load(weights_only=True)``.

Accepted formats
* CLIP / PickScore / CLIPScore: a transformers ``CLIPModel`` checkpoint (``model.safetensors`` or
  ``pytorch_model.bin``, sharded or not) with its ``config.json`` beside it, or a single file without config
  (architecture inferred from tensor shapes), or an open_clip state dict (keys ``visual.*``,
  ``transformer.resblocks.*``; converted to the transformers layout).
* HPSv2 / v2.1: ``HPS_v2_compressed.pt`` / ``HPS_v2.1_compressed.pt`` (``{"state_dict": open_clip ViT-H-14}``).
  Head counts and activation of open_clip checkpoints are inferred (ViT-H-14: 16/16 heads, GELU) unless an
  open_clip model config (``<name>.json`` or ``open_clip_config.json``, e.g. open_clip's ``ViT-H-14.json``)
  sits beside the file.
* ImageReward: ``ImageReward.pt`` (BLIP ViT-L + BLIP text encoder + MLP) with ``med_config.json`` (optional;
  the released values are the default) and the ``bert-base-uncased`` ``vocab.txt`` beside it.
* LAION aesthetic: the improved-aesthetic-predictor head (``layers.N.weight``), ``.pth``/``.safetensors``.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path

import torch

from .reward_models import IMAGE_REWARD_MEAN, IMAGE_REWARD_STD, ImageRewardModule, mlp_head_from_state_dict


class VerifierFileError(ValueError):
    """A model file is missing, incomplete or of the wrong kind; the message says which and where."""


# --------------------------------------------------------------------------------------------- files

def load_state_dict(path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors / .pt / .pth / .bin / .ckpt file (all shards if the name is a shard).

    Unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` and strips a DataParallel ``module.`` prefix."""
    path = Path(path)
    shards = _shards(path)
    sd: dict[str, torch.Tensor] = {}
    for shard in shards:
        sd.update(_load_one(shard))
    for key in ("state_dict", "model", "module"):
        if key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    for k in bad:  # e.g. bookkeeping scalars next to the tensors
        sd.pop(k)
    if not sd:
        raise VerifierFileError(f"{path} holds no tensors")
    return sd


def _shards(path: Path) -> list[Path]:
    m = re.match(r"^(.*)-(\d{5})-of-(\d{5})(\.[A-Za-z0-9]+)$", path.name)
    if not m:
        return [path]
    prefix, total, ext = m.group(1), int(m.group(3)), m.group(4)
    shards = [path.with_name(f"{prefix}-{i:05d}-of-{total:05d}{ext}") for i in range(1, total + 1)]
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise VerifierFileError(f"sharded checkpoint {path.name}: missing shards {missing} in {path.parent}")
    return shards


def _load_one(path: Path) -> dict:
    if not path.is_file():
        raise VerifierFileError(f"model file not found: {path}")
    if path.suffix in (".safetensors", ".sft"):
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles with code in them are refused on purpose
        raise VerifierFileError(f"{path.name} cannot be read safely (torch.load weights_only=True failed: {exc}); "
                                "convert it to .safetensors") from exc
    if not isinstance(obj, dict):
        raise VerifierFileError(f"{path.name} does not contain a state dict (got {type(obj).__name__})")
    return obj


def sibling(path, *names) -> Path | None:
    """The first of ``names`` that exists next to ``path`` (a file) or inside it (a folder)."""
    base = Path(path)
    folder = base if base.is_dir() else base.parent
    for name in names:
        candidate = folder / name
        if candidate.exists():
            return candidate
    return None


@contextlib.contextmanager
def _no_init():
    """Skip transformers' random weight init (everything is overwritten by the checkpoint)."""
    ctx = None
    try:
        from transformers.initialization import no_init_weights as ctx  # transformers >= 5
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights as ctx  # transformers 4.x
        except ImportError:
            ctx = None
    if ctx is None:
        yield
    else:
        with ctx():
            yield


def _load_strict(model, sd: dict, what: str, path, ignore=("position_ids",)):
    result = model.load_state_dict(sd, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(ignore)]
    if missing:
        raise VerifierFileError(f"{Path(path).name} is not a complete {what} checkpoint: {len(missing)} weights "
                                f"missing, e.g. {missing[:5]}")
    return [k for k in result.unexpected_keys if not k.endswith(ignore)]


# --------------------------------------------------------------------------------------------- CLIP

def is_open_clip_state_dict(sd) -> bool:
    return "visual.conv1.weight" in sd or "transformer.resblocks.0.attn.in_proj_weight" in sd


def _convert_resblocks(sd, src_prefix, dst_prefix, out):
    pattern = re.compile(re.escape(src_prefix) + r"(\d+)\.(.+)$")
    for key, value in sd.items():
        m = pattern.match(key)
        if not m:
            continue
        i, rest = m.group(1), m.group(2)
        layer = f"{dst_prefix}{i}."
        if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
            kind = "weight" if rest.endswith("weight") else "bias"
            q, k, v = value.chunk(3, dim=0)
            out[f"{layer}self_attn.q_proj.{kind}"] = q
            out[f"{layer}self_attn.k_proj.{kind}"] = k
            out[f"{layer}self_attn.v_proj.{kind}"] = v
            continue
        rest = (rest.replace("attn.out_proj", "self_attn.out_proj").replace("ln_1", "layer_norm1")
                .replace("ln_2", "layer_norm2").replace("mlp.c_fc", "mlp.fc1").replace("mlp.c_proj", "mlp.fc2"))
        out[layer + rest] = value


def open_clip_to_hf(sd: dict) -> dict:
    """open_clip ``CLIP`` state dict (OpenAI-style ViT + text transformer) -> transformers ``CLIPModel`` keys."""
    out = {}
    simple = {
        "visual.class_embedding": "vision_model.embeddings.class_embedding",
        "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
        "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
        "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
        "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
        "visual.ln_post.weight": "vision_model.post_layernorm.weight",
        "visual.ln_post.bias": "vision_model.post_layernorm.bias",
        "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
        "positional_embedding": "text_model.embeddings.position_embedding.weight",
        "ln_final.weight": "text_model.final_layer_norm.weight",
        "ln_final.bias": "text_model.final_layer_norm.bias",
        "logit_scale": "logit_scale",
    }
    for src, dst in simple.items():
        if src in sd:
            out[dst] = sd[src]
    if "visual.proj" in sd:
        out["visual_projection.weight"] = sd["visual.proj"].t().contiguous()
    if "text_projection" in sd:
        tp = sd["text_projection"]
        out["text_projection.weight"] = tp.t().contiguous() if tp.ndim == 2 else tp
    _convert_resblocks(sd, "visual.transformer.resblocks.", "vision_model.encoder.layers.", out)
    _convert_resblocks(sd, "transformer.resblocks.", "text_model.encoder.layers.", out)
    unsupported = [k for k in sd if k.startswith(("visual.attn_pool", "visual.trunk", "text.transformer", "visual.head"))]
    if unsupported:
        raise VerifierFileError(f"open_clip model variant not supported (keys like {unsupported[:3]}): only "
                                "ViT image towers with the built-in text transformer convert to transformers CLIP")
    return out


def _count_layers(sd, prefix):
    ids = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    return max(ids) + 1 if ids else 0


def _vision_heads(width: int) -> int:
    # open_clip/OpenAI ViTs: head width 64 up to ViT-L (1024); ViT-H/g/bigG use 16 heads (head width 80/88/104)
    return max(1, width // 64) if width <= 1024 else 16


def apply_open_clip_model_config(config: dict, oc: dict) -> dict:
    """Override inferred head counts / activation with an open_clip model config (``ViT-H-14.json`` style:
    ``{"vision_cfg": {"width", "head_width"}, "text_cfg": {"heads"}, "quick_gelu"}``)."""
    vision, text = oc.get("vision_cfg", {}), oc.get("text_cfg", {})
    if "width" in vision:
        config["vision_config"]["num_attention_heads"] = int(vision["width"]) // int(vision.get("head_width", 64))
    if "heads" in text:
        config["text_config"]["num_attention_heads"] = int(text["heads"])
    if "quick_gelu" in oc:
        act = "quick_gelu" if oc["quick_gelu"] else "gelu"
        config["vision_config"]["hidden_act"] = config["text_config"]["hidden_act"] = act
    return config


def infer_clip_config(sd: dict, hidden_act: str | None = None) -> dict:
    """A ``CLIPConfig`` dict from the tensor shapes of a transformers-layout CLIP state dict."""
    try:
        patch = sd["vision_model.embeddings.patch_embedding.weight"]
        vpos = sd["vision_model.embeddings.position_embedding.weight"]
        tok = sd["text_model.embeddings.token_embedding.weight"]
        tpos = sd["text_model.embeddings.position_embedding.weight"]
        vproj = sd["visual_projection.weight"]
    except KeyError as exc:
        raise VerifierFileError(f"not a CLIP checkpoint: missing {exc.args[0]}") from exc
    v_width, p = patch.shape[0], patch.shape[-1]
    grid = int(round(math.sqrt(vpos.shape[0] - 1)))
    t_width = tok.shape[1]
    if hidden_act is None:
        # OpenAI's own CLIPs (ViT-B/32, B/16, L/14: vision/text widths 768/512 or 1024/768) use QuickGELU;
        # LAION/open_clip and the PickScore/HPS fine-tunes (ViT-H-14) use GELU. A config.json overrides this.
        hidden_act = "quick_gelu" if (v_width, t_width) in ((768, 512), (1024, 768)) else "gelu"
    return {
        "projection_dim": vproj.shape[0],
        "text_config": {
            "vocab_size": tok.shape[0], "hidden_size": t_width, "max_position_embeddings": tpos.shape[0],
            "intermediate_size": sd["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
            "num_hidden_layers": _count_layers(sd, "text_model.encoder.layers."),
            "num_attention_heads": max(1, t_width // 64), "hidden_act": hidden_act,
            "projection_dim": vproj.shape[0], "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407,
        },
        "vision_config": {
            "hidden_size": v_width, "patch_size": p, "image_size": grid * p,
            "intermediate_size": sd["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
            "num_hidden_layers": _count_layers(sd, "vision_model.encoder.layers."),
            "num_attention_heads": _vision_heads(v_width), "hidden_act": hidden_act,
            "projection_dim": vproj.shape[0],
        },
    }


def build_clip_model(weights_path, config_path=None, hidden_act: str | None = None):
    """A transformers ``CLIPModel`` (eval, float32, CPU) from a checkpoint file. Returns (model, info)."""
    from transformers import CLIPConfig, CLIPModel

    weights_path = Path(weights_path)
    sd = load_state_dict(weights_path)
    source = "transformers"
    if is_open_clip_state_dict(sd):
        sd, source = open_clip_to_hf(sd), "open_clip"
    if config_path is None and source == "transformers":
        config_path = sibling(weights_path, "config.json")
    if config_path is None and source == "open_clip":
        config_path = sibling(weights_path, weights_path.stem + ".json", "open_clip_config.json")
    if config_path is not None and source == "open_clip":
        config = CLIPConfig(**apply_open_clip_model_config(infer_clip_config(sd, hidden_act),
                                                           json.loads(Path(config_path).read_text())))
    elif config_path is not None:
        cfg = json.loads(Path(config_path).read_text())
        if cfg.get("model_type") not in (None, "clip"):
            raise VerifierFileError(f"{config_path} describes a '{cfg.get('model_type')}' model, not CLIP")
        config = CLIPConfig.from_dict(cfg)
    else:
        config = CLIPConfig(**infer_clip_config(sd, hidden_act))
    with _no_init():
        model = CLIPModel(config)
    if "logit_scale" not in sd:
        sd["logit_scale"] = torch.tensor(float(config.logit_scale_init_value))
    _load_strict(model, sd, "CLIP", weights_path)
    model = model.float().eval()
    return model, {"source": source, "config": "config.json" if config_path else "inferred from shapes"}


def clip_tokenizer(search_dirs, max_length: int = 77):
    """A ``tokenize(list[str]) -> {input_ids, attention_mask}`` from the first folder holding CLIP BPE files."""
    from transformers import CLIPTokenizer

    for d in search_dirs:
        if d is None:
            continue
        d = Path(d)
        if (d / "vocab.json").is_file() and (d / "merges.txt").is_file() or (d / "tokenizer.json").is_file():
            tok = CLIPTokenizer.from_pretrained(str(d), local_files_only=True)
            return _wrap_tokenizer(tok, max_length), str(d)
    raise VerifierFileError(f"no CLIP tokenizer files (vocab.json + merges.txt) in {[str(d) for d in search_dirs if d]}")


def _wrap_tokenizer(tok, max_length):
    def tokenize(prompts):
        enc = tok(list(prompts), padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    tokenize.tokenizer = tok
    return tokenize


def clip_image_settings(model, weights_path) -> dict:
    """Preprocessing for a CLIP checkpoint: image size from the model, mean/std from a
    ``preprocessor_config.json`` beside it when present, else OpenAI's (which LAION and PickScore share)."""
    from .reward_models import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    size = model.config.vision_config.image_size
    mean, std = OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    pre = sibling(weights_path, "preprocessor_config.json")
    if pre is not None:
        cfg = json.loads(pre.read_text())
        mean = tuple(cfg.get("image_mean", mean))
        std = tuple(cfg.get("image_std", std))
    return {"image_size": int(size if isinstance(size, int) else size[0]), "mean": mean, "std": std}


# --------------------------------------------------------------------------------------------- ImageReward

#: ImageReward's ``med_config.json`` (BLIP's BERT-base with cross-attention); encoder_width is the ViT width.
IMAGE_REWARD_MED_CONFIG = {
    "hidden_act": "gelu", "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
    "vocab_size": 30524, "encoder_width": 768, "add_cross_attention": True,
}


def blip_to_hf(sd: dict) -> tuple[dict, dict, dict]:
    """Split an ImageReward state dict into transformers ``BlipVisionModel``, ``BlipTextModel`` and MLP-head
    state dicts (the mapping of transformers' own BLIP conversion script)."""
    vision, text, mlp = {}, {}, {}
    for key, value in sd.items():
        if key.startswith("blip.visual_encoder."):
            k = key[len("blip.visual_encoder."):]
            k = {"cls_token": "embeddings.class_embedding", "pos_embed": "embeddings.position_embedding",
                 "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
                 "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
                 "norm.weight": "post_layernorm.weight", "norm.bias": "post_layernorm.bias"}.get(k, k)
            if k.startswith("blocks."):
                k = ("encoder.layers." + k[len("blocks."):]).replace(".norm1.", ".layer_norm1.")
                k = k.replace(".norm2.", ".layer_norm2.").replace(".attn.qkv.", ".self_attn.qkv.")
                k = k.replace(".attn.proj.", ".self_attn.projection.")
            vision[k] = value
        elif key.startswith("blip.text_encoder."):
            text[key[len("blip.text_encoder."):]] = value
        elif key.startswith("mlp."):
            mlp[key[len("mlp."):]] = value
    if not vision or not text or not mlp:
        raise VerifierFileError("not an ImageReward checkpoint: expected keys blip.visual_encoder.*, "
                                "blip.text_encoder.* and mlp.layers.*")
    return vision, text, mlp


def build_image_reward(weights_path, med_config_path=None):
    """``ImageRewardModule`` (eval, float32) from ``ImageReward.pt``. Returns (module, info)."""
    from transformers import BlipTextConfig, BlipVisionConfig
    from transformers.models.blip.modeling_blip import BlipVisionModel
    from transformers.models.blip.modeling_blip_text import BlipTextModel

    weights_path = Path(weights_path)
    vision_sd, text_sd, mlp_sd = blip_to_hf(load_state_dict(weights_path))
    med = dict(IMAGE_REWARD_MED_CONFIG)
    if med_config_path is None:
        med_config_path = sibling(weights_path, "med_config.json")
    if med_config_path is not None:
        med.update(json.loads(Path(med_config_path).read_text()))
    patch = vision_sd["embeddings.patch_embedding.weight"]
    width, p = patch.shape[0], patch.shape[-1]
    n_pos = vision_sd["embeddings.position_embedding"].shape[1]
    vcfg = BlipVisionConfig(
        hidden_size=width, intermediate_size=vision_sd["encoder.layers.0.mlp.fc1.weight"].shape[0],
        num_hidden_layers=_count_layers(vision_sd, "encoder.layers."), num_attention_heads=max(1, width // 64),
        image_size=int(round(math.sqrt(n_pos - 1))) * p, patch_size=p, hidden_act="gelu", layer_norm_eps=1e-6)
    word = text_sd["embeddings.word_embeddings.weight"]
    tcfg = BlipTextConfig(
        vocab_size=word.shape[0], hidden_size=word.shape[1], encoder_hidden_size=width,
        intermediate_size=text_sd["encoder.layer.0.intermediate.dense.weight"].shape[0],
        num_hidden_layers=_count_layers(text_sd, "encoder.layer."),
        num_attention_heads=int(med["num_attention_heads"]) if word.shape[1] == med["hidden_size"] else max(1, word.shape[1] // 64),
        max_position_embeddings=text_sd["embeddings.position_embeddings.weight"].shape[0],
        hidden_act=med["hidden_act"], layer_norm_eps=float(med["layer_norm_eps"]), pad_token_id=int(med["pad_token_id"]),
        is_decoder=True)  # is_decoder=True builds the cross-attention layers; forward runs bidirectionally
    with _no_init():
        vision = BlipVisionModel(vcfg)
        text = BlipTextModel(tcfg, add_pooling_layer=False)
    _load_strict(vision, vision_sd, "ImageReward (BLIP vision)", weights_path)
    _load_strict(text, text_sd, "ImageReward (BLIP text)", weights_path)
    module = ImageRewardModule(vision, text, mlp_head_from_state_dict(mlp_sd), IMAGE_REWARD_MEAN, IMAGE_REWARD_STD)
    module = module.float().eval()
    return module, {"image_size": vcfg.image_size, "med_config": str(med_config_path) if med_config_path else "built-in"}


def bert_tokenizer(search_dirs, max_length: int = 35):
    """ImageReward's tokenizer: ``bert-base-uncased`` + ``[DEC]`` bos and ``[ENC]`` special tokens, padded
    to 35 tokens. Reads ``vocab.txt`` (or tokenizer.json) from the first folder that has it."""
    from transformers import BertTokenizer

    for d in search_dirs:
        if d is None:
            continue
        d = Path(d)
        if (d / "vocab.txt").is_file() or (d / "tokenizer.json").is_file():
            tok = BertTokenizer.from_pretrained(str(d), local_files_only=True)
            tok.add_special_tokens({"bos_token": "[DEC]"})
            tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
            return _wrap_tokenizer(tok, max_length), str(d)
    raise VerifierFileError("ImageReward needs the bert-base-uncased tokenizer: put its vocab.txt next to "
                            f"ImageReward.pt (searched {[str(d) for d in search_dirs if d]})")


# --------------------------------------------------------------------------------------------- aesthetic

def build_aesthetic_head(path):
    sd = load_state_dict(path)
    try:
        return mlp_head_from_state_dict(sd).float().eval()
    except (KeyError, ValueError) as exc:
        raise VerifierFileError(f"{Path(path).name} is not a LAION aesthetic head: {exc}") from exc
