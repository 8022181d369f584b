"""The four LoTTS method stages wired in real ComfyUI graphs next to the standard samplers, every family."""

import json

import pytest
import torch
from graphs import candidates_graph

STEPS = 6


def base_graph(family, batch=2):
    return {
        **candidates_graph(family, batch, steps=STEPS, cfg=1.0 if family in ("flux", "chroma") else 4.0),
        "7": {"class_type": "LoTTSQualityAttentionCapture", "inputs": {
            "model": ["1", 0], "clip": ["1", 1], "samples": ["5", 0], "prompt": "a red circle",
            "high_quality_template": "A high-quality image of {p}.", "low_quality_template": "A low-quality image of {p}.",
            "noise_levels": "0.3", "noise_draws": 1, "seed": 0, "layers": "auto"}},
        "8": {"class_type": "LoTTSDefectMask", "inputs": {"attention": ["7", 0], "area_ratio": 0.5,
                                                          "foreground_weight": 0.3, "signal": "attention",
                                                          "self_attention_propagation": True}},
        "9": {"class_type": "LoTTSRefineMask", "inputs": {"mask": ["8", 0], "threshold": 0.5, "min_component_area": 0,
                                                          "fill_holes": False, "grow_pixels": 0, "feather_pixels": 0,
                                                          "resize_to": "unchanged"}},
        "99": {"class_type": "PreviewImage", "inputs": {"images": ["8", 3]}},
    }


def local_refine(mask_ref, global_steps=0, seed=7, refinements=2, start=3):
    return {"class_type": "LoTTSLocalRefine", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "samples": ["5", 0], "mask": mask_ref,
        "seed": seed, "steps": STEPS, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
        "start_at_step": start, "start_fraction": 0.0, "refinements": refinements, "global_steps": global_steps}}


def save(ref):
    return {"class_type": "SaveLatent", "inputs": {"samples": ref, "filename_prefix": "t/refined"}}


def test_full_pipeline_keeps_outside_and_area(comfy_env, family):
    graph = base_graph(family)
    graph["10"] = local_refine(["9", 0])
    graph["11"] = save(["10", 0])
    result = comfy_env.run(graph)
    candidates = result.outputs("5")[0]["samples"]
    mask, soft, scores, preview = result.outputs("8")
    assert mask.shape == (2, 64, 64) and soft.shape == (2, 64, 64) and preview.shape == (2, 64, 64, 3)
    latent_mask = mask[:, ::8, ::8]
    assert torch.equal(latent_mask.sum(dim=(1, 2)), torch.full((2,), 32.0))  # r = 50 % of the 8x8 latent
    assert len(json.loads(scores)) == 2
    refined, masks = result.outputs("10")
    refined = refined["samples"]
    assert refined.shape[0] == 4 and masks.shape == (4, 8, 8)
    expected = candidates.repeat_interleave(2, dim=0)
    outside = (masks == 0).unsqueeze(1).expand_as(refined)
    torch.testing.assert_close(refined[outside], expected[outside], rtol=0, atol=1e-4)
    inside = ~outside
    assert (refined[inside] - expected[inside]).abs().max() > 1e-3, "nothing changed inside the mask"
    assert not torch.equal(refined[0], refined[1]), "the k refinements of a candidate must differ"


def test_ksampler_advanced_path_equals_one_node(comfy_env):
    graph = base_graph("sd15")
    graph["10"] = local_refine(["9", 0], global_steps=1)
    graph["12"] = {"class_type": "LoTTSPerturbLatent", "inputs": {"samples": ["5", 0], "mask": ["9", 0],
                                                                  "refinements": 2}}
    graph["13"] = {"class_type": "LoTTSHarmonizationPatch", "inputs": {"model": ["1", 0], "global_steps": 1}}
    graph["14"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "model": ["13", 0], "add_noise": "enable", "noise_seed": 7, "steps": STEPS, "cfg": 4.0,
        "sampler_name": "euler", "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0],
        "latent_image": ["12", 0], "start_at_step": 3, "end_at_step": 10000, "return_with_leftover_noise": "disable"}}
    graph["11"] = save(["10", 0])
    graph["15"] = save(["14", 0])
    result = comfy_env.run(graph)
    one_node = result.outputs("10")[0]["samples"]
    standard = result.outputs("14")[0]["samples"]
    torch.testing.assert_close(standard, one_node, rtol=0, atol=1e-5)
    with_g = one_node
    candidates = result.outputs("5")[0]["samples"].repeat_interleave(2, dim=0)
    outside = (result.outputs("10")[1] == 0).unsqueeze(1).expand_as(with_g)
    assert (with_g[outside] - candidates[outside]).abs().max() > 0, "g=1 must touch the outside"


def test_refine_is_reproducible_and_empty_mask_passes_through(comfy_env):
    graph = base_graph("sd15")
    graph["20"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 64, "height": 64}}
    graph["10"] = local_refine(["20", 0])
    graph["16"] = local_refine(["9", 0], seed=7)
    graph["17"] = local_refine(["9", 0], seed=8)
    for node in ("10", "16", "17"):
        graph["s" + node] = save([node, 0])
    result = comfy_env.run(graph)
    candidates = result.outputs("5")[0]["samples"].repeat_interleave(2, dim=0)
    torch.testing.assert_close(result.outputs("10")[0]["samples"], candidates, rtol=0, atol=1e-5)
    again = comfy_env.run(graph).outputs("16")[0]["samples"]
    assert torch.equal(again, result.outputs("16")[0]["samples"])
    assert not torch.equal(result.outputs("17")[0]["samples"], result.outputs("16")[0]["samples"])


@pytest.mark.parametrize("mask_node, message", [
    ({"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 32}}, "aspect ratio"),
    ({"class_type": "RepeatImageBatch", "inputs": {"image": ["21", 0], "amount": 3}}, "batch size 3"),
])
def test_refine_rejects_mismatched_masks(comfy_env, mask_node, message):
    from harness import GraphError

    graph = base_graph("sd15")
    graph["21"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1,
                                                         "color": 0}}
    if mask_node["class_type"] == "RepeatImageBatch":
        graph["22"] = mask_node
        graph["20"] = {"class_type": "ImageToMask", "inputs": {"image": ["22", 0], "channel": "red"}}
    else:
        graph["20"] = mask_node
    graph["10"] = local_refine(["20", 0])
    graph["11"] = save(["10", 0])
    with pytest.raises(GraphError, match=message):
        comfy_env.run(graph)


def test_latent_from_another_family_is_named(comfy_env):
    from harness import GraphError

    graph = base_graph("sd15", batch=1)
    graph["30"] = {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}
    graph["31"] = {"class_type": "LatentAdd", "inputs": {"samples1": ["30", 0], "samples2": ["30", 0]}}
    graph["10"] = local_refine(["9", 0])
    graph["10"]["inputs"]["samples"] = ["31", 0]
    graph["11"] = save(["10", 0])
    with pytest.raises(GraphError, match="samples: latent has 16 channels, this sd1x model expects 4"):
        comfy_env.run(graph)


def test_defect_mask_node_offers_region_masks(comfy_env):
    """The Defect Mask node's 'defect regions' mode: the map's strongest connected regions, within the area limit."""
    import torch

    node = comfy_env.pack.nodes.defect_mask.LoTTSDefectMask()
    noise = torch.zeros(1, 8, 8)
    noise[0, 1:3, 1:3], noise[0, 5:8, 5:8] = 1.0, 0.8
    attention = {"noise_difference": noise, "latent_shape": (1, 4, 8, 8), "latent_to_image": 8,
                 "maps": {c: {k: torch.rand(1, 8, 8) for k in ("ca", "ca_prop")} for c in ("orig", "high", "low")}}
    paper, _, _, _ = node.extract(attention, 0.5, 0.3, "noise difference", True)
    regions, _, _, _ = node.extract(attention, 0.5, 0.3, "noise difference", True, "defect regions", 0.5, 0.0, 0.1)
    assert paper.mean() == 0.5 and regions.shape == (1, 64, 64)
    assert regions[0, 8:24, 8:24].all() and regions.sum() == 4 * 64  # the strongest region only: 4 cells of 64 px
