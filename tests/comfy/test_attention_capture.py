"""Quality-prompt attention capture on the tiny models of every family, through the real executor."""

import copy

import pytest
import torch
from graphs import candidates_graph

CAPTURE_DEFAULTS = {"high_quality_template": "A high-quality image of {p}.",
                    "low_quality_template": "A low-quality image of {p}.",
                    "noise_levels": "0.2, 0.3", "noise_draws": 1, "seed": 5, "layers": "auto"}


def capture_graph(family, batch=2, **overrides):
    return {
        **candidates_graph(family, batch),
        "7": {"class_type": "LoTTSQualityAttentionCapture", "inputs": {
            "model": ["1", 0], "clip": ["1", 1], "samples": ["5", 0], "prompt": "a red circle",
            **CAPTURE_DEFAULTS, **overrides}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 1]}},
    }


def test_capture_maps_every_family(comfy_env, family):
    result = comfy_env.run(capture_graph(family))
    attention, heatmap = result.outputs("7")
    assert attention["family"] in ("sd1x", "sd2x", "sdxl", "flux", "chroma")
    assert attention["layers"], "no layer recorded"
    for name in ("orig", "high", "low"):
        for kind in ("ca", "ca_prop"):
            maps = attention["maps"][name][kind]
            assert maps.shape == (2, 8, 8) and torch.isfinite(maps).all()
            assert (maps >= 0).all() and maps.max() > 0
    # the prompts differ, so the low/high contrast is not identically zero
    diff = attention["maps"]["low"]["ca"] - attention["maps"]["high"]["ca"]
    assert diff.abs().max() > 0
    assert attention["noise_difference"].shape == (2, 8, 8)
    assert attention["model_evaluations"] == 2 * 3 * 2  # levels x conditionings x candidates
    assert heatmap.shape == (2, 64, 64, 3) and 0 <= heatmap.min() and heatmap.max() <= 1
    assert len(result.ui["8"]["images"]) == 2


def test_capture_leaves_model_unpatched_and_outputs_identical(comfy_env, tiny, family):
    import comfy.sample
    import nodes as comfy_nodes

    model, clip, _ = tiny(family)
    options_before = copy.deepcopy({k: v for k, v in model.model_options.items()})
    pack = comfy_env.pack.nodes
    (pos,) = comfy_nodes.CLIPTextEncode().encode(clip, "a red circle")
    (neg,) = comfy_nodes.CLIPTextEncode().encode(clip, "")
    channels = model.model.latent_format.latent_channels
    latent = {"samples": torch.zeros(1, channels, 8, 8)}

    @torch.inference_mode()  # as ComfyUI's executor runs nodes
    def sample(m):
        noise = comfy.sample.prepare_noise(latent["samples"], 11)
        return comfy.sample.sample(m, noise, 3, 4.0, "euler", "normal", pos, neg, latent["samples"], seed=11,
                                   disable_pbar=True)

    plain = sample(model)
    recorder = pack._capture.AttentionRecorder((8, 8), {0: torch.ones(77) / 77, 1: torch.ones(77) / 77},
                                               "all", pack._model_family.architecture(model))
    patched = pack._capture.patched_clone(model, recorder)
    with_recording = sample(patched)
    torch.testing.assert_close(with_recording, plain, rtol=0, atol=1e-5)
    node = pack.attention_capture.LoTTSQualityAttentionCapture()
    with torch.inference_mode():
        node.capture(model, clip, {"samples": plain}, "a red circle", **CAPTURE_DEFAULTS)
    assert model.model_options == options_before or str(model.model_options) == str(options_before)
    torch.testing.assert_close(sample(model), plain, rtol=0, atol=0)


@pytest.mark.parametrize("overrides, message", [
    ({"prompt": "   "}, "prompt: is empty"),
    ({"noise_levels": "0.3, 2"}, "noise_levels"),
    ({"layers": "bogus:1"}, "layers"),
    ({"high_quality_template": "no placeholder"}, "high_quality_template"),
])
def test_capture_rejects_bad_input_with_named_error(comfy_env, overrides, message):
    with pytest.raises(Exception, match=message):
        comfy_env.run(capture_graph("sd15", batch=1, **overrides))


def _capture_rows(comfy_env, tiny, family, attention):
    """(capture dict, rows of every model call) of a direct capture on 2 candidates at two levels."""
    pack = comfy_env.pack.nodes
    model, clip, _ = tiny(family)
    rows = []

    def wrapper(apply_model, args):  # sees every model call of the capture, with its batch
        rows.append(args["input"].shape[0])
        return apply_model(args["input"], args["timestep"], **args["c"])

    watched = model.clone()
    watched.set_model_unet_function_wrapper(wrapper)
    channels = model.model.latent_format.latent_channels
    samples = {"samples": torch.randn(2, channels, 8, 8, generator=torch.Generator().manual_seed(1))}
    encoded = pack._prompt_tokens.encode_quality_conditionings(clip, "a red circle", "A high-quality image of {p}.",
                                                               "A low-quality image of {p}.", attention)
    with torch.inference_mode():
        result = pack._capture.capture(watched, [c for c, _ in encoded], {i: w for i, (_, w) in enumerate(encoded)},
                                       samples, [0.2, 0.3], 1, 5, None, attention)
    return result, rows


def test_noise_difference_skips_the_original_prompt_and_batches_as_cfg_does(comfy_env, tiny, family):
    """Only the two quality prompts run for the noise difference (a third fewer capture evaluations), giving the
    same map as the three-prompt capture; no model call carries more than a CFG step's two conditionings."""
    full, full_rows = _capture_rows(comfy_env, tiny, family, attention=True)
    lean, lean_rows = _capture_rows(comfy_env, tiny, family, attention=False)
    assert full["model_evaluations"] == sum(full_rows) == 2 * 3 * 2  # levels x prompts x candidates
    assert lean["model_evaluations"] == sum(lean_rows) == 2 * 2 * 2 and lean["prompts_evaluated"] == ["high", "low"]
    assert max(full_rows + lean_rows) <= 2 * 2  # two conditionings x two candidates per call, as a CFG step
    torch.testing.assert_close(lean["noise_difference"], full["noise_difference"], rtol=1e-4, atol=1e-5)


def test_recorder_reads_only_the_rows_of_conditionings_it_records(comfy_env):
    """rows_read keeps exactly the rows of recorded conditionings, in order, for any place of the unread ones."""
    rows_read = comfy_env.pack.nodes._capture.AttentionRecorder.rows_read
    for conds, kept_rows in [([0, None, 1], [0, 1, 4, 5]), ([None, 2], [2, 3]), ([1, None], [0, 1]),
                             ([0, 1, 2], [0, 1, 2, 3, 4, 5]), ([None, None, None], [])]:
        batch = torch.arange(2.0 * len(conds))[:, None].expand(-1, 3)  # two rows per conditioning
        kept, (out,) = rows_read(conds, batch)
        assert kept == [c for c in conds if c is not None]
        if kept:
            assert out[:, 0].tolist() == kept_rows


def test_within_sampling_maps_ignore_the_unconditional_rows(comfy_env, tiny, family):
    """Within sampling the sampler's unconditional pass shares the batch and is not read: the first step's maps of
    the conditional pass are the same whether the unconditional rows are in the batch (cfg 4) or not (cfg 1)."""
    import comfy.sample
    import nodes as comfy_nodes

    pack = comfy_env.pack.nodes
    model, clip, _ = tiny(family)
    (pos,) = comfy_nodes.CLIPTextEncode().encode(clip, "a red circle")
    (neg,) = comfy_nodes.CLIPTextEncode().encode(clip, "a blue square")
    channels = model.model.latent_format.latent_channels
    latent = torch.zeros(1, channels, 8, 8)

    def first_step_maps(cfg):
        weights = torch.zeros(pos[0][0].shape[1])
        weights[1:4] = 1 / 3  # a few prompt tokens (all of them would sum the softmax to a constant map)
        recorder = pack._capture.AttentionRecorder((8, 8), {0: weights}, "all",
                                                   pack._model_family.architecture(model))
        recorder.cond_indices = [0, None]  # the sampler's cond is read, its uncond is not
        with torch.inference_mode():
            comfy.sample.sample(pack._capture.patched_clone(model, recorder), comfy.sample.prepare_noise(latent, 3),
                                1, cfg, "euler", "normal", pos, neg, latent, seed=3, disable_pbar=True)
        assert recorder.layers_seen, "nothing recorded"
        return recorder.averaged(0)

    torch.testing.assert_close(first_step_maps(4.0), first_step_maps(1.0), rtol=1e-4, atol=1e-6)


def test_a_batch_of_unread_rows_alone_is_passed_over_without_a_warning(comfy_env, caplog):
    """When memory is short ComfyUI runs the sampler's unconditional pass as a batch of its own: within sampling the
    capture does not read it, and must not warn that it skips the layer (which would also hide a real skip later)."""
    pack = comfy_env.pack.nodes
    recorder = pack._capture.AttentionRecorder((8, 8), {0: torch.ones(5) / 5}, "all", pack._model_family.FLUX,
                                               layout="image first, text last", weights_cover_text=True)
    recorder.cond_indices = [0, None]
    q = torch.randn(1, 2, 16 + 7, 8)  # 16 image tokens, then the unconditional prompt's 7 (not the weights' 5)
    opts = {"block_type": "double", "block_index": 0}
    with caplog.at_level("WARNING"):
        recorder.observe_joint(q, q, {**opts, "cond_or_uncond": [1]}, {"skip_reshape": True})
        assert not recorder.layers_seen and "skips joint-attention layer" not in caplog.text
        short = q[:, :, :18]  # 13 image tokens before the read prompt's 5: a real mismatch still warns
        recorder.observe_joint(short, short, {**opts, "cond_or_uncond": [0]}, {"skip_reshape": True})
    assert "skips joint-attention layer" in caplog.text
