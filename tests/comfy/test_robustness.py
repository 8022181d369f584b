"""Robustness through the real HTTP API on tiny models: a load test (60 prompts, outputs checked, memory flat),
interruption in the middle of a LoTTS search (server usable, model unpatched), and malformed inputs that
must each fail with a clear error naming the node."""

import json
import sys
import time
import uuid

import harness
import psutil
import pytest
import torch
import websocket
from safetensors.torch import load_file

sys.path.insert(0, str(harness.REPO))
from lotts_client import ComfyClient, ExecutionFailed, ValidationFailed  # noqa: E402

pytestmark = pytest.mark.server
SIZE = 64  # image size of every tiny graph here (latent 8 x 8)


def base(batch=1, cfg=1.0, seed=1, steps=3, family="sd15"):
    return {
        "1": {"class_type": "LoTTSTestTinyModels", "inputs": {"family": family}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a red circle"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": batch}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
            "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
    }


def refine(mask, samples=("5", 0), steps=3, start=1, global_steps=0, refinements=2, cfg=1.0, seed=0):
    return {"class_type": "LoTTSLocalRefine", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "samples": list(samples), "mask": mask,
        "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal",
        "start_at_step": start, "start_fraction": 0.0, "refinements": refinements, "global_steps": global_steps}}


def left_half_mask():
    return {"20": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": SIZE, "height": SIZE}},
            "21": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": SIZE // 2, "height": SIZE}},
            "22": {"class_type": "MaskComposite", "inputs": {"destination": ["20", 0], "source": ["21", 0], "x": 0,
                                                              "y": 0, "operation": "add"}}}


def save(ref, prefix):
    return {"class_type": "SaveLatent", "inputs": {"samples": ref, "filename_prefix": prefix}}


def latent_file(server, entry, node_id):
    [item] = entry["outputs"][node_id]["latents"]
    return load_file(str(server.base_dir / "output" / item["subfolder"] / item["filename"]))["latent_tensor"]


def rss(server):
    return psutil.Process(server.proc.pid).memory_info().rss


# -- load ---------------------------------------------------------------------------------------------------------

def load_prompt(index):
    graph = base(seed=1000 + index)
    graph.update(left_half_mask())
    graph["6"] = refine(["22", 0], start=2)
    graph["7"] = save(["5", 0], f"load/{index:03d}_candidate")
    graph["8"] = save(["6", 0], f"load/{index:03d}_refined")
    return graph


def run_wave(server, indices):
    ids = {i: server.submit(load_prompt(i)) for i in indices}
    return {i: server.wait(pid, timeout=300) for i, pid in ids.items()}


@pytest.mark.slow
def test_load_60_prompts_complete_correctly_and_memory_stays_flat(comfy_server):
    """10 warm-up prompts, then 50 queued at once: every one succeeds with its own correct outputs; the server's
    memory after the last is within max(10 %, 100 MB) of its level after the warm-up."""
    run_wave(comfy_server, range(10))
    baseline = rss(comfy_server)
    entries = run_wave(comfy_server, range(10, 60))
    final = rss(comfy_server)
    assert len(entries) == 50
    inside = torch.zeros(8, 8, dtype=torch.bool)  # latent columns 0-2 are masked, 5-7 are not (3-4: the edge,
    inside[:, :3] = True                           # soft after resizing the mask to the latent)
    outside_cols = torch.zeros(8, 8, dtype=torch.bool)
    outside_cols[:, 5:] = True
    candidates = set()
    for index, entry in entries.items():
        assert entry["status"]["status_str"] == "success"
        assert entry["outputs"]["8"]["latents"][0]["filename"].startswith(f"{index:03d}_refined")
        candidate, refined = latent_file(comfy_server, entry, "7"), latent_file(comfy_server, entry, "8")
        assert candidate.shape == (1, 4, 8, 8) and refined.shape == (2, 4, 8, 8)
        assert torch.isfinite(refined).all()
        outside, masked = outside_cols.expand_as(refined), inside.expand_as(refined)
        expected = candidate.repeat_interleave(2, dim=0)
        torch.testing.assert_close(refined[outside], expected[outside], rtol=0, atol=1e-4)  # kept outside the mask
        assert (refined[masked] - expected[masked]).abs().max() > 1e-3  # re-denoised inside
        candidates.add(tuple(candidate.flatten()[:8].tolist()))
    assert len(candidates) == 50, "each prompt must have run with its own seed"
    growth = final - baseline
    print(f"server RSS after warm-up {baseline / 2**20:.0f} MB, after 50 more prompts {final / 2**20:.0f} MB")
    assert growth <= max(0.10 * baseline, 100 * 2**20), (
        f"server RSS grew by {growth / 2**20:.0f} MB over 50 prompts (from {baseline / 2**20:.0f} MB)")


# -- interruption -------------------------------------------------------------------------------------------------

def reference_graph(prefix):
    graph = base(seed=11, steps=4, cfg=3.0)
    graph["6"] = save(["5", 0], prefix)
    return graph


def search_graph(steps, prefix):
    graph = {key: value for key, value in base().items() if key in ("1", "2", "3", "4")}
    graph["30"] = {"class_type": "LoTTSTestContrastVerifier", "inputs": {}}
    graph["31"] = {"class_type": "LoTTSSearch", "inputs": {
        "model": ["1", 0], "vae": ["1", 2], "verifier": ["30", 0], "positive": ["2", 0], "negative": ["3", 0],
        "latent_image": ["4", 0], "prompt": "a red circle", "seed": 5, "steps": steps, "cfg": 1.0,
        "sampler_name": "euler", "scheduler": "normal", "clip": ["1", 1], "seeds": 1, "refinements": 2,
        "rounds": 1, "start_at_step": 1, "start_fraction": 0.0, "global_steps": 1, "area_ratio": 0.5,
        "foreground_weight": 0.3, "signal": "attention", "noise_levels": "0.3",
        "high_quality_template": "A high-quality image of {p}.", "low_quality_template": "A low-quality image of {p}.",
        "layers": "auto"}}
    graph["32"] = save(["31", 1], prefix)
    return graph


def cached_nodes(entry):
    return {node for kind, data in entry["status"]["messages"] if kind == "execution_cached" for node in data["nodes"]}


def interrupt_search_after_candidates(server, steps):
    """Queue a search; once it reports its first stage (candidates sampled, progress 1 of 2), POST /interrupt
    so the interruption falls in capture or refinement, where patched clones of the MODEL are in use."""
    client_id = uuid.uuid4().hex
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws?clientId={client_id}", timeout=240)
    try:
        status, body = server.post("/prompt", {"prompt": search_graph(steps, "robust/interrupted"),
                                               "client_id": client_id})
        assert status == 200, body
        prompt_id = body["prompt_id"]
        deadline = time.time() + 240
        while time.time() < deadline:
            raw = ws.recv()
            if not isinstance(raw, str):
                continue
            message = json.loads(raw)
            data = message.get("data", {})
            if message["type"] == "progress" and data.get("node") == "31" and data.get("value", 0) >= 1:
                server.post("/interrupt", {"prompt_id": prompt_id})
                break
            if message["type"] in ("execution_success", "execution_error") and data.get("prompt_id") == prompt_id:
                pytest.fail(f"the search ended without reporting progress: {message['type']}")
        else:
            pytest.fail("no progress event from the search node")
    finally:
        ws.close()
    try:
        server.wait(prompt_id, timeout=240)
    except harness.GraphError as failed:
        kinds = [kind for kind, _ in failed.details["status"]["messages"]]
        assert "execution_interrupted" in kinds, failed.details["status"]
        return "interrupted"
    return "finished first"


@pytest.mark.slow
def test_interrupt_mid_search_leaves_server_usable_and_model_unpatched(comfy_server):
    reference = comfy_server.wait(comfy_server.submit(reference_graph("robust/ref_before")))
    small = comfy_server.wait(comfy_server.submit(search_graph(4, "robust/search_before")))
    before, small_before = latent_file(comfy_server, reference, "6"), latent_file(comfy_server, small, "32")

    for steps in (30, 120, 480):  # long enough that the interrupt lands inside the search (more if it did not)
        outcome = interrupt_search_after_candidates(comfy_server, steps)
        if outcome != "finished first":
            break
    assert outcome == "interrupted"
    assert comfy_server.get("/queue") == {"queue_running": [], "queue_pending": []}

    # the server answers new prompts; the shared MODEL (cached loader output) was not left patched
    after = comfy_server.wait(comfy_server.submit(reference_graph("robust/ref_after")))
    assert "5" not in cached_nodes(after), "the sampler must recompute for the comparison to mean anything"
    assert "1" in cached_nodes(after), "the same cached MODEL object is reused"
    assert torch.equal(latent_file(comfy_server, after, "6"), before)
    small_after = comfy_server.wait(comfy_server.submit(search_graph(4, "robust/search_after")))
    assert "31" not in cached_nodes(small_after)
    assert torch.equal(latent_file(comfy_server, small_after, "32"), small_before)


# -- malformed inputs ---------------------------------------------------------------------------------------------

def graph_with(extra, **base_args):
    graph = base(batch=2, steps=2, **base_args)
    graph.update(extra)
    if not any(node["class_type"] in ("SaveLatent", "PreviewImage", "PreviewAny", "SaveImage")
               for node in graph.values()):
        graph["99"] = save(["9" if "9" in graph else "5", 0], "robust/bad")
    return graph


def set_input(graph, node_id, **values):
    graph[node_id]["inputs"].update(values)
    return graph


def mask_batch(n):
    return {"40": {"class_type": "EmptyImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": n,
                                                          "color": 16777215}},
            "41": {"class_type": "ImageToMask", "inputs": {"image": ["40", 0], "channel": "red"}}}


def capture(**inputs):
    return {"class_type": "LoTTSQualityAttentionCapture", "inputs": {
        "model": ["1", 0], "clip": ["1", 1], "samples": ["5", 0], "prompt": "a red circle",
        "high_quality_template": "A high-quality image of {p}.", "low_quality_template": "A low-quality image of {p}.",
        "noise_levels": "0.3", "noise_draws": 1, "seed": 0, "layers": "auto", **inputs}}


def preview_any(ref):
    return {"class_type": "PreviewAny", "inputs": {"source": ref}}


MALFORMED = {
    # validation: rejected by POST /prompt (400) with node_errors naming the node
    "wrong value type": (lambda: set_input(graph_with({}), "5", steps="many"),
                         ValidationFailed, "node 5 (KSampler)", "steps"),
    "wrong link type": (lambda: graph_with({"9": refine(["4", 0])}), ValidationFailed, "node 9 (LoTTSLocalRefine)",
                        "LATENT"),
    "size below minimum": (lambda: set_input(graph_with({}), "4", width=8), ValidationFailed,
                           "node 4 (EmptyLatentImage)", "width"),
    "combo value not in list": (lambda: set_input(graph_with({}), "5", sampler_name="euler_x"), ValidationFailed,
                                "node 5 (KSampler)", "euler_x"),
    "missing required input": (lambda: graph_with({"9": {"class_type": "LoTTSDefectMask", "inputs": {
        "area_ratio": 0.5, "foreground_weight": 0.3, "signal": "attention", "self_attention_propagation": True}},
        "98": {"class_type": "PreviewImage", "inputs": {"images": ["9", 3]}}}), ValidationFailed,
        "node 9 (LoTTSDefectMask)", "attention"),
    "unknown node type": (lambda: graph_with({"9": {"class_type": "LoTTSNoSuchNode", "inputs": {}},
                                              "98": preview_any(["9", 0])}), ValidationFailed, "LoTTSNoSuchNode",
                          ("does not exist", "not found. The custom node may not be installed")),  # 0.3.75 / 0.33
    # execution: the node raises a ValueError with a message naming the input
    "empty prompt (search)": (lambda: set_input(search_graph(2, "robust/bad"), "31", prompt="  "), ExecutionFailed,
                              "node 31 (LoTTSSearch)", "prompt: is empty"),
    "empty prompt (capture)": (lambda: graph_with({"9": capture(prompt=""), "98": preview_any(["9", 1])}),
                               ExecutionFailed, "node 9 (LoTTSQualityAttentionCapture)", "prompt: is empty"),
    "mask batch mismatch": (lambda: graph_with({**mask_batch(3), "9": refine(["41", 0])}), ExecutionFailed,
                            "node 9 (LoTTSLocalRefine)", "mask: batch size 3 does not match samples batch size 2"),
    "mask aspect mismatch": (lambda: graph_with({"40": {"class_type": "SolidMask", "inputs": {
        "value": 1.0, "width": SIZE, "height": SIZE // 2}}, "9": refine(["40", 0])}), ExecutionFailed,
        "node 9 (LoTTSLocalRefine)", "aspect ratio"),
    "select-best latent batch mismatch": (lambda: graph_with({
        "40": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "41": {"class_type": "EmptyLatentImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": 3}},
        "42": {"class_type": "LoTTSTestContrastVerifier", "inputs": {}},
        "9": {"class_type": "LoTTSSelectBest", "inputs": {"images": ["40", 0], "verifier": ["42", 0], "prompt": "p",
                                                          "top_k": 1, "latent": ["41", 0]}},
        "98": preview_any(["9", 3])}), ExecutionFailed, "node 9 (LoTTSSelectBest)",
        "latent: batch size 3 does not match images batch size 2"),
    "too many harmonization steps": (lambda: graph_with({**mask_batch(1), "9": refine(["41", 0], steps=2, start=1,
                                                                                     global_steps=5)}),
                                     ExecutionFailed, "node 9 (LoTTSLocalRefine)", "global_steps: 5"),
    "unparsable noise levels": (lambda: graph_with({"9": capture(noise_levels="high"), "98": preview_any(["9", 1])}),
                                ExecutionFailed, "node 9 (LoTTSQualityAttentionCapture)", "noise_levels"),
    "unknown attention layer": (lambda: graph_with({"9": capture(layers="input:x"), "98": preview_any(["9", 1])}),
                                ExecutionFailed, "node 9 (LoTTSQualityAttentionCapture)", "layers:"),
    "template without {p}": (lambda: graph_with({"9": capture(high_quality_template="good"),
                                                 "98": preview_any(["9", 1])}),
                             ExecutionFailed, "node 9 (LoTTSQualityAttentionCapture)", "{p}"),
    "resize to a missing reference": (lambda: graph_with({**mask_batch(1), "9": {"class_type": "LoTTSRefineMask",
                                                                                 "inputs": {
        "mask": ["41", 0], "threshold": 0.5, "min_component_area": 0, "fill_holes": True, "grow_pixels": 0,
        "feather_pixels": 0, "resize_to": "match image input"}}, "98": preview_any(["9", 1])}), ExecutionFailed,
        "node 9 (LoTTSRefineMask)", "image: 'match image input' needs the optional image input"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_gives_a_clear_error_naming_the_node(comfy_server, case):
    make, error_type, where, phrase = MALFORMED[case]
    with pytest.raises(error_type) as failed:
        ComfyClient(comfy_server.url).run(make(), timeout=120)
    message = str(failed.value)
    phrases = phrase if isinstance(phrase, tuple) else (phrase,)  # the host's wording may differ by version
    assert where in message and any(p in message for p in phrases), message
    if error_type is ExecutionFailed:
        assert failed.value.details["exception_type"] in ("ValueError", "RuntimeError"), failed.value.details
        assert "Traceback" not in failed.value.details["exception_message"]


def test_masks_of_zeros_and_ones_are_valid_not_errors(comfy_server):
    """By design an empty mask passes the candidates through and a full one re-denoises everything."""
    graph = graph_with({
        "40": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": SIZE, "height": SIZE}},
        "41": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": SIZE, "height": SIZE}},
        "9": refine(["40", 0]), "10": refine(["41", 0]),
        "11": save(["5", 0], "robust/masks_candidates"), "12": save(["9", 0], "robust/masks_zeros"),
        "13": save(["10", 0], "robust/masks_ones")})
    entry = comfy_server.wait(comfy_server.submit(graph))
    candidates = latent_file(comfy_server, entry, "11").repeat_interleave(2, dim=0)
    torch.testing.assert_close(latent_file(comfy_server, entry, "12"), candidates, rtol=0, atol=1e-5)
    changed = (latent_file(comfy_server, entry, "13") - candidates).abs().flatten(1).amax(1)
    assert bool((changed > 1e-3).all())
