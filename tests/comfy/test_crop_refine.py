"""Crop-to-region refinement (nodes/_crop.py): cost in proportion to the crop, the full-image path when the crop
is the whole latent, and nothing outside the crop touched."""

import json

import torch
from graphs import search_graph, with_options


def conditioning(clip, text):
    import nodes as comfy_nodes

    return comfy_nodes.CLIPTextEncode().encode(clip, text)[0]


def test_crop_covering_the_latent_is_the_full_image_path(comfy_env):
    graph = search_graph("sd15", seeds=2)
    whole = comfy_env.run(graph)
    cropped = comfy_env.run(with_options(graph, crop_padding=64))  # more context than the latent has: all of it
    a, b = json.loads(whole.outputs("21")[4]), json.loads(cropped.outputs("21")[4])
    assert a["nfe"] == b["nfe"] and b["nfe_refinement_area_weighted"] == b["nfe_refinement"]
    assert torch.allclose(torch.tensor(a["scores"]), torch.tensor(b["scores"]), atol=1e-4)


def test_a_small_crop_costs_its_area_and_leaves_the_rest_untouched(comfy_env, tiny):
    pack = comfy_env.pack.nodes
    model, clip, _ = tiny("sd15")
    counted, counter = pack._counting.counting_clone(model)
    latent = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    masks = torch.zeros(2, 8, 8)
    masks[0, 2:4, 3:5] = 1  # 2x2 cells; with one cell of padding a 4x4 crop, a quarter of the latent
    with torch.inference_mode():
        out, weighted = pack._crop.refine_in_crops(
            counted, conditioning(clip, "a red circle"), conditioning(clip, ""), {"samples": latent}, masks, 5, 4, 3.0,
            "euler", "normal", 1, 2, 0, 1, counter)
    refined = out["samples"]
    assert refined.shape == (4, 4, 8, 8) and counter.count == 2 * 3 * 2  # one candidate x k=2, 3 steps, CFG
    assert abs(weighted - counter.count * 16 / 64) < 1e-9
    assert torch.equal(refined[2:], latent[1:].repeat_interleave(2, 0))  # empty mask: passed through, no NFE
    parent = latent[:1].expand(2, -1, -1, -1)
    crop, inside = torch.zeros(8, 8, dtype=torch.bool), torch.zeros(8, 8, dtype=torch.bool)
    crop[1:5, 2:6], inside[2:4, 3:5] = True, True
    assert torch.equal(refined[:2][:, :, ~crop], parent[:, :, ~crop])  # outside the crop: never touched
    # inside the crop, outside the mask: re-imposed every step (g = 0), equal up to float rounding
    torch.testing.assert_close(refined[:2][:, :, crop & ~inside], parent[:, :, crop & ~inside], rtol=0, atol=1e-4)
    assert (refined[:2][:, :, inside] - parent[:, :, inside]).abs().mean() > 1e-3


def test_per_region_selection_composites_the_best_redraw_of_each_region(comfy_env, tiny):
    """Two separate regions, two re-draws: the composite takes, per region, the re-draw the verifier prefers when
    only that region is swapped into the parent (or the parent's own content), and nothing else."""
    pack = comfy_env.pack.nodes
    model, clip, vae = tiny("sd15")
    counted, counter = pack._counting.counting_clone(model)
    parent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    redraws = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(8, 8)
    mask[0:2, 0:2], mask[5:8, 5:8] = 1, 1

    class MeanBrightness:  # a deterministic verifier: brighter is better
        def score(self, images, prompts=None):
            return images.mean(dim=(1, 2, 3))

    settings = pack._search.SamplingSettings(conditioning(clip, "x"), conditioning(clip, ""), 4, 3.0, "euler", "normal")
    decode = pack._search.decode
    with torch.inference_mode():
        image = decode(vae, parent)
        state = pack._lineages.Lineages(counted, counter, vae, MeanBrightness(), settings, None, "x", parent, image,
                                        MeanBrightness().score(image), ["s0"], decode)
        latent, composite_image = state._best_per_region(0, mask, redraws, decode(vae, redraws))
        outside = mask == 0
        assert torch.equal(latent[0][:, outside], parent[0][:, outside]) and counter.count == 0
        for part in (slice(0, 2), slice(5, 8)):
            region = torch.zeros(8, 8, dtype=torch.bool)
            region[part, part] = True
            options = [parent[0]] + list(redraws)
            swapped = [parent * (~region) + o[None] * region for o in options]
            scores = [float(MeanBrightness().score(decode(vae, s))[0]) for s in swapped]
            best = options[max(range(3), key=lambda i: scores[i])]
            assert torch.equal(latent[0][:, region], best[:, region])
        assert composite_image.shape == (1, 64, 64, 3)
        one_region = torch.zeros(8, 8)
        one_region[2:4, 2:4] = 1
        assert state._best_per_region(0, one_region, redraws, decode(vae, redraws)) is None
