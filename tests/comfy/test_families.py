"""Today's families (SD3, Chroma, FLUX.2, Z-Image, Qwen-Image, LongCat-Image, HiDream, HunyuanImage 2.1, and the ten
that only ComfyUI 0.33 samples: ERNIE-Image, Krea 2, Ideogram 4, Lens, Boogu-Image, JoyImage, Mage-Flow, PixelDiT,
Anima, HiDream-O1): Search and Best-of-N with each signal the family supports through the real executor, 4-D, 5-D and
pixel-space latents, maps at the model's latent scale, the refusals' messages where the pack reads no attention, and
the token layout of the joint-attention families whose order is not FLUX.1's text-then-image."""

import json

import pytest
import torch
from graphs import STEPS, candidates_graph, search_graph, with_options

# independent of the pack's table: pixels per latent cell of each family's VAE
SCALE = {"sd3": 8, "chroma": 8, "flux2": 16, "zimage": 8, "qwen_image": 8, "longcat_image": 8, "hidream": 8,
         "hunyuan_image21": 32, "ernie": 16, "krea2": 8, "ideogram4": 16, "lens": 16, "boogu": 8, "joyimage": 8,
         "mage_flow": 16, "pixeldit": 1, "anima": 8, "hidream_o1": 1, "lumina2": 8, "auraflow": 8, "omnigen2": 8,
         "chroma_radiance": 1, "pixart": 8, "hunyuan_dit": 8}
# families whose attention the pack does not read (the others here, SD3, Chroma, FLUX.2 and Qwen-Image, have
# FLUX.1's joint text-then-image layout); Z-Image's layers are tagged by hosts from 0.33 on, not by 0.3.75
REFUSED = {"zimage": "Z-Image / Lumina 2", "ernie": "ERNIE-Image", "ideogram4": "Ideogram 4", "lens": "Lens",
           "boogu": "Boogu-Image", "pixeldit": "PixelDiT", "anima": "Anima", "hidream_o1": "HiDream-O1",
           "lumina2": "Z-Image / Lumina 2", "auraflow": "AuraFlow", "omnigen2": "OmniGen2",
           "chroma_radiance": "Chroma Radiance", "pixart": "PixArt", "hunyuan_dit": "HunyuanDiT"}
FIVE_D = ("qwen_image", "krea2", "joyimage", "anima")  # Wan 2.1 latents: (B, 16, 1, h, w)


def host_version():
    import comfyui_version

    return tuple(int(part) for part in comfyui_version.__version__.split(".")[:2])


@pytest.fixture
def refused(comfy_env):
    """Families refused attention on this host -> their display names."""
    return {k: v for k, v in REFUSED.items() if not (k in ("zimage", "lumina2") and host_version() >= (0, 33))}
SIGNALS = ("noise difference", "attention", "attention + noise difference")


@pytest.fixture(params=sorted(SCALE))
def new_family(request, comfy_env):
    if request.param not in comfy_env.test_pack.tiny_models.FAMILY_SPECS:
        pytest.skip(f"{request.param}: {comfy_env.test_pack.tiny_models.UNAVAILABLE[request.param]}")
    return request.param


@pytest.mark.parametrize("signal", SIGNALS)
def test_search_and_best_of_n_count_exactly_with_each_supported_signal(comfy_env, new_family, signal, refused):
    if signal != "noise difference" and new_family in refused:
        pytest.skip(f"{new_family}: no attention (refusal tested below)")
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    # crops index the last two axes of 4-D and 5-D latents alike
    graph = with_options(search_graph(new_family, signal=signal), crop_padding=1)
    result = comfy_env.run(graph)
    bon = json.loads(result.outputs("20")[4])
    lotts = json.loads(result.outputs("21")[4])
    assert bon["nfe"] == counts[f"bon-{new_family}"] == 3 * STEPS * 2
    assert lotts["nfe"] == counts[f"lotts-{new_family}"]
    # one capture level: the two quality prompts, and the original prompt when attention is read
    assert lotts["nfe_sampling"] == STEPS * 2 and lotts["nfe_capture"] == (2 if signal == "noise difference" else 3)
    assert lotts["nfe_refinement"] in (0, 2 * (STEPS - 2) * 2)  # nothing to re-draw only if the mask came out empty
    latent_rank = 5 if new_family in FIVE_D else 4
    for node in ("20", "21"):
        image, latent, mask = result.outputs(node)[:3]
        assert image.shape[0] == 1 and image.shape[-1] == 3
        assert mask.shape == image.shape[:3]
        assert latent["samples"].ndim == latent_rank


def test_capture_within_sampling_on_each_family(comfy_env, new_family, refused):
    """The seeds' capture taken while sampling them (4-D and 5-D latents, flow and eps models): two quality passes
    per seed and level, the independent counter agrees."""
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    signal = "noise difference" if new_family in refused else "attention"
    graph = with_options(search_graph(new_family, signal=signal), capture_mode="within sampling")
    del graph["20"], graph["30"]
    lotts = json.loads(comfy_env.run(graph).outputs("21")[4])
    assert lotts["nfe"] == counts[f"lotts-{new_family}"] and lotts["nfe_capture"] == 2
    assert lotts["nfe_sampling"] == STEPS * 2


def test_attention_signal_is_refused_before_sampling_with_the_way_out(comfy_env, new_family, refused):
    from harness import GraphError

    if new_family not in refused:
        pytest.skip(f"{new_family}: attention is read")
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    for signal in ("attention", "attention + noise difference"):
        graph = search_graph(new_family, signal=signal)
        del graph["20"], graph["30"]
        with pytest.raises(GraphError, match=f"attention is not captured for {refused[new_family]} models.*"
                                             "Use signal 'noise difference'"):
            comfy_env.run(graph)
        assert counts[f"lotts-{new_family}"] == 0  # refused before any model evaluation


def test_capture_and_defect_mask_at_the_model_scale(comfy_env, new_family, refused):
    from harness import GraphError

    graph = candidates_graph(new_family, batch=2, steps=3)
    graph["7"] = {"class_type": "LoTTSQualityAttentionCapture", "inputs": {
        "model": ["1", 0], "clip": ["1", 1], "samples": ["5", 0], "prompt": "a red circle",
        "high_quality_template": "A high-quality image of {p}.", "low_quality_template": "A low-quality image of {p}.",
        "noise_levels": "0.3", "noise_draws": 1, "seed": 0, "layers": "auto"}}
    mask_inputs = {"attention": ["7", 0], "area_ratio": 0.25, "foreground_weight": 0.3,
                   "self_attention_propagation": True}
    graph["8"] = {"class_type": "LoTTSDefectMask", "inputs": {**mask_inputs, "signal": "noise difference"}}
    graph["99"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 3]}}
    result = comfy_env.run(graph)
    latent = result.outputs("5")[0]["samples"]
    height, width = latent.shape[-2] * SCALE[new_family], latent.shape[-1] * SCALE[new_family]
    attention, heatmap = result.outputs("7")
    if new_family in refused:
        assert attention["maps"] is None and attention["layers"] == []
    else:
        assert attention["layers"] and attention["maps"]["low"]["ca"].shape == (2, *latent.shape[-2:])
    assert attention["noise_difference"].shape == (2, *latent.shape[-2:])
    assert heatmap.shape == (2, height, width, 3)
    mask, soft, scores, preview = result.outputs("8")
    assert mask.shape == soft.shape == (2, height, width) and preview.shape == (2, height, width, 3)
    assert [round(float(a), 2) for a in mask.flatten(1).mean(1)] == [0.25, 0.25]
    # the two candidates get their own maps
    assert not torch.equal(attention["noise_difference"][0], attention["noise_difference"][1])

    graph["8"]["inputs"]["signal"] = "attention"
    if new_family in refused:
        with pytest.raises(GraphError, match="needs attention maps.*use 'noise difference'"):
            comfy_env.run(graph)


def _candidates(comfy_env, family):
    graph = candidates_graph(family, batch=2, steps=4)
    graph["9"] = {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": f"t/{family}"}}
    result = comfy_env.run(graph)
    return result.outputs("5")[0], result.outputs("2")[0], result.outputs("3")[0]


def test_refine_gives_each_candidate_its_own_mask(comfy_env, new_family):
    """One mask per candidate, on 4-D, 5-D ((B, 16, 1, h, w): ComfyUI would read a 4-D mask as frames) and
    pixel-space latents alike."""
    model, _, _ = comfy_env.test_pack.tiny_models.tiny_family(new_family)
    samples, positive, negative = _candidates(comfy_env, new_family)
    latent = samples["samples"]
    assert latent.ndim == (5 if new_family in FIVE_D else 4) and (latent.ndim == 4 or latent.shape[2] == 1)
    height, width = latent.shape[-2:]
    masks = torch.zeros(2, height, width)
    masks[0, :, : width // 2] = 1.0  # candidate 0: left half; candidate 1: right half
    masks[1, :, width // 2:] = 1.0
    node = comfy_env.pack.nodes.local_denoise.LoTTSLocalRefine()
    with torch.inference_mode():
        refined, used = node.refine(model, positive, negative, samples, masks, 5, 4, 3.0, "euler", "normal", 2, 0.0,
                                    2, 0)
    out = refined["samples"]
    assert out.shape == (4, *latent.shape[1:]) and used.shape == (4, height, width)
    for row in range(4):
        candidate = row // 2
        inside = masks[candidate].bool()
        before, after = latent[candidate], out[row]
        # g = 0: outside this candidate's own mask nothing moves; inside, it is re-drawn
        torch.testing.assert_close(after[..., ~inside], before[..., ~inside], rtol=0, atol=1e-5)
        assert float((after[..., inside] - before[..., inside]).abs().max()) > 1e-2
        assert torch.equal(used[row], masks[candidate])


def test_qwen_image_masks_of_the_wrong_batch_are_named(comfy_env):
    if "qwen_image" not in comfy_env.test_pack.tiny_models.FAMILY_SPECS:
        pytest.skip("this host has no Qwen-Image model class")
    model, _, _ = comfy_env.test_pack.tiny_models.tiny_family("qwen_image")
    samples, positive, negative = _candidates(comfy_env, "qwen_image")
    node = comfy_env.pack.nodes.local_denoise.LoTTSLocalRefine()
    height, width = samples["samples"].shape[-2:]
    with torch.inference_mode(), pytest.raises(ValueError, match="mask: batch size 3 does not match samples batch "
                                                                 "size 2"):
        node.refine(model, positive, negative, samples, torch.ones(3, height, width), 5, 4, 3.0, "euler", "normal", 2,
                    0.0, 2, 0)
    with torch.inference_mode(), pytest.raises(ValueError, match=r"mask: size \(8, 16\) has a different aspect ratio"):
        node.refine(model, positive, negative, samples, torch.ones(2, 8, 16), 5, 4, 3.0, "euler", "normal", 2,
                    0.0, 2, 0)


# where each joint-attention family puts the image's tokens, read from the host's model code, independent of the pack:
# (first image token, first text token) given the call's token count, the image's and the text's
LAYOUT = {"hidream": lambda n, n_img, n_text: (0, n_img),  # image, then T5 and two Llama layers
          # HunyuanVideo's blocks: 0.3.75 builds them flipped (image, then text), 0.33 joins text (Qwen, then any
          # ByT5 glyphs) then image
          "hunyuan_image21": lambda n, n_img, n_text: (0, n_img) if host_version() < (0, 33) else (n - n_img, 0),
          "mage_flow": lambda n, n_img, n_text: (n_text, 0),  # Qwen-Image's blocks: text, image, reference images
          "krea2": lambda n, n_img, n_text: (n_text, 0),  # one stream: text, image, reference images
          "joyimage": lambda n, n_img, n_text: (0, n - n_text)}  # image, reference images, text
REFERENCES = ("mage_flow", "krea2", "joyimage")  # the positive prompt carries a reference image's latent too
PATCH = {"hidream": 2, "hunyuan_image21": 1, "mage_flow": 1, "krea2": 2, "joyimage": 2}  # latent cells per token side
BLOCKS = {"hidream": ("double_stream_blocks", "single_stream_blocks"), "hunyuan_image21": ("double_blocks", "single_blocks"),
          "mage_flow": ("transformer_blocks", None), "krea2": (None, "blocks"), "joyimage": ("double_blocks", None)}


@pytest.mark.parametrize("family", sorted(LAYOUT))
def test_joint_attention_is_read_at_the_family_token_layout(comfy_env, family):
    """The capture's cross-attention map of every block equals one computed here from the raw q, k of that call at
    the layout the host's code has (HiDream tags no block: its calls are numbered double then single; Krea 2's text
    fusion runs attention before any block, untagged, and is not read)."""
    import comfy.sample
    import nodes as comfy_nodes

    tiny_models = comfy_env.test_pack.tiny_models
    if family not in tiny_models.FAMILY_SPECS:
        pytest.skip(f"{family}: {tiny_models.UNAVAILABLE[family]}")
    pack = comfy_env.pack.nodes
    attention_maps, defect_map = comfy_env.pack.lotts_ops.attention_maps, comfy_env.pack.lotts_ops.defect_map
    model, clip, _ = tiny_models.tiny_family(family)
    (pos,) = comfy_nodes.CLIPTextEncode().encode(clip, 'a red circle saying "hi"')
    (neg,) = comfy_nodes.CLIPTextEncode().encode(clip, "")
    if family == "hunyuan_image21":  # quoted text adds ByT5 glyph tokens after the Qwen tokens (ByT5's output given)
        glyphs = torch.randn(1, 5, 1472, generator=torch.Generator().manual_seed(4))
        pos = [[pos[0][0], {**pos[0][1], "conditioning_byt5small": glyphs}]]
    scale = SCALE[family]
    frames = (1,) if family in FIVE_D else ()
    latent = torch.zeros(1, tiny_models.FAMILY_SPECS[family]["latent_channels"], *frames, 64 // scale, 64 // scale)
    if family in REFERENCES:  # an edit's reference image: its tokens follow the candidate's
        reference = torch.randn(latent.shape, generator=torch.Generator().manual_seed(5))
        pos = [[pos[0][0], {**pos[0][1], "reference_latents": [reference], "reference_latents_method": "index"}]]
    calls = []

    def logger(func, q, k, v, heads, *args, transformer_options=None, **kwargs):
        # HunyuanImage's text refiner runs attention too, before any block: not a block's call
        if family == "hidream" or transformer_options.get("block_type") is not None:
            split = (attention_maps.split_heads(q, heads), attention_maps.split_heads(k, heads)) if q.ndim == 3 \
                else (q, k)
            calls.append((*(t.clone().float() for t in split), list(transformer_options["cond_or_uncond"])))
        return func(q, k, v, heads, *args, transformer_options=transformer_options, **kwargs)

    logged = model.clone()
    logged.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = logger

    def first_text_token(conditioning):  # HiDream: T5 and two Llama streams; the others: their one text stream
        one_hot = torch.zeros(3 * 128 if family == "hidream" else conditioning[0][0].shape[1])
        one_hot[0] = 1.0
        return one_hot

    weights = {0: first_text_token(pos), 1: first_text_token(neg)}
    recorder = pack._capture.recorder_for(model, tuple(latent.shape[-2:]), weights, "all", "flux")
    with torch.inference_mode():
        comfy.sample.sample(pack._capture.patched_clone(logged, recorder), torch.randn_like(latent), 1, 4.0, "euler",
                            "normal", pos, neg, latent, seed=1, disable_pbar=True)
    unet = model.model.diffusion_model
    blocks = [name for name, attribute in zip(("double", "single"), BLOCKS[family], strict=True) if attribute
              for _ in getattr(unet, attribute)]
    # one attention call per block and cond batch (cond and uncond batch together where their text lengths agree)
    assert calls and len(calls) % len(blocks) == 0
    assert recorder.layers_seen == {(name, blocks[:i].count(name)) for i, name in enumerate(blocks)}
    n_img = latent.shape[-2] * latent.shape[-1] // PATCH[family] ** 2
    sums, counts = {0: 0, 1: 0}, {0: 0, 1: 0}
    text_lengths = {0: weights[0].shape[0], 1: weights[1].shape[0]}
    for q, k, cond_or_uncond in calls:
        n_text = text_lengths[cond_or_uncond[0]]
        if family in REFERENCES and cond_or_uncond == [0]:
            assert q.shape[2] == n_text + 2 * n_img  # the reference's tokens are in the call
        img_start, text_start = LAYOUT[family](q.shape[2], n_img, n_text)
        key_weights = torch.zeros(q.shape[0], q.shape[2])
        key_weights[:, text_start] = 1.0
        ca = attention_maps.attention_to_tokens(q[:, :, img_start:img_start + n_img], k, key_weights)
        side = int(n_img ** 0.5)
        maps = defect_map.resize_maps(ca.reshape(-1, side, side), *latent.shape[-2:])
        for row, index in enumerate(cond_or_uncond):
            sums[index], counts[index] = sums[index] + maps[row:row + 1], counts[index] + 1
    for index in (0, 1):  # the sampler's positive and negative prompt
        torch.testing.assert_close(recorder.averaged(index)[:, 0], sums[index] / counts[index], rtol=1e-4, atol=1e-6)
    if family == "hidream":  # an edit model's image condition widens the image: skipped with a warning, not misread
        edit = [[pos[0][0], {**pos[0][1], "concat_latent_image": torch.randn_like(latent)}]]
        recorder = pack._capture.recorder_for(model, tuple(latent.shape[-2:]), weights, "all", "flux")
        with torch.inference_mode():
            comfy.sample.sample(pack._capture.patched_clone(model, recorder), torch.randn_like(latent), 1, 4.0,
                                "euler", "normal", edit, neg, latent, seed=1, disable_pbar=True)
        assert recorder.averaged(0) is None and recorder.averaged(1) is not None and recorder.skipped_layers
