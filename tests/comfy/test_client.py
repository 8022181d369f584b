"""The API-mode client (lotts_client) against two real ComfyUI servers on tiny models: overrides, websocket
progress, downloads, error reports that name the node, and a batch spread over both servers."""

import json
import os
import subprocess
import sys

import harness
import pytest

sys.path.insert(0, str(harness.REPO))
from lotts_client import ComfyClient, ExecutionFailed, Job, ValidationFailed, overrides, run_batch  # noqa: E402
from lotts_client import workflow as wf  # noqa: E402

pytestmark = pytest.mark.server
PYTHON = sys.executable


def tiny_graph(prompt="a red circle", seed=1, steps=2):
    """Tiny sd15: a titled Prompt node feeds the encoder and a LoTTS node (like the shipped workflows)."""
    return {
        "1": {"class_type": "LoTTSTestTinyModels", "inputs": {"family": "sd15"}, "_meta": {"title": "Tiny Models"}},
        "2": {"class_type": "PrimitiveStringMultiline", "inputs": {"value": prompt}, "_meta": {"title": "Prompt"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": ["2", 0], "clip": ["1", 1]},
              "_meta": {"title": "Encode Prompt"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]},
              "_meta": {"title": "Negative Prompt"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 1},
              "_meta": {"title": "Empty Latent"}},
        "6": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": seed, "steps": steps, "cfg": 3.0, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["3", 0], "negative": ["4", 0], "latent_image": ["5", 0],
            "denoise": 1.0}, "_meta": {"title": "KSampler"}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]},
              "_meta": {"title": "Decode"}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "client/tiny"},
              "_meta": {"title": "Save"}},
        "9": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}, "_meta": {"title": "Echo Prompt"}},
    }


@pytest.fixture(scope="module")
def second_server(tmp_path_factory):
    # one torch thread: tiny models gain nothing from more, and on a shared 2-core box OpenMP threads that wait
    # for each other make every step many times slower
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        server = harness.ComfyServer(tmp_path_factory.mktemp("server_b")).start()
    finally:
        if saved is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    yield server
    server.stop()


def cli(*args, timeout=240):
    return subprocess.run([PYTHON, "-m", "lotts_client", *map(str, args)], cwd=harness.REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_overrides_find_targets_by_title_class_and_id():
    graph = json.loads((harness.REPO / "workflows/api/lotts_sd15.json").read_text())
    changed = overrides.apply(graph, prompt="a red fox", negative="ugly", seed=9, budget=15,
                              model="my.safetensors", sets=["LoTTS Search (budget 9: 3 seeds x (1 + 2 refinements))"
                                                            ".rounds=1", "LoTTSSearch.cfg=5.5", "5.width=768"])
    by_class = {n["class_type"]: n["inputs"] for n in changed.values()}
    assert changed["2"]["inputs"]["value"] == "a red fox"  # the titled Prompt node; the LoTTS prompt is linked
    assert by_class["LoTTSSearch"]["prompt"] == ["2", 0]
    assert changed["4"]["inputs"]["text"] == "ugly"
    assert by_class["LoTTSSearch"]["seed"] == 9 and by_class["LoTTSSearch"]["seeds"] == 5  # 15 = 5 x (1 + 2)
    assert by_class["LoTTSSearch"]["cfg"] == 5.5 and changed["5"]["inputs"]["width"] == 768
    assert by_class["CheckpointLoaderSimple"]["ckpt_name"] == "my.safetensors"
    assert graph["2"]["inputs"]["value"] != "a red fox", "overrides must not edit their input"
    bon = json.loads((harness.REPO / "workflows/api/lotts_vs_best_of_n_demo.json").read_text())
    assert next(n for n in overrides.set_budget(bon, 25).values() if n["class_type"] == "LoTTSBestOfN")[
        "inputs"]["n"] == 25
    # without titles: the encoder feeding `positive` (through FluxGuidance) and literal LoTTS prompt inputs
    flux = json.loads((harness.REPO / "workflows/api/lotts_flux.json").read_text())
    for node in flux.values():
        node.pop("_meta")
    flux["10"]["inputs"]["prompt"] = "old"
    flux["5"]["inputs"]["text"] = "old"
    changed = overrides.set_prompt(flux, "a lighthouse")
    assert changed["5"]["inputs"]["text"] == "a lighthouse" and changed["10"]["inputs"]["prompt"] == "a lighthouse"
    assert changed["7"]["inputs"]["text"] == ""  # the negative encoder is untouched
    for bad in (lambda: overrides.set_input(graph, "Nope.steps=3"), lambda: overrides.set_input(graph, "3.text=x"),
                lambda: overrides.set_budget(tiny_graph(), 9)):
        with pytest.raises(overrides.OverrideError):
            bad()


def test_set_writes_search_options_to_the_options_node(comfy_env):
    """--set "LoTTS Search.nfe_budget=..." lands on the LoTTS Search Options node feeding the search (one is added
    and wired where none is); the client's list of moved inputs is the pack's."""
    assert overrides.SEARCH_OPTION_INPUTS == set(comfy_env.pack.nodes._search_options.DEFAULTS)
    wired = json.loads((harness.REPO / "workflows/api/lotts_sd15.json").read_text())
    options_id = next(i for i, n in wired.items() if n["class_type"] == "LoTTSSearchOptions")
    changed = overrides.set_input(wired, "LoTTSSearch.nfe_budget=400")
    assert changed[options_id]["inputs"]["nfe_budget"] == 400
    assert "nfe_budget" not in next(n for n in changed.values() if n["class_type"] == "LoTTSSearch")["inputs"]
    bare = json.loads((harness.REPO / "workflows/api/lotts_sdxl.json").read_text())
    changed = overrides.set_input(bare, "LoTTSSearch.crop_padding=2")
    search = next(n for n in changed.values() if n["class_type"] == "LoTTSSearch")
    added = changed[search["inputs"]["options"][0]]
    assert added == {"class_type": "LoTTSSearchOptions", "inputs": {"crop_padding": 2},
                     "_meta": {"title": "LoTTS Search Options"}}
    assert "options" not in next(n for n in bare.values() if n["class_type"] == "LoTTSSearch")["inputs"]


def test_check_says_where_a_moved_input_went(comfy_server):
    graph = json.loads((harness.REPO / "workflows/api/lotts_sdxl.json").read_text())
    next(n for n in graph.values() if n["class_type"] == "LoTTSSearch")["inputs"]["crop_padding"] = 2
    problems = wf.validate_api(graph, ComfyClient(comfy_server.url).object_info())
    assert any("has no input named 'crop_padding' (it moved to LoTTS Search Options; connect one to this node's "
               "'options')" in p for p in problems), problems


def test_run_follows_websocket_and_downloads(comfy_server, tmp_path):
    client = ComfyClient(comfy_server.url)
    events = []
    graph = overrides.apply(tiny_graph(), prompt="a blue square", seed=5)
    result = client.run(graph, output_dir=str(tmp_path), timeout=120, on_event=events.append)
    kinds = [e["type"] for e in events]
    assert "execution_start" in kinds and "executing" in kinds and "progress" in kinds
    assert any(e["type"] == "progress" and e["data"]["node"] == "6" for e in events)  # the sampler's steps
    assert result.texts["9"] == ["a blue square"]
    [saved] = result.files
    assert saved.path and open(saved.path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    on_server = comfy_server.base_dir / "output" / saved.subfolder / saved.filename
    assert on_server.read_bytes() == open(saved.path, "rb").read()
    history = comfy_server.get(f"/history/{result.prompt_id}")[result.prompt_id]
    assert history["prompt"][2]["6"]["inputs"]["seed"] == 5


def test_errors_name_the_node(comfy_server):
    client = ComfyClient(comfy_server.url)
    graph = tiny_graph()
    graph["6"]["inputs"]["steps"] = 0
    graph["6"]["inputs"]["sampler_name"] = "no_such_sampler"
    with pytest.raises(ValidationFailed) as rejected:
        client.run(graph, timeout=60)
    message = str(rejected.value)
    assert "node 6 (KSampler)" in message and "steps" in message and "no_such_sampler" in message
    graph = tiny_graph()
    graph["10"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 16}}
    graph["11"] = {"class_type": "LoTTSLocalRefine", "_meta": {"title": "Refine"}, "inputs": {
        "model": ["1", 0], "positive": ["3", 0], "negative": ["4", 0], "samples": ["6", 0], "mask": ["10", 0],
        "seed": 0, "steps": 2, "cfg": 3.0, "sampler_name": "euler", "scheduler": "normal", "start_at_step": 1,
        "start_fraction": 0.0, "refinements": 1, "global_steps": 0}}
    graph["12"] = {"class_type": "SaveLatent", "inputs": {"samples": ["11", 0], "filename_prefix": "client/bad"}}
    with pytest.raises(ExecutionFailed) as failed:
        client.run(graph, timeout=120)
    assert "node 11 (LoTTSLocalRefine, 'Refine') raised ValueError: mask:" in str(failed.value)
    assert "aspect ratio" in str(failed.value)
    assert failed.value.details["node_id"] == "11"


def test_cli_single_run_with_overrides_ui_workflow_and_error_exit(comfy_server, tmp_path):
    api_path = tmp_path / "tiny_api.json"
    api_path.write_text(json.dumps(tiny_graph()))
    ui_path = tmp_path / "tiny_ui.json"  # a UI file is converted with the server's /object_info
    ui_path.write_text(json.dumps(wf.api_to_ui(tiny_graph(), comfy_server.get("/object_info"))))
    out = tmp_path / "out"
    done = cli(ui_path, "--server", comfy_server.url, "--prompt", "a green triangle", "--seed", 3,
               "--set", "KSampler.steps=1", "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    assert result["status"] == "success" and result["texts"] == {"9": ["a green triangle"]}
    assert all((out / "000_a_green_triangle").joinpath(*p.split("/")[-2:]).exists() for p in result["files"])
    assert "node 6 KSampler" in done.stderr  # progress lines name the node being executed
    assert json.loads((out / "results.json").read_text())[0]["prompt_id"] == result["prompt_id"]
    shown = cli(api_path, "--prompt", "x", "--budget", "9", "--print-graph")
    assert shown.returncode == 2 and "no LoTTSSearch or LoTTSBestOfN" in shown.stderr
    checked = cli(api_path, "--server", comfy_server.url, "--set", "KSampler.cfg=-1", "--check")
    assert checked.returncode == 1 and "'cfg' = -1 is below the minimum 0.0" in checked.stderr
    failed = cli(api_path, "--server", comfy_server.url, "--set", "KSampler.sampler_name=nope", "-q")
    assert failed.returncode == 1 and "node 6 (KSampler" in failed.stderr and "nope" in failed.stderr


def test_batch_spreads_prompts_over_two_servers(comfy_server, second_server, tmp_path):
    prompts = [f"shape number {i}" for i in range(6)]
    prompts_file = tmp_path / "prompts.txt"
    prompts_file.write_text("# one prompt per line\n" + "\n".join(prompts) + "\n\n")
    graph_path = tmp_path / "graph.json"
    graph_path.write_text(json.dumps(tiny_graph(steps=1)))
    out = tmp_path / "out"
    done = cli(graph_path, "--servers", f"{comfy_server.url},{second_server.url}", "--prompts-file", prompts_file,
               "-o", out, "--json", "-q")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [r["label"] for r in results] == prompts
    assert all(r["status"] == "success" for r in results)
    assert {r["server"] for r in results} == {comfy_server.url, second_server.url}
    for r in results:  # each job ran its own prompt and its files were downloaded
        assert r["texts"] == {"9": [r["label"]]}
        assert len(r["files"]) == 1 and (out / f"{r['index']:03d}_{r['label'].replace(' ', '_')}").is_dir()


def test_batch_retries_on_a_dead_server_and_keeps_going(comfy_server, tmp_path):
    dead = f"http://127.0.0.1:{harness.free_port()}"
    jobs = [Job(i, overrides.set_prompt(tiny_graph(steps=1), f"retry {i}"), f"retry {i}") for i in range(3)]
    bad = tiny_graph(steps=1)
    bad["6"]["inputs"]["cfg"] = "high"
    jobs.append(Job(3, bad, "bad cfg"))
    results = run_batch([dead, comfy_server.url], jobs, timeout=120, retries=2, request_timeout=5)
    assert [r.status for r in results] == ["success"] * 3 + ["failed"]
    assert all(r.server == comfy_server.url for r in results[:3])
    assert results[3].error_kind == "validation" and "node 6 (KSampler)" in results[3].error
    assert results[3].attempts == 1, "a rejected graph is not retried"
