"""Benchmark (not a test): what quality-prompt attention capture costs at REAL model sizes, as ratios in one run.

Full-size architectures with random weights, built from ComfyUI's own model classes (no weights exist here):
the SD1.5 UNet at 512 x 512 (64 x 64 latent), the SDXL UNet at 1024 x 1024 (128 x 128 latent) and FLUX.1 at its
real width (hidden 3072, 24 heads, 4096 T5 context) with a few double and single blocks at 1024 x 1024. The
conditionings are random tensors of the real shapes (77 CLIP tokens; 256 T5 tokens for FLUX).

Per family, at the settings its shipped workflow uses (workflows/api/lotts_<family>.json: capture levels, signal,
layers), each measurement in a fresh subprocess (peak RSS above the loaded model is per process):
- plain: one CFG sampling step (batch 2; FLUX: guidance-distilled, batch 1), time and peak memory;
- recording: the same step on the capture's patched clone with every recorded layer on ("auto" layers);
- capture: the paper's re-noised capture of one candidate at every shipped level (with attention: the original
  prompt, then the two quality prompts, per level), time and peak memory;
- within: one sampling step that also captures (capture within sampling: the CFG pass, recorded, plus the two
  quality prompts), time and peak memory; its cost above a plain step, once per level, is that mode's capture.
Derived per mode: capture / plain step (time, memory), the capture's share of a full run of 50 steps (FLUX: 28)
with one capture per candidate, and the recording overhead per recorded layer. Also SA @ CA memory at the real
token counts: the pack's attention-call form against materialising the HW x HW self-attention matrix.

    .host/venv/bin/python bench/real_size.py [--families sd15,sdxl,flux] [--dtype fp32|bf16] [--device cpu|cuda]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
KINDS = ("plain", "recording", "capture", "within")
FULL_RUN_STEPS = {"sd15": 50, "sdxl": 50, "flux": 28}
CFG = {"sd15": 5.0, "sdxl": 5.0, "flux": 1.0}
LATENT = {"sd15": 64, "sdxl": 128, "flux": 128}  # latent side: 512 px, 1024 px, 1024 px
FLUX_BLOCKS = {"double": 2, "single": 2}  # FLUX.1 has 19 + 38; the ratios are per block, so a few suffice

UNET_CONFIGS = {  # ComfyUI's own SD15 / SDXL unet_config (comfy/model_detection.py, supported_models.py)
    "sd15": {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
             "legacy": False, "adm_in_channels": None, "in_channels": 4, "model_channels": 320, "num_res_blocks": [2] * 4,
             "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1,
             "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8,
             "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "use_temporal_attention": False,
             "use_temporal_resblock": False},
    "sdxl": {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
             "legacy": False, "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4,
             "model_channels": 320, "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10],
             "channel_mult": [1, 2, 4], "transformer_depth_middle": 10, "use_linear_in_transformer": True,
             "context_dim": 2048, "num_head_channels": 64, "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
             "use_temporal_attention": False, "use_temporal_resblock": False},
    "flux": {"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 768, "context_in_dim": 4096,
             "hidden_size": 3072, "mlp_ratio": 4.0, "num_heads": 24, "depth": FLUX_BLOCKS["double"],
             "depth_single_blocks": FLUX_BLOCKS["single"], "axes_dim": [16, 56, 56], "theta": 10000,
             "patch_size": 2, "qkv_bias": True, "guidance_embed": True},
}


def _rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build(family, dtype_name, device_name, flux_blocks=None):
    """A full-size ModelPatcher with small random weights (ComfyUI's layers skip init) and real-shape conds;
    FLUX with `flux_blocks` (double, single) blocks, else FLUX_BLOCKS's."""
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    config_class = {"sd15": comfy.supported_models.SD15, "sdxl": comfy.supported_models.SDXL,
                    "flux": comfy.supported_models.Flux}[family]
    unet_config = dict(UNET_CONFIGS[family])
    if family == "flux" and flux_blocks:
        unet_config["depth"], unet_config["depth_single_blocks"] = flux_blocks
    config = config_class(unet_config)
    config.set_inference_dtype(dtype, None)
    base = config.get_model({}, "")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in base.diffusion_model.parameters():
            p.copy_((torch.randn(p.shape, generator=gen) * (0.02 if p.ndim > 1 else 0.0)).to(p.dtype))
    device = torch.device(device_name)
    base = base.to(device)
    model = comfy.model_patcher.ModelPatcher(base, load_device=device, offload_device=device)
    tokens, width = (256, 4096) if family == "flux" else (77, UNET_CONFIGS[family]["context_dim"])

    def cond(seed):
        g = torch.Generator().manual_seed(seed)
        extra = {}
        if family == "sdxl":
            extra = {"pooled_output": torch.randn(1, 1280, generator=g), "width": 1024, "height": 1024}
        if family == "flux":
            extra = {"pooled_output": torch.randn(1, 768, generator=g), "guidance": 3.5}
        return [[torch.randn(1, tokens, width, generator=g), extra]]

    return model, cond, tokens


def shipped(family):
    """(capture levels, signal, layers) of the family's shipped workflow."""
    graph = json.loads((REPO / "workflows" / "api" / f"lotts_{family}.json").read_text())
    search = next(n["inputs"] for n in graph.values() if n["class_type"] == "LoTTSSearch")
    levels = [float(x) for x in search["noise_levels"].replace(";", ",").split(",") if x.strip()]
    return levels, search["signal"], search["layers"]


def child(family, kind, dtype_name, device_name, flux_blocks=None):
    """One measurement in this process; prints one JSON line."""
    sys.path.append(str(REPO / "tests"))
    import tempfile

    import harness
    import torch

    torch.set_num_threads(int(os.environ.get("LOTTS_BENCH_THREADS", "1")))
    env = harness.start_in_process(tempfile.mkdtemp(prefix="lotts-realsize-"))
    import comfy.sample

    pack = env.pack.nodes
    torch.manual_seed(0)
    model, cond, tokens = build(family, dtype_name, device_name, flux_blocks)
    side = LATENT[family] // int(os.environ.get("LOTTS_REAL_SIZE_SHRINK", "1"))  # >1 only for quick checks
    channels = 16 if family == "flux" else 4
    latent = torch.randn(1, channels, side, side, generator=torch.Generator().manual_seed(1))
    cuda = device_name.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_mem = torch.cuda.memory_allocated()
    else:
        base_mem = _rss_bytes()
    weights = {i: torch.ones(tokens) / tokens for i in range(3)}
    levels, signal, layers = shipped(family)
    attention = signal != "noise difference"
    arch = pack._model_family.architecture(model)
    selection = pack._model_family.parse_layer_selection(layers, arch)
    recorder = None
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        if kind == "within":
            import comfy.samplers

            counted, counter = pack._counting.counting_clone(model)
            m = counted
            if attention:
                recorder = pack._capture.AttentionRecorder((side, side), weights, selection, arch)
                recorder.active = False
                m = pack._capture.patched_clone(counted, recorder)
            sigma = float(model.get_model_object("model_sampling").percent_to_sigma(1.0 - levels[0]))
            guider = pack._sampling_capture.CapturingGuider(m, [sigma], recorder, counter)
            guider.set_all_conds(cond(1), cond(2), cond(3), cond(4))
            guider.set_cfg(CFG[family])
            guider.sample(comfy.sample.prepare_noise(latent, 0), latent, comfy.samplers.sampler_object("euler"),
                          torch.tensor([sigma, 0.0]), disable_pbar=True, seed=0)
            assert guider.passes == 1
        elif kind in ("plain", "recording"):
            m = model
            if kind == "recording":
                arch = pack._model_family.architecture(model)
                recorder = pack._capture.AttentionRecorder((side, side), weights, None, arch)
                m = pack._capture.patched_clone(model, recorder)
            noise = comfy.sample.prepare_noise(latent, 0)
            comfy.sample.sample(m, noise, 1, CFG[family], "euler", "normal", cond(1), cond(2), latent, seed=0,
                                disable_pbar=True)
        else:
            result = pack._capture.capture(model, [cond(1), cond(2), cond(3)], weights, {"samples": latent}, levels, 1,
                                           0, selection, attention)
    if cuda:
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = (torch.cuda.max_memory_allocated() if cuda else _rss_bytes()) - base_mem
    out = {"family": family, "kind": kind, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_bytes_above_model": peak,
           "model_bytes": sum(p.numel() * p.element_size() for p in model.model.diffusion_model.parameters())}
    if kind == "capture":
        out["layers_recorded"] = len(result["layers"])
        out["model_evaluations"] = result["model_evaluations"]
    if recorder is not None:
        out["layers_recorded"] = len(recorder.layers_seen)
    print("RESULT " + json.dumps(out), flush=True)


SA_CHILD = """
import resource, sys, time, torch
sys.path.append({repo!r})
from lotts_ops import attention_maps
batch, heads, tokens, dim, variant = 3, {heads}, {tokens}, {dim}, {variant!r}
q = torch.randn(batch, heads, tokens, dim); k = torch.randn(batch, heads, tokens, dim)
ca = torch.rand(batch, tokens, 1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if variant == "propagate":
    out = attention_maps.propagate_with_self_attention(q, k, ca)
else:
    probs = (q @ k.transpose(-1, -2) * dim ** -0.5).softmax(-1)
    out = (probs @ ca.unsqueeze(1)).mean(1)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024, float(out.sum()))
"""


def sa_memory(tokens, heads, dim):
    out = {}
    for variant in ("propagate", "dense"):
        code = SA_CHILD.format(repo=str(REPO), heads=heads, tokens=tokens, dim=dim, variant=variant)
        line = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        out[variant] = int(line[0])
    return {"tokens": tokens, "heads": heads, "dim": dim, "batch": 3, "propagate_peak_bytes": out["propagate"],
            "dense_peak_bytes": out["dense"], "dense_matrix_bytes": 3 * heads * tokens * tokens * 4,
            "dense_over_propagate": out["dense"] / max(out["propagate"], 1)}


def run_result(cmd):
    """Run a measuring child process (fresh memory baseline) and return the JSON of its last 'RESULT ' line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result = json.loads(lines[-1][7:])
    print(json.dumps(result), flush=True)
    return result


def run_child(family, kind, opts, flux_blocks=None):
    blocks = ["--flux-blocks", *map(str, flux_blocks)] if flux_blocks else []
    return run_result([sys.executable, __file__, "--child", family, kind, "--dtype", opts.dtype, "--device", opts.device,
                       *blocks])


def share_of_full_run(capture_seconds, plain_step_seconds, steps):
    """A capture's share of a full run with one capture per candidate: capture / (capture + steps x a plain step)."""
    return capture_seconds / (capture_seconds + steps * plain_step_seconds)


def derive(family, plain, recording, capture, within):
    steps = FULL_RUN_STEPS[family]
    levels, signal, layers = shipped(family)
    within_extra = len(levels) * max(within["seconds"] - plain["seconds"], 0.0)
    return {"family": family, "latent": LATENT[family], "full_run_steps": steps, "shipped_defaults": True,
            "levels": levels, "signal": signal, "layers": layers,
            "within_sampling": {
                "capture_step_seconds": within["seconds"], "capture_seconds": within_extra,
                "capture_share_of_full_run": share_of_full_run(within_extra, plain["seconds"], steps),
                "capture_peak_memory_ratio": within["peak_bytes_above_model"] / max(plain["peak_bytes_above_model"], 1),
                "capture_peak_bytes_above_model": within["peak_bytes_above_model"]},
            "plain_step_seconds": plain["seconds"], "capture_seconds": capture["seconds"],
            "capture_vs_plain_step_time": capture["seconds"] / plain["seconds"],
            "capture_share_of_full_run": share_of_full_run(capture["seconds"], plain["seconds"], steps),
            "capture_peak_memory_ratio": capture["peak_bytes_above_model"] / max(plain["peak_bytes_above_model"], 1),
            "capture_peak_bytes_above_model": capture["peak_bytes_above_model"],
            "plain_peak_bytes_above_model": plain["peak_bytes_above_model"],
            "recording_overhead_per_layer": (recording["seconds"] / plain["seconds"] - 1) / max(recording["layers_recorded"], 1),
            "layers_recorded": recording["layers_recorded"], "model_bytes": plain["model_bytes"]}


def report(result):
    lines = [f"# Capture cost at real model sizes ({result['device_name']}, {result['dtype']}, {result['threads']} threads)",
             "", "Random weights, full-size ComfyUI architectures; ratios measured in one run. "
             f"FLUX.1 at full width with {FLUX_BLOCKS['double']} double and {FLUX_BLOCKS['single']} single blocks.", "",
             "At each family's shipped settings (levels, signal, layers): the paper's re-noised capture, and capture "
             "within sampling (its extra cost over a plain step, once per level).", "",
             "| family | latent | levels, signal | plain CFG step (s) | re-noised capture (s) | its share of a full run "
             "| its peak memory / a step's | within sampling: capture (s) | its share | its peak memory / a step's "
             "| recording overhead per layer | layers |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["families"]:
        w = r["within_sampling"]
        lines.append(f"| {r['family']} | {r['latent']}x{r['latent']} | {', '.join(map(str, r['levels']))}; "
                     f"{r['signal']} | {r['plain_step_seconds']:.2f} | {r['capture_seconds']:.2f} | "
                     f"{100 * r['capture_share_of_full_run']:.1f} % of {r['full_run_steps']} steps + capture | "
                     f"{r['capture_peak_memory_ratio']:.2f}x | {w['capture_seconds']:.2f} | "
                     f"{100 * w['capture_share_of_full_run']:.1f} % | {w['capture_peak_memory_ratio']:.2f}x | "
                     f"{100 * r['recording_overhead_per_layer']:.2f} % | {r['layers_recorded']} |")
    lines += ["", "SA @ CA at real token counts (batch 3):", "",
              "| tokens | heads x dim | attention-call form (peak) | dense HW x HW (peak) | dense matrix alone |",
              "|---|---|---|---|---|"]
    for m in result["sa_memory"]:
        lines.append(f"| {m['tokens']} | {m['heads']} x {m['dim']} | {m['propagate_peak_bytes'] / 2**20:.0f} MiB | "
                     f"{m['dense_peak_bytes'] / 2**20:.0f} MiB | {m['dense_matrix_bytes'] / 2**20:.0f} MiB |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="sd15,sdxl,flux")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="real_size.json")
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "KIND"), help=argparse.SUPPRESS)
    parser.add_argument("--flux-blocks", nargs=2, type=int, help=argparse.SUPPRESS)  # a child's FLUX depth
    opts = parser.parse_args()
    if opts.child:
        return child(*opts.child, opts.dtype, opts.device, opts.flux_blocks)
    import torch

    families = []
    for family in opts.families.split(","):
        runs = {kind: run_child(family, kind, opts) for kind in KINDS}
        families.append(derive(family, *(runs[kind] for kind in KINDS)))
    sa = [sa_memory(4096, 8, 40), sa_memory(4096, 10, 64)] if opts.device == "cpu" else []
    device_name = torch.cuda.get_device_name() if opts.device.startswith("cuda") else "CPU"
    threads = int(os.environ.get("LOTTS_BENCH_THREADS", "1"))  # what each measuring child runs with
    result = {"device": opts.device, "device_name": device_name, "dtype": opts.dtype, "threads": threads,
              "families": families, "sa_memory": sa,
              **{r["family"]: {**{k: r[k] for k in ("capture_share_of_full_run", "capture_peak_memory_ratio",
                                                     "shipped_defaults")},
                              "within_sampling": {k: r["within_sampling"][k] for k in ("capture_share_of_full_run",
                                                                                        "capture_peak_memory_ratio")}}
                 for r in families}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / opts.out
    path.write_text(json.dumps(result, indent=1) + "\n")
    text = report(result)
    path.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
