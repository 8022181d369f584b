"""API-format graph pieces shared by the tests: tiny models, prompts and candidates from a real KSampler."""


def candidates_graph(family, batch=2, steps=3, cfg=4.0, prompt="a red circle"):
    """Nodes 1-5: tiny models, positive/negative prompts, an empty latent and a KSampler making candidates."""
    empty = "EmptySD3LatentImage" if family == "flux" else "EmptyLatentImage"
    return {
        "1": {"class_type": "LoTTSTestTinyModels", "inputs": {"family": family}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": prompt}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": empty, "inputs": {"width": 64, "height": 64, "batch_size": batch}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                   "latent_image": ["4", 0], "seed": 3, "steps": steps, "cfg": cfg,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
    }
