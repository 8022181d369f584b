"""The pack's hooks live beside other nodes' hooks on today's hosts: APPLY_MODEL wrappers chain (NFE counting and the
FLUX capture), the single model-function slot is left to others, and an attention backend that consumes ComfyUI's
tensor containers keeps getting them while the capture records."""

import pytest
import torch

HIGH, LOW = "A high-quality image of {p}.", "A low-quality image of {p}."


def _wrappers_mp():
    import comfy.patcher_extension

    return getattr(getattr(comfy.patcher_extension, "WrappersMP", None), "APPLY_MODEL", None)


def _with_other_nodes_hooks(model):
    """A clone carrying another node's APPLY_MODEL wrapper and another node's model_function_wrapper, both counting."""
    calls = {"apply_model": 0, "slot": 0}
    clone = model.clone()

    def other_apply_model(executor, x, *args, **kwargs):
        calls["apply_model"] += x.shape[0]
        return executor(x, *args, **kwargs)

    def other_slot(apply_model, args):
        calls["slot"] += args["input"].shape[0]
        return apply_model(args["input"], args["timestep"], **args["c"])

    clone.add_wrapper_with_key(_wrappers_mp(), "another_pack", other_apply_model)
    clone.set_model_unet_function_wrapper(other_slot)
    return clone, calls, other_slot


def _sample(model, clip, steps=2):
    import comfy.sample
    import nodes

    positive = nodes.CLIPTextEncode().encode(clip, "a red circle")[0]
    negative = nodes.CLIPTextEncode().encode(clip, "")[0]
    latent = torch.zeros(2, model.model.latent_format.latent_channels, 8, 8)
    noise = comfy.sample.prepare_noise(latent, 0)
    return comfy.sample.sample(model, noise, steps, 4.0, "euler", "normal", positive, negative, latent, seed=0,
                               disable_pbar=True)


@pytest.mark.parametrize("family", ["sd15", "flux"])
def test_nfe_counting_is_an_apply_model_wrapper_that_chains(comfy_env, tiny, family):
    if _wrappers_mp() is None:
        pytest.skip("this host has no WrappersMP.APPLY_MODEL (the single model-function slot is used instead)")
    counting = comfy_env.pack.nodes._counting
    model, clip, _ = tiny(family)
    hooked, calls, other_slot = _with_other_nodes_hooks(model)
    counted, counter = counting.counting_clone(hooked)
    assert counted.model_options["model_function_wrapper"] is other_slot  # the single slot is not taken
    assert set(counted.wrappers[_wrappers_mp()]) >= {"another_pack", "lotts_nfe_counter"}
    assert "lotts_nfe_counter" not in hooked.wrappers.get(_wrappers_mp(), {})  # the input model is unchanged
    with torch.inference_mode():
        _sample(counted, clip)
    # 2 steps x 2 latents x (cond + uncond): the count itself, not only agreement with the other hooks
    assert counter.count == calls["apply_model"] == calls["slot"] == 8, (counter.count, calls)


def test_nfe_counting_on_a_host_without_apply_model_wrappers_chains_the_single_slot(comfy_env, tiny, monkeypatch):
    counting = comfy_env.pack.nodes._counting
    monkeypatch.setattr(counting, "APPLY_MODEL", None)  # what a host before WrappersMP offers
    model, clip, _ = tiny("sd15")
    calls = {"slot": 0}
    hooked = model.clone()

    def other_slot(apply_model, args):
        calls["slot"] += args["input"].shape[0]
        return apply_model(args["input"], args["timestep"], **args["c"])

    hooked.set_model_unet_function_wrapper(other_slot)
    counted, counter = counting.counting_clone(hooked)
    assert counted.model_options["model_function_wrapper"] is not other_slot  # ours, calling the other inside
    with torch.inference_mode():
        _sample(counted, clip)
    assert counter.count == calls["slot"] == 8, (counter.count, calls)


def test_flux_capture_records_through_an_apply_model_wrapper_beside_another(comfy_env, tiny):
    if _wrappers_mp() is None:
        pytest.skip("this host has no WrappersMP.APPLY_MODEL (the single model-function slot is used instead)")
    pack = comfy_env.pack.nodes
    model, clip, _ = tiny("flux")
    hooked, calls, other_slot = _with_other_nodes_hooks(model)
    encoded = pack._prompt_tokens.encode_quality_conditionings(clip, "a red circle", HIGH, LOW)
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():  # as ComfyUI's executor runs nodes
        result = pack._capture.capture(hooked, [c for c, _ in encoded], {i: w for i, (_, w) in enumerate(encoded)},
                                       {"samples": latent}, [0.3], 1, 0, None)
    assert result["layers"] and all(layer.startswith("('double'") for layer in result["layers"])
    assert calls["apply_model"] == calls["slot"] == 3  # one pass, three conditionings, both other hooks ran
    assert "lotts_capture" not in hooked.wrappers.get(_wrappers_mp(), {})


def test_capture_keeps_an_attention_backend_that_consumes_containers(comfy_env, tiny):
    import comfy.ldm.modules.attention as attention

    if not hasattr(attention, "AttentionTensorContainer"):
        pytest.skip("this host has no AttentionTensorContainer (ComfyUI before 0.33): no backend consumes containers")
    pack = comfy_env.pack.nodes
    model, _, _ = tiny("flux")
    calls = {"plain": 0, "containers": 0}

    def backend(func, *args, **kwargs):  # another node's override: the plain-tensor path
        calls["plain"] += 1
        return func(*args, **kwargs)

    def backend_containers(q, k, v, *args, **kwargs):  # its own container path, as int8 attention has
        calls["containers"] += 1
        return attention.attention_pytorch(q.take(), k.take(), v.take(), *args, **kwargs)

    backend.container_function = backend_containers
    clone = model.clone()
    clone.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = backend
    n_txt, side, heads, dim = 5, 8, 4, 16
    weights = {0: torch.ones(n_txt) / n_txt}
    recorder = pack._capture.AttentionRecorder((side, side), weights, None, pack._model_family.FLUX)
    patched = pack._capture.patched_clone(clone, recorder)
    options = patched.model_options["transformer_options"]
    override = options["optimized_attention_override"]
    assert override is not backend and override.container_function is not None
    recorder.n_txt = n_txt
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, heads, n_txt + (side // 2) ** 2, dim, generator=gen) for _ in range(3))
    opts = {**options, "block_type": "double", "block_index": 0, "cond_or_uncond": [0]}
    plain = attention.optimized_attention(q, k, v, heads, skip_reshape=True, transformer_options=opts)
    assert calls == {"plain": 1, "containers": 0} and ("double", 0) in recorder.layers_seen
    recorder.layers_seen.clear()
    wrapped = [attention.AttentionTensorContainer(t.clone()) for t in (q, k, v)]
    out = attention.optimized_attention(*wrapped, heads, skip_reshape=True, transformer_options=opts)
    assert calls == {"plain": 1, "containers": 1}, calls  # the backend's container path was used
    assert ("double", 0) in recorder.layers_seen and recorder.counts[0] == 2  # recorded once per call
    torch.testing.assert_close(out, plain)
