"""Forward-compatibility guards (shared/research/compat_upstream.md, fixes 2-8), on the 0.3.75 host."""

import copy
import types

import pytest
import torch

CAPTURE = {"high_quality_template": "A high-quality image of {p}.", "low_quality_template": "A low-quality image of {p}.",
           "noise_levels": "0.3", "noise_draws": 1, "seed": 5, "layers": "all"}


def candidates(model):
    channels = model.model.latent_format.latent_channels
    return {"samples": torch.randn(1, channels, 8, 8, generator=torch.Generator().manual_seed(3))}


def run_capture(comfy_env, model, clip, **overrides):
    node = comfy_env.pack.nodes.attention_capture.LoTTSQualityAttentionCapture()
    with torch.inference_mode():
        return node.capture(model, clip, candidates(model), "a red circle", **{**CAPTURE, **overrides})


def test_another_nodes_per_index_patch_still_runs_and_capture_still_records(comfy_env, tiny):
    model, clip, _ = tiny("sd15")
    blocks = comfy_env.pack.nodes._model_family.unet_transformer_blocks(model)
    calls = []

    def other_attn2(q, k, v, extra_options):  # an IPAdapter-style per-index replacement
        calls.append(extra_options["block"])
        import comfy.ldm.modules.attention as attention

        return attention.optimized_attention(q, k, v, extra_options["n_heads"])

    other = model.clone()
    for name, block_id in blocks:
        other.set_model_attn2_replace(other_attn2, name, block_id, 0)
    attention, _ = run_capture(comfy_env, other, clip)
    assert calls, "the other node's per-index patch did not run"
    assert len(attention["layers"]) == len(blocks), attention["layers"]  # ours ran at every block too
    assert attention["maps"]["low"]["ca"].abs().sum() > 0
    # and the input model keeps exactly the other node's patches
    keys = other.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert all(keys[(n, i, 0)] is other_attn2 for n, i in blocks) and len(keys) == len(blocks)


def test_another_nodes_attention_override_still_applies_in_patched_layers(comfy_env, tiny):
    model, clip, _ = tiny("sd15")
    seen = []

    def override(func, *args, **kwargs):  # e.g. a SageAttention node's override
        seen.append(args[0].shape)
        return func(*args, **kwargs)

    other = model.clone()
    other.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = override
    run_capture(comfy_env, other, clip)
    n_blocks = len(comfy_env.pack.nodes._model_family.unet_transformer_blocks(model))
    assert len(seen) >= 2 * n_blocks  # attn1 and attn2 of every block (all patched by the capture)


def test_sd3_blocks_are_tagged_through_another_nodes_block_patch(comfy_env):
    """SD3's MMDiT tags no block in its attention calls; the capture tags them with a "dit" double_block patch that
    chains to one already there (a block-swap or caching node's), and leaves the input model's patch alone."""
    if "sd3" not in comfy_env.test_pack.tiny_models.FAMILY_SPECS:
        pytest.skip("this host has no SD3 model class")
    model, clip, _ = comfy_env.test_pack.tiny_models.tiny_family("sd3")
    calls = []

    def other_block(args, extra):
        calls.append(args["transformer_options"].get("block_index"))
        return extra["original_block"](args)

    other = model.clone()
    depth = len(other.model.diffusion_model.joint_blocks)
    for index in range(depth):
        other.set_model_patch_replace(other_block, "dit", "double_block", index)
    samples = {"samples": torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(3))}
    node = comfy_env.pack.nodes.attention_capture.LoTTSQualityAttentionCapture()
    with torch.inference_mode():
        attention, _ = node.capture(other, clip, samples, "a red circle", **CAPTURE)
    assert attention["layers"] == sorted(str(("double", i)) for i in range(depth))
    assert calls and set(calls) == set(range(depth))  # the other patch ran, and saw our tags
    assert attention["maps"]["low"]["ca"].abs().sum() > 0
    replace = other.model_options["transformer_options"]["patches_replace"]["dit"]
    assert all(replace[("double_block", i)] is other_block for i in range(depth))


@pytest.mark.parametrize("base_class, name", [("ChromaRadiance", "Chroma Radiance")])
def test_flux_relatives_without_flux_layout_take_the_noise_difference_path(comfy_env, tiny, base_class, name):
    """A Chroma Radiance base around FLUX's network class is not read as FLUX.1 (its image tokens are pixel patches):
    attention is refused by name. FLUX.2 and Chroma bases keep FLUX's layout (LongCat-Image's runs on its own tiny
    model, tests/comfy/test_families.py)."""
    import comfy.model_base

    family = comfy_env.pack.nodes._model_family
    model, _, _ = tiny("flux")

    def around(cls_name):
        cls = getattr(comfy.model_base, cls_name)
        base = cls.__new__(cls)  # a base of that family around the same network class
        torch.nn.Module.__init__(base)
        base.diffusion_model = model.model.diffusion_model
        return types.SimpleNamespace(model=base)

    if not hasattr(comfy.model_base, base_class):
        pytest.skip(f"this host has no {base_class}")
    relative = around(base_class)
    assert family.architecture(relative) == "noise only"
    with pytest.raises(ValueError, match=f"signal: attention is not captured for {name} models .*'noise difference'"):
        family.require_attention(relative)
    assert family.architecture(model) == "flux"
    assert family.architecture(around("Flux2")) == family.architecture(around("Chroma")) == "flux"


def test_latent_scale_comes_from_the_latent_format(comfy_env, tiny):
    model, clip, _ = tiny("sd15")
    attention, heatmap = run_capture(comfy_env, model, clip)
    assert attention["latent_to_image"] == 8 and heatmap.shape[1:3] == (64, 64)
    wide = model.clone()
    latent_format = copy.copy(model.get_model_object("latent_format"))
    latent_format.spacial_downscale_ratio = 16  # as newer hosts record it, e.g. for FLUX.2
    wide.add_object_patch("latent_format", latent_format)
    attention, heatmap = run_capture(comfy_env, wide, clip)
    assert attention["latent_to_image"] == 16 and heatmap.shape[1:3] == (128, 128)
    mask, soft, _, preview = comfy_env.pack.nodes.defect_mask.LoTTSDefectMask().extract(
        attention, 0.5, 0.3, "attention", True)
    assert mask.shape[1:] == soft.shape[1:] == (128, 128) and preview.shape[1:3] == (128, 128)


def test_multi_gpu_models_are_refused(comfy_env, tiny):
    model, clip, _ = tiny("sd15")
    split = model.clone()
    split.set_additional_models("multigpu", [model.clone()])
    with pytest.raises(ValueError, match="multi-GPU"):
        run_capture(comfy_env, split, clip)


def test_conditioning_with_extra_keys_passes_through_untouched(comfy_env, tiny):
    """Reference latents and other keys that other nodes put on a conditioning survive: never dropped from,
    never changed in the input, and the refine and search stages run with them."""
    import nodes as comfy_nodes

    model, clip, vae = tiny("sd15")
    pack = comfy_env.pack.nodes
    (positive,) = comfy_nodes.CLIPTextEncode().encode(clip, "a red circle")
    reference = torch.randn(1, 4, 8, 8)
    positive = [[positive[0][0], {**positive[0][1], "reference_latents": [reference], "lotts_test_key": "kept"}]]
    (negative,) = comfy_nodes.CLIPTextEncode().encode(clip, "")
    before = copy.deepcopy(positive)
    samples = candidates(model)
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:40, 16:40] = 1
    with torch.inference_mode():
        refined = pack.local_denoise.LoTTSLocalRefine().refine(
            model, positive, negative, samples, mask, 7, 4, 4.0, "euler", "normal", 2, 0.5, 1, 0)
    assert refined[0]["samples"].shape == (1, 4, 8, 8)
    assert positive[0][1].keys() == before[0][1].keys() and positive[0][1]["lotts_test_key"] == "kept"
    assert torch.equal(positive[0][1]["reference_latents"][0], reference)
    assert torch.equal(positive[0][0], before[0][0])


def test_flux_capture_reads_the_candidates_own_image_tokens(comfy_env, caplog):
    """Reference-image tokens (Kontext-style) after the image's own are left out; a layer with fewer image tokens
    than the latent has is skipped with one warning, not misread (audit fix 6)."""
    capture = comfy_env.pack.nodes._capture
    recorder = capture.AttentionRecorder((8, 8), {0: torch.ones(4) / 4}, "all", "flux")
    recorder.n_txt = 4
    override = recorder.flux_override(None)
    gen = torch.Generator().manual_seed(0)

    def call(n_image_tokens, block):
        q, k, v = (torch.randn(1, 2, 4 + n_image_tokens, 8, generator=gen) for _ in range(3))
        opts = {"block_type": "double", "block_index": block, "cond_or_uncond": [0]}
        return override(lambda *a, **kw: torch.zeros(1), q, k, v, 2, skip_reshape=True, transformer_options=opts)

    call(16 + 9, 0)  # 4 x 4 image tokens plus 9 of a reference image
    assert recorder.averaged(0).shape == (1, 2, 8, 8) and ("double", 0) in recorder.layers_seen
    call(10, 1)
    call(10, 1)
    assert ("double", 1) not in recorder.layers_seen
    assert sum("skips joint-attention layer" in r.getMessage() for r in caplog.records) == 1
