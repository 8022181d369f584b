"""Reward-model verifiers (CLIPScore, PickScore, HPSv2, ImageReward, LAION aesthetic): the scoring math.

Everything here works on already-built torch modules; building them from files is in ``hf_models.py``
(transformers, imported lazily) and model management is the caller's business: each verifier takes an
optional ``prepare()`` callable that is invoked before every scoring call and may move the model to its
compute device (the ComfyUI nodes pass one that calls ``comfy.model_management.load_models_gpu``).

Score definitions (higher is better for all):

* CLIPScore: ``100 * cos(image_embed, text_embed)`` (the torchmetrics scale; Hessel et al. use
  ``2.5 * max(cos, 0)``: same order wherever cos > 0, and here negative cosines stay ordered too).
* PickScore: ``logit_scale.exp() * cos`` (Kirstain et al. reference code; about 18-23 for real images).
* HPSv2 / v2.1: ``cos`` (Wu et al. reference code, ``image_features @ text_features.T``; about 0.2-0.35).
* ImageReward: ``(mlp(BLIP text-image CLS feature) - 0.16717362830052426) / 1.0333394966054072``.
* LAION aesthetic (improved-aesthetic-predictor): ``mlp(l2-normalized CLIP ViT-L/14 image embedding)``,
  about 1-10.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Verifier, chunks

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_REWARD_MEAN = 0.16717362830052426
IMAGE_REWARD_STD = 1.0333394966054072


def clip_preprocess(
    images: torch.Tensor,
    size: int = 224,
    mode: str = "crop",
    mean: Sequence[float] = OPENAI_CLIP_MEAN,
    std: Sequence[float] = OPENAI_CLIP_STD,
    device=None,
    dtype=torch.float32,
) -> torch.Tensor:
    """ComfyUI IMAGE (B, H, W, 3) in [0, 1] -> normalized pixel values (B, 3, size, size).

    ``mode="crop"``: shorter side to ``size`` (bicubic, antialiased; the longer side truncated like
    torchvision/HF), centre crop at ``(excess) // 2``: HF ``CLIPImageProcessor`` (PickScore, CLIPScore) and
    torchvision ``Resize+CenterCrop`` (ImageReward, OpenAI CLIP; torchvision rounds an odd excess's half-pixel
    offset to even, HF floors it). ``mode="pad"``: longer side to ``size`` and centred black padding, open_clip's
    ``ResizeMaxSize`` used by HPSv2's evaluation transform. Values are rounded to the 8-bit grid like a PIL
    round trip. The input is never modified.
    """
    x = images[..., :3].movedim(-1, 1).to(device=device, dtype=torch.float32)
    h, w = x.shape[-2:]
    if mode == "crop":
        if (h, w) != (size, size):
            # torchvision Resize(size) / HF CLIPImageProcessor: short side = size, long side truncated
            new = (size, max(size, int(size * w / h))) if h <= w else (max(size, int(size * h / w)), size)
            x = F.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False)
            top, left = (new[0] - size) // 2, (new[1] - size) // 2
            x = x[:, :, top : top + size, left : left + size]
    elif mode == "pad":
        scale = size / max(h, w)
        if scale != 1.0:
            new = (max(1, round(h * scale)), max(1, round(w * scale)))
            x = F.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False)
            pad_h, pad_w = size - new[0], size - new[1]
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=0.0)
    else:
        raise ValueError(f"unknown preprocess mode {mode!r}")
    x = torch.clamp(x * 255.0, 0, 255).round() / 255.0
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return ((x - m) / s).to(dtype)


class ManagedModule(nn.Module):
    """A plain container around a (transformers) module so ComfyUI's ModelPatcher can manage it.

    ModelPatcher assigns ``model.device``, which is a read-only property on transformers models; the
    container carries that attribute instead and holds the real modules as children.
    """

    def __init__(self, **modules: nn.Module):
        super().__init__()
        for key, module in modules.items():
            self.add_module(key, module)
        self.device = None
        self.eval()

    def param_device_dtype(self):
        p = next(self.parameters())
        return p.device, p.dtype


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class _ManagedVerifier(Verifier):
    def __init__(self, container: ManagedModule, prepare: Callable[[], object] | None, batch_size: int):
        self.container = container
        self.prepare = prepare
        self.batch_size = max(1, int(batch_size))

    def _ready(self):
        if self.prepare is not None:
            self.prepare()
        self.container.eval()
        return self.container.param_device_dtype()


class CLIPSimilarityVerifier(_ManagedVerifier):
    """A CLIP dual encoder (transformers ``CLIPModel`` in ``container.clip``) scoring image-prompt pairs.

    ``kind`` selects the published score: "clipscore" (100 * cos), "pickscore" (logit_scale.exp() * cos),
    "hpsv2" (cos). ``tokenize(list[str]) -> dict(input_ids, attention_mask)``.
    """

    uses_prompt = True
    KINDS = ("clipscore", "pickscore", "hpsv2")

    def __init__(self, name: str, container: ManagedModule, tokenize: Callable, kind: str = "clipscore",
                 image_size: int = 224, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD, resize_mode: str = "crop",
                 batch_size: int = 8, prepare: Callable[[], object] | None = None):
        super().__init__(container, prepare, batch_size)
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.name, self.kind, self.tokenize = name, kind, tokenize
        self.image_size, self.mean, self.std, self.resize_mode = int(image_size), tuple(mean), tuple(std), resize_mode

    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        device, dtype = self._ready()
        clip = self.container.clip
        out = []
        for sl in chunks(images.shape[0], self.batch_size):
            px = clip_preprocess(images[sl], self.image_size, self.resize_mode, self.mean, self.std, device, dtype)
            pooled = clip.vision_model(pixel_values=px).pooler_output
            out.append(_unit(clip.visual_projection(pooled).float()))
        return torch.cat(out)

    def text_embeds(self, prompts: list[str]) -> torch.Tensor:
        device, _ = self._ready()
        clip = self.container.clip
        unique = sorted(set(prompts))
        out = []
        for sl in chunks(len(unique), self.batch_size):
            tok = self.tokenize(unique[sl])
            pooled = clip.text_model(input_ids=tok["input_ids"].to(device),
                                     attention_mask=tok["attention_mask"].to(device)).pooler_output
            out.append(_unit(clip.text_projection(pooled).float()))
        table = dict(zip(unique, torch.cat(out), strict=True))
        return torch.stack([table[p] for p in prompts])

    def _score(self, images, prompts):
        cos = (self.image_embeds(images) * self.text_embeds(prompts)).sum(-1)
        if self.kind == "clipscore":
            return 100.0 * cos
        if self.kind == "pickscore":
            return self.container.clip.logit_scale.detach().float().exp().cpu() * cos.cpu()
        return cos


def mlp_head_from_state_dict(sd: dict, prefix: str = "layers.") -> nn.Sequential:
    """Rebuild an ``nn.Sequential`` of Linear layers (Dropout/identity at the missing indices) from the
    keys ``{prefix}{i}.weight`` / ``.bias``: the LAION improved-aesthetic-predictor and ImageReward heads
    (768->1024->128->64->16->1 with dropouts at 1, 3, 5; no activations). A bare ``weight``/``bias`` pair
    (the v1 linear aesthetic head) gives a single Linear."""
    if prefix not in ("",) and not any(k.startswith(prefix) for k in sd) and "weight" in sd:
        prefix = ""
    if prefix == "":
        w = sd["weight"]
        lin = nn.Linear(w.shape[1], w.shape[0], bias="bias" in sd)
        lin.load_state_dict({k: sd[k] for k in ("weight", "bias") if k in sd})
        return nn.Sequential(lin)
    idx = sorted({int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix) and k.endswith(".weight")})
    if not idx:
        raise ValueError(f"no '{prefix}N.weight' keys: not an MLP head state dict (keys: {sorted(sd)[:8]})")
    layers: list[nn.Module] = []
    for i in range(idx[-1] + 1):
        if i in idx:
            w = sd[f"{prefix}{i}.weight"]
            if w.ndim != 2:
                raise ValueError(f"{prefix}{i}.weight is not a Linear weight (shape {tuple(w.shape)})")
            lin = nn.Linear(w.shape[1], w.shape[0], bias=f"{prefix}{i}.bias" in sd)
            lin.load_state_dict({k: sd[f"{prefix}{i}.{k}"] for k in ("weight", "bias") if f"{prefix}{i}.{k}" in sd})
            layers.append(lin)
        else:
            layers.append(nn.Dropout(0.0))  # a Dropout in the original; identity at inference
    head = nn.Sequential(*layers)
    dims = [m.in_features for m in head if isinstance(m, nn.Linear)]
    outs = [m.out_features for m in head if isinstance(m, nn.Linear)]
    if any(o != i for o, i in zip(outs[:-1], dims[1:], strict=True)) or outs[-1] != 1:
        raise ValueError(f"MLP head layers do not chain to one output: {list(zip(dims, outs, strict=True))}")
    return head


def head_input_dim(head: nn.Sequential) -> int:
    return next(m for m in head if isinstance(m, nn.Linear)).in_features


class AestheticVerifier(_ManagedVerifier):
    """LAION aesthetic predictor: an MLP head (``container.head``) on l2-normalized CLIP image embeddings.

    ``embed_images(images) -> (B, D)`` supplies the CLIP ViT-L/14 projected image embedding (for example
    ComfyUI's CLIP_VISION ``encode_image(...)["image_embeds"]``). Ignores prompts.
    """

    uses_prompt = False

    def __init__(self, name: str, container: ManagedModule, embed_images: Callable[[torch.Tensor], torch.Tensor],
                 batch_size: int = 8, prepare: Callable[[], object] | None = None):
        super().__init__(container, prepare, batch_size)
        self.name, self.embed_images = name, embed_images

    def _score(self, images, prompts):
        out = []
        for sl in chunks(images.shape[0], self.batch_size):
            emb = self.embed_images(images[sl])
            device, dtype = self._ready()
            emb = _unit(emb.to(device=device, dtype=torch.float32)).to(dtype)
            head = self.container.head
            if emb.shape[-1] != head_input_dim(head):
                raise ValueError(f"the aesthetic head expects {head_input_dim(head)}-d CLIP image embeddings, the "
                                 f"CLIP vision model gives {emb.shape[-1]}-d (the LAION head needs CLIP ViT-L/14)")
            out.append(head(emb).float().reshape(-1))
        return torch.cat(out)


class ImageRewardModule(nn.Module):
    """ImageReward (Xu et al. 2023): BLIP ViT image encoder, BLIP text encoder cross-attending to the image
    tokens, MLP head on the [CLS] feature, fixed standardization."""

    def __init__(self, vision: nn.Module, text: nn.Module, mlp: nn.Module,
                 mean: float = IMAGE_REWARD_MEAN, std: float = IMAGE_REWARD_STD):
        super().__init__()
        self.vision, self.text, self.mlp = vision, text, mlp
        self.reward_mean, self.reward_std = float(mean), float(std)

    def forward(self, pixel_values, input_ids, attention_mask):
        image_embeds = self.vision(pixel_values=pixel_values).last_hidden_state
        image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        out = self.text(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image_embeds,
                        encoder_attention_mask=image_atts, return_dict=True)
        reward = self.mlp(out.last_hidden_state[:, 0, :].float().to(next(self.mlp.parameters()).dtype))
        return (reward.float().reshape(-1) - self.reward_mean) / self.reward_std


class ImageRewardVerifier(_ManagedVerifier):
    uses_prompt = True

    def __init__(self, name: str, container: ManagedModule, tokenize: Callable, image_size: int = 224,
                 batch_size: int = 8, prepare: Callable[[], object] | None = None):
        super().__init__(container, prepare, batch_size)
        self.name, self.tokenize, self.image_size = name, tokenize, int(image_size)

    def _score(self, images, prompts):
        device, dtype = self._ready()
        out = []
        for sl in chunks(images.shape[0], self.batch_size):
            px = clip_preprocess(images[sl], self.image_size, "crop", OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, device, dtype)
            tok = self.tokenize(prompts[sl])
            out.append(self.container.reward(px, tok["input_ids"].to(device), tok["attention_mask"].to(device)))
        return torch.cat(out)
