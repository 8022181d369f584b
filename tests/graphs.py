"""API-format graph pieces shared by the tests: tiny models, prompts and candidates from a real KSampler."""


def empty_latent_node(family):
    """The empty-latent node users pair with each family (16 channels; FLUX.2's: 128 at 1/16; Qwen-Image's and the
    other Wan 2.1 latents' 4-D latent becomes 5-D in the sampler)."""
    if family in ("flux2", "ernie", "ideogram4", "lens", "mage_flow"):
        return "EmptyFlux2LatentImage"  # FLUX.2's latent
    if family == "hunyuan_image21":
        return "EmptyHunyuanImageLatent"  # 64 channels at 1/32
    if family == "hidream_o1":  # pixel space: the "latent" is the image
        return "EmptyHiDreamO1LatentImage"
    if family in ("pixeldit", "chroma_radiance"):  # pixel space too
        return "EmptyChromaRadianceLatentImage"
    # Anima's 4-channel empty latent is widened to its 16-channel 5-D one by the sampler, as for users
    four_channels = ("sd15", "sd21", "sdxl", "anima", "auraflow", "pixart", "hunyuan_dit")
    return "EmptyLatentImage" if family in four_channels else "EmptySD3LatentImage"


IMAGE_SIDE = {"pixart": 320}  # ComfyUI's PixArt divides by zero at 256 px and below; the others take 64


def image_side(family):
    return IMAGE_SIDE.get(family, 64)


def candidates_graph(family, batch=2, steps=3, cfg=4.0, prompt="a red circle"):
    """Nodes 1-5: tiny models, positive/negative prompts, an empty latent and a KSampler making candidates."""
    empty = empty_latent_node(family)
    return {
        "1": {"class_type": "LoTTSTestTinyModels", "inputs": {"family": family}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": prompt}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": empty, "inputs": {"width": image_side(family), "height": image_side(family),
                                            "batch_size": batch}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                   "latent_image": ["4", 0], "seed": 3, "steps": steps, "cfg": cfg,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
    }


STEPS = 4


def search_graph(family, n=3, seeds=1, refinements=2, rounds=1, batch=1, signal="attention"):
    empty = empty_latent_node(family)
    common = {"vae": ["1", 2], "verifier": ["6", 0], "positive": ["2", 0], "negative": ["3", 0],
              "latent_image": ["4", 0], "prompt": "a red circle", "seed": 21, "steps": STEPS, "cfg": 3.0,
              "sampler_name": "euler", "scheduler": "normal"}
    return {
        "1": {"class_type": "LoTTSTestTinyModels", "inputs": {"family": family}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a red circle"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": empty, "inputs": {"width": image_side(family), "height": image_side(family),
                                            "batch_size": batch}},
        "6": {"class_type": "LoTTSTestContrastVerifier", "inputs": {}},
        "10": {"class_type": "LoTTSTestCountingModel", "inputs": {"model": ["1", 0], "label": f"bon-{family}"}},
        "11": {"class_type": "LoTTSTestCountingModel", "inputs": {"model": ["1", 0], "label": f"lotts-{family}"}},
        "20": {"class_type": "LoTTSBestOfN", "inputs": {**common, "model": ["10", 0], "n": n}},
        "21": {"class_type": "LoTTSSearch", "inputs": {
            **common, "model": ["11", 0], "clip": ["1", 1], "seeds": seeds, "refinements": refinements,
            "rounds": rounds, "start_at_step": 2, "start_fraction": 0.0, "global_steps": 1, "area_ratio": 0.5,
            "foreground_weight": 0.3, "signal": signal, "noise_levels": "0.3",
            "high_quality_template": "A high-quality image of {p}.", "low_quality_template": "A low-quality image of {p}.",
            "layers": "auto"}},
        "30": {"class_type": "PreviewImage", "inputs": {"images": ["20", 3]}},
        "31": {"class_type": "PreviewImage", "inputs": {"images": ["21", 3]}},
    }


OPTION_DEFAULTS = {"mask_mode": "top area (paper)", "region_threshold": 0.6, "region_min_area": 0.01,
                   "region_max_area": 0.3, "crop_padding": -1, "region_selection": False, "nfe_budget": 0,
                   "stop_score": 1e6, "prune_at_step": 0, "prune_keep": 0.5, "capture_mode": "re-noised (paper)"}


def with_options(graph, nodes=("21",), **options):
    """`graph` plus a LoTTS Search Options node "40" (defaults, then `options`) wired to the named search nodes."""
    unknown = set(options) - set(OPTION_DEFAULTS)
    assert not unknown, f"not a LoTTS Search Options input: {unknown}"
    out = {**graph, "40": {"class_type": "LoTTSSearchOptions", "inputs": {**OPTION_DEFAULTS, **options}}}
    for node in nodes:
        out[node] = {**graph[node], "inputs": {**graph[node]["inputs"], "options": ["40", 0]}}
    return out
