"""The pack loads in a real ComfyUI, in-process and as an HTTP server, on every tiny model family."""

import pytest
import torch


def test_pack_registers_in_process(comfy_env):
    mappings = comfy_env.nodes.NODE_CLASS_MAPPINGS
    ours = [name for name in mappings if name.startswith("LoTTS") and not name.startswith("LoTTSTest")]
    assert "LoTTSQualityAttentionCapture" in ours
    assert not comfy_env.pack.nodes.FAILED_MODULES, comfy_env.pack.nodes.FAILED_MODULES
    for name in ours:  # a demanding user expects a tooltip on every input
        inputs = mappings[name].INPUT_TYPES()
        for section in ("required", "optional"):
            for input_name, spec in inputs.get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_tiny_family_samples_through_real_ksampler(comfy_env, family):
    prompt = {
        "1": {"class_type": "LoTTSTestTinyModels", "inputs": {"family": family}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a red circle"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": "EmptyLatentImage" if family not in ("flux", "chroma") else "EmptySD3LatentImage",
              "inputs": {"width": 64, "height": 64, "batch_size": 2}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                   "latent_image": ["4", 0], "seed": 3, "steps": 3, "cfg": 4.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": f"t/{family}"}},
    }
    result = comfy_env.run(prompt)
    latent = result.outputs("5")[0]["samples"]
    assert latent.shape == (2, 16 if family in ("flux", "chroma") else 4, 8, 8)
    assert torch.isfinite(latent).all() and latent.std() > 0


@pytest.mark.server
def test_server_lists_pack_and_runs_api_graph(comfy_server):
    info = comfy_server.get("/object_info/LoTTSQualityAttentionCapture")["LoTTSQualityAttentionCapture"]
    assert info["python_module"] == "custom_nodes.lotts"
    assert info["output"] == ["LOTTS_ATTENTION", "IMAGE"]
    prompt = {
        "1": {"class_type": "LoTTSTestTinyModels", "inputs": {"family": "sd15"}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "7": {"class_type": "LoTTSQualityAttentionCapture", "inputs": {
            "model": ["1", 0], "clip": ["1", 1], "samples": ["4", 0], "prompt": "a blue square",
            "high_quality_template": "A high-quality image of {p}.", "low_quality_template": "A low-quality image of {p}.",
            "noise_levels": "0.3", "noise_draws": 1, "seed": 0, "layers": "auto"}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 1]}},
    }
    entry = comfy_server.wait(comfy_server.submit(prompt))
    images = entry["outputs"]["8"]["images"]
    assert len(images) == 1 and images[0]["filename"].endswith(".png")
