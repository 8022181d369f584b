"""Regenerate the UI-format workflows (workflows/*.json) from the API-format sources (workflows/api/*.json).

The API graphs are the source of truth. The UI files need the server's node definitions (/object_info) for
widget order, socket types and display names, so this script asks a running ComfyUI, or starts a temporary
one from the repository's test host (.host/, see scripts/setup_host.sh):

    python workflows/build_ui.py                       # temporary host server, rewrite the UI files
    python workflows/build_ui.py --server http://127.0.0.1:8188
    python workflows/build_ui.py --check               # exit 1 if a UI file is out of date or a graph invalid

tests/comfy/test_workflows.py runs the same conversion against the live test server and fails on any
difference, so edit workflows/api/*.json and rerun this script.
"""

import argparse
import json
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
API_DIR = HERE / "api"
sys.path.insert(0, str(REPO))
from lotts_client import workflow  # noqa: E402

#: Output types of node types that ship separately and may not be registered on the server yet. They are
#: used only when the server does not know the node; their widgets are then taken from the API graph.
PENDING_OUTPUTS = {
    "LoTTSDemoModelLoader": ["MODEL", "CLIP", "VAE"],
    "LoTTSDemoWorldVerifier": ["LOTTS_VERIFIER"],
    "LoTTSNIQEVerifier": ["LOTTS_VERIFIER"],
    "LoTTSBRISQUEVerifier": ["LOTTS_VERIFIER"],
    "LoTTSCLIPScoreVerifierLoader": ["LOTTS_VERIFIER"],
    "LoTTSPickScoreVerifierLoader": ["LOTTS_VERIFIER"],
    "LoTTSAestheticVerifierLoader": ["LOTTS_VERIFIER"],
    "LoTTSImageRewardVerifierLoader": ["LOTTS_VERIFIER"],
    "LoTTSHPSv2VerifierLoader": ["LOTTS_VERIFIER"],
    "LoTTSVerifierEnsemble": ["LOTTS_VERIFIER"],
}

_SETTINGS = ("Recommended LoTTS settings (paper defaults): k = 2 refinements, r = 0.5 of the area, 3 seeds "
             "= budget 9 samples per prompt (Best-of-N needs 25-36 for the same quality). ")
_VERIFIER = ("ImageReward.pt with bert-base-uncased's vocab.txt beside it; or swap in another LoTTS "
             "verifier: NIQE and BRISQUE need no model file")
NOTES = {
    "lotts_demo_pipeline": [("LoTTS, stage by stage (demo model)", (
        "**The whole LoTTS method from separate nodes**, on the tiny demo model (runs on a CPU).\n\n"
        "1. *Sample Candidates*: 3 seeds as a batch (standard KSampler).\n"
        "2. *Quality-Prompt Attention*: re-noise each candidate, read attention under the prompt, "
        "'A high-quality image of {p}.' and 'A low-quality image of {p}.'.\n"
        "3. *Defect Mask*: where the low-quality prompt attends more; the top r = 50 % is re-denoised.\n"
        "4. *Localized Refine*: k = 2 re-denoisings per candidate inside the mask, from step t0.\n"
        "5. *Select Best*: the verifier picks the best of 3 originals + 6 refinements.\n\n"
        "Outputs: originals, heatmaps, masks, all candidates with scores, the chosen image."))],
    "lotts_demo_search": [("LoTTS Search (demo model)", (
        "The same method in one node: **LoTTS Search** samples `seeds` candidates, localizes defects, "
        "re-denoises them `refinements` times per round and keeps the verifier's best. " + _SETTINGS))],
    "lotts_vs_best_of_n_demo": [("LoTTS vs Best-of-N (demo model)", (
        "Both searches at the same budget of 9 samples per prompt, from the same seeds and verifier. The "
        "side-by-side image is LoTTS | Best-of-N; each report shows the model evaluations (NFE) spent: "
        "LoTTS re-denoises only from step t0, so it costs less."))],
    "lotts_sd15": [("LoTTS for Stable Diffusion 1.5", (
        "Put `v1-5-pruned-emaonly.safetensors` in models/checkpoints and the verifier's files in "
        "models/lotts_verifiers/ (" + _VERIFIER + "). " + _SETTINGS + "SD1.5: t0 = 0.5 of 50 steps, cfg 7."))],
    "lotts_sd21": [("LoTTS for Stable Diffusion 2.1", (
        "Put `v2-1_512-ema-pruned.safetensors` in models/checkpoints and the verifier's files in "
        "models/lotts_verifiers/ (" + _VERIFIER + "). " + _SETTINGS + "SD2.1: t0 = step 25 of 50 (paper), cfg 7."))],
    "lotts_sdxl": [("LoTTS for SDXL", (
        "Put `sd_xl_base_1.0.safetensors` in models/checkpoints and the verifier's files in "
        "models/lotts_verifiers/ (" + _VERIFIER + "). " + _SETTINGS + "SDXL: t0 = step 15 of 50 (paper), cfg 6, 1024 x 1024."))],
    "lotts_flux": [("LoTTS for FLUX.1-dev", (
        "Put `flux1-dev.safetensors` in models/diffusion_models, `clip_l.safetensors` and "
        "`t5xxl_fp16.safetensors` in models/text_encoders, `ae.safetensors` in models/vae, the verifier's "
        "files in models/lotts_verifiers/ (" + _VERIFIER + "). " + _SETTINGS +
        "FLUX: t0 = step 1 of 28 (paper), cfg 1 (guidance 3.5 in FluxGuidance; the negative prompt is unused)."))],
    "lotts_flux2": [("LoTTS for FLUX.2 Dev", (
        "Put `flux2_dev_fp8mixed.safetensors` in models/diffusion_models, "
        "`mistral_3_small_flux2_bf16.safetensors` in models/text_encoders, `flux2-vae.safetensors` in models/vae, "
        "the verifier's files in models/lotts_verifiers/ (" + _VERIFIER + "). Signal: noise difference (attention "
        "is read on FLUX.2 too, but neither is measured there yet). cfg 1 with FluxGuidance 4; t0 = step 1 of 20 (FLUX.1's best, not yet "
        "measured on FLUX.2). Latents are 1/16 of the image: masks and previews follow."))],
    "lotts_qwen_image": [("LoTTS for Qwen-Image", (
        "Put `qwen_image_fp8_e4m3fn.safetensors` in models/diffusion_models, "
        "`qwen_2.5_vl_7b_fp8_scaled.safetensors` in models/text_encoders, `qwen_image_vae.safetensors` in "
        "models/vae, the verifier's files in models/lotts_verifiers/ (" + _VERIFIER + "). Signal: noise "
        "difference (attention is read on Qwen-Image too; neither is measured there yet). Shift 3.1, cfg 2.5, 20 steps, 1328 x 1328 as ComfyUI's template; t0 = step 2 (not yet "
        "measured). Each candidate is re-drawn under its own mask (5-D latents)."))],
    "lotts_zimage": [("LoTTS for Z-Image Turbo", (
        "Put `z_image_turbo_bf16.safetensors` in models/diffusion_models, `qwen_3_4b.safetensors` in "
        "models/text_encoders, `ae.safetensors` (the FLUX.1 VAE) in models/vae, the verifier's files in "
        "models/lotts_verifiers/ (" + _VERIFIER + "). Signal: noise difference (attention is read on ComfyUI 0.33 "
        "and newer; neither is measured there yet). Shift 3, cfg 1, 8 steps of "
        "res_multistep as ComfyUI's template; t0 = step 1 of 8 (not yet measured)."))],
}


#: Depth columns per band, per workflow (default: one band, left to right).
WRAP_COLUMNS = {}


def stand_ins(graphs, object_info):
    """Minimal /object_info entries for pending node types the server lacks: literal inputs become widgets
    (STRING/INT/FLOAT/BOOLEAN by value) in the API graph's order."""
    entries = {}
    for graph in graphs:
        for node in graph.values():
            class_type = node["class_type"]
            if class_type in object_info or class_type not in PENDING_OUTPUTS or class_type in entries:
                continue
            required = {}
            for name, value in node["inputs"].items():
                if workflow.is_link(value):
                    required[name] = ["*", {}]
                else:
                    kind = ("BOOLEAN" if isinstance(value, bool) else "INT" if isinstance(value, int) else
                            "FLOAT" if isinstance(value, float) else "STRING")
                    required[name] = [kind, {"default": value}]
            outputs = PENDING_OUTPUTS[class_type]
            entries[class_type] = {"input": {"required": required}, "input_order": {"required": list(required)},
                                   "output": outputs, "output_name": outputs, "name": class_type,
                                   "display_name": class_type, "output_node": False}
    return entries


def load_api_graphs():
    return {path.stem: json.loads(path.read_text()) for path in sorted(API_DIR.glob("*.json"))}


def build(object_info, graphs=None):
    """{name: UI document} for every API graph (deterministic: same inputs, same bytes)."""
    graphs = graphs if graphs is not None else load_api_graphs()
    extra = stand_ins(graphs.values(), object_info)
    return {name: workflow.api_to_ui(graph, object_info, notes=NOTES.get(name, ()), stand_ins=extra,
                                     workflow_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"lotts-workflow/{name}")),
                                     wrap_columns=WRAP_COLUMNS.get(name))
            for name, graph in graphs.items()}


def problems(object_info, graphs=None):
    """{name: [problem]} for graphs that do not validate against the server (pending nodes tolerated)."""
    graphs = graphs if graphs is not None else load_api_graphs()
    pending = {k: v for k, v in PENDING_OUTPUTS.items() if k not in object_info}
    found = {name: workflow.validate_api(graph, object_info, pending) for name, graph in graphs.items()}
    return {name: items for name, items in found.items() if items}


def fetch_object_info(url):
    with urllib.request.urlopen(url.rstrip("/") + "/object_info", timeout=60) as response:  # noqa: S310
        return json.loads(response.read())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="a running ComfyUI with the pack (default: start the test host)")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference or problem")
    args = parser.parse_args(argv)
    if args.server:
        object_info = fetch_object_info(args.server)
    else:
        sys.path.insert(0, str(REPO / "tests"))
        import harness

        with tempfile.TemporaryDirectory(prefix="lotts-build-ui-") as tmp:
            server = harness.ComfyServer(tmp).start()
            try:
                object_info = server.get("/object_info")
            finally:
                server.stop()
    status = 0
    for name, items in problems(object_info).items():
        status = 1
        for item in items:
            print(f"{name}: {item}", file=sys.stderr)
    for name, document in build(object_info).items():
        path = HERE / f"{name}.json"
        text = workflow.dumps(document)
        if args.check:
            if not path.exists() or path.read_text() != text:
                print(f"{path.name} is out of date: run python workflows/build_ui.py", file=sys.stderr)
                status = 1
        elif not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    pending = sorted({n["class_type"] for g in load_api_graphs().values() for n in g.values()}
                     & (set(PENDING_OUTPUTS) - set(object_info)))
    if pending:
        print(f"note: not registered on this server (stand-ins used): {', '.join(pending)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
