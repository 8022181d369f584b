"""The LoTTS demo world model in a real ComfyUI: loader node, standard KSampler/VAEDecode, standard VAELoader."""

import importlib
import shutil

import pytest
import torch

DEMO_NODE = "LoTTSDemoModelLoader"


@pytest.fixture(scope="session")
def demo(comfy_env):
    """The pack's demo package as ComfyUI would import it; its node registered if the root does not yet."""
    module = importlib.import_module(comfy_env.pack.__name__ + ".demo")
    for sub in ("world", "autoencoder", "model"):
        importlib.import_module(f"{module.__name__}.{sub}")
    for name, cls in module.NODE_CLASS_MAPPINGS.items():
        comfy_env.nodes.NODE_CLASS_MAPPINGS.setdefault(name, cls)
        comfy_env.nodes.NODE_DISPLAY_NAME_MAPPINGS.setdefault(name, module.NODE_DISPLAY_NAME_MAPPINGS[name])
    if not (module.model.WEIGHTS_DIR / module.model.DEFAULT_WEIGHTS).is_file():
        pytest.skip("demo weights not trained yet (python -m demo.train)")
    return module


def sample_graph(prompt_text, steps=4, batch=1, size=128):
    return {
        "1": {"class_type": DEMO_NODE, "inputs": {"weights": "lotts_demo_world.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": prompt_text}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                   "latent_image": ["4", 0], "seed": 1, "steps": steps, "cfg": 5.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
    }


def test_loader_node_metadata(demo):
    cls = demo.NODE_CLASS_MAPPINGS[DEMO_NODE]
    assert cls.CATEGORY == "LoTTS/demo" and cls.RETURN_TYPES == ("MODEL", "CLIP", "VAE")
    assert demo.NODE_DISPLAY_NAME_MAPPINGS[DEMO_NODE] == "LoTTS Demo Model Loader (synthetic world)"
    for name, spec in cls.INPUT_TYPES()["required"].items():
        assert spec[1].get("tooltip"), name
    assert "lotts_demo_world.safetensors" in cls.INPUT_TYPES()["required"]["weights"][0]
    size = (demo.model.WEIGHTS_DIR / demo.model.DEFAULT_WEIGHTS).stat().st_size
    assert size < 25 * 2 ** 20


def test_demo_model_samples_world_sized_images_with_standard_nodes(comfy_env, demo):
    world = demo.world
    result = comfy_env.run(sample_graph(f"A high-quality image of {world.prompts('test', 1)[0]}."))
    model, clip, vae = result.outputs("1")
    assert type(model.model).__name__ == "BaseModel" and type(model.model.model_config).__name__ == "SD15"
    latent = result.outputs("5")[0]["samples"]
    assert latent.shape == (1, 4, world.RESOLUTION // 8, world.RESOLUTION // 8)
    image = result.outputs("6")[0]
    assert image.shape == (1, world.RESOLUTION, world.RESOLUTION, 3)
    assert torch.isfinite(image).all() and 0 <= image.min() and image.max() <= 1 and image.std() > 0.02


def test_vae_part_loads_with_standard_vae_loader(comfy_env, demo):
    weights = demo.model.WEIGHTS_DIR / demo.model.DEFAULT_WEIGHTS
    shutil.copy(weights, comfy_env.models_dir / "vae" / "lotts_demo_world.safetensors")
    assert "lotts_demo_world.safetensors" in comfy_env.nodes.VAELoader.INPUT_TYPES()["required"]["vae_name"][0]
    (standard,) = comfy_env.nodes.VAELoader().load_vae("lotts_demo_world.safetensors")
    _, _, ours = demo.NODE_CLASS_MAPPINGS[DEMO_NODE]().load("lotts_demo_world.safetensors")
    assert type(standard.first_stage_model).__name__ == "TAESD"
    latent = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 3
    decoded = standard.decode(latent)
    assert decoded.shape == (1, 128, 128, 3)
    torch.testing.assert_close(decoded, ours.decode(latent))


def test_narrow_autoencoder_embeds_exactly_into_comfy_taesd(demo):
    import comfy.taesd.taesd

    torch.manual_seed(0)
    narrow = demo.autoencoder.NarrowTAESD()
    for module in narrow.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.1)
    taesd = comfy.taesd.taesd.TAESD()
    taesd.load_state_dict(narrow.to_taesd_state_dict(0.5, 0.25), strict=True)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        z = narrow.encode(x)
        torch.testing.assert_close(taesd.taesd_encoder(x), z)
        torch.testing.assert_close(taesd.taesd_decoder(z), narrow.decode(z))


def test_taesd_weights_read_back_into_pure_torch_compute_what_comfy_computes(demo):
    """from_taesd_state_dict (the benches' round trips without ComfyUI) against ComfyUI's own TAESD, for the wide
    decoder of world v3 with some blocks switched off."""
    import comfy.taesd.taesd

    torch.manual_seed(1)
    narrow = demo.autoencoder.NarrowTAESD(demo.autoencoder.WIDE_DECODER)
    for module in narrow.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.1)
    state = narrow.to_taesd_state_dict(0.5, 0.25)
    taesd = comfy.taesd.taesd.TAESD()
    taesd.load_state_dict(state, strict=True)
    read_back = demo.autoencoder.from_taesd_state_dict(state)
    assert read_back.config == narrow.config  # widths and active blocks recovered from the zero padding
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        z = read_back.encode(x)
        torch.testing.assert_close(z, taesd.taesd_encoder(x))
        torch.testing.assert_close(read_back.decode(z), taesd.taesd_decoder(z))
        torch.testing.assert_close(read_back.decode(z), narrow.decode(narrow.encode(x)))
    # a trained channel that happens to be zero where the width is read must not be cut silently
    state["taesd_decoder.1.weight"][63], state["taesd_decoder.1.bias"][63] = 0, 0
    with pytest.raises(ValueError, match="weights outside the detected narrow network"):
        demo.autoencoder.from_taesd_state_dict(state)

def test_demo_world_verifier_node_prefers_clean_renders(demo):
    import numpy as np

    cls = demo.NODE_CLASS_MAPPINGS["LoTTSDemoWorldVerifier"]
    assert cls.CATEGORY == "LoTTS/demo" and cls.RETURN_TYPES == ("LOTTS_VERIFIER",)
    (verifier,) = cls().load()
    pairs = [(demo.world.sample(i, "test", with_defect=False)["image"], demo.world.sample(i, "test", with_defect=True)["image"])
             for i in range(20_000, 20_016)]
    images = torch.from_numpy(np.stack([img for pair in pairs for img in pair])).float() / 255.0
    scores = verifier.score(images, "any prompt")
    assert scores.shape == (32,) and torch.isfinite(scores).all()
    assert (scores[0::2] > scores[1::2]).float().mean() > 0.75  # clean beats its own defective version
