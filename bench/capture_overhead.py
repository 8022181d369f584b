"""Benchmark (not a test): cost of quality-prompt attention capture, as ratios measured in one run.

1. Time: a plain KSampler run of S steps vs the same run with the recording patches on every attention
   layer, and the capture node itself (3 prompts x noise levels) vs that KSampler run, per model family.
2. Peak memory at SDXL-like token counts (4096 image tokens): SA @ CA computed as an attention call with CA
   as the values (what the pack does) vs materialising the full HW x HW self-attention matrix. Each variant
   runs in three fresh subprocesses; the highest peak RSS above the process baseline is reported.

    .host/venv/bin/python bench/capture_overhead.py [--steps 10] [--repeats 3] [--latent 32]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

MEMORY_CHILD = """
import resource, sys, torch
sys.path.append({repo!r})
from lotts_ops import attention_maps
torch.manual_seed(0)
batch, heads, tokens, dim, variant = 2, 10, 4096, 64, {variant!r}
q = torch.randn(batch, heads, tokens, dim); k = torch.randn(batch, heads, tokens, dim)
ca = torch.rand(batch, tokens, 1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if variant == "propagate":
    out = attention_maps.propagate_with_self_attention(q, k, ca)
else:  # store the full self-attention matrix, then multiply
    probs = (q @ k.transpose(-1, -2) * dim ** -0.5).softmax(-1)
    out = (probs @ ca.unsqueeze(1)).mean(1)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) * 1024, float(out.sum()))
"""


def measure_memory(variant):
    code = MEMORY_CHILD.format(repo=str(REPO), variant=variant)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def interleaved_best_times(functions, repeats):
    """Best-of-repeats wall time of each function, run round-robin so load on this shared machine hits
    all of them alike."""
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for i, fn in enumerate(functions):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def time_family(env, family, steps, repeats, latent_size):
    import comfy.sample
    import nodes as comfy_nodes
    import torch

    pack = env.pack.nodes
    model, clip, _ = env.test_pack.tiny_models.tiny_family(family)
    (pos,) = comfy_nodes.CLIPTextEncode().encode(clip, "a red circle on a striped background")
    (neg,) = comfy_nodes.CLIPTextEncode().encode(clip, "")
    channels = 16 if family == "flux" else 4
    latent = torch.zeros(1, channels, latent_size, latent_size)
    noise = comfy.sample.prepare_noise(latent, 0)
    cfg = 1.0 if family == "flux" else 5.0

    def run(m):
        return comfy.sample.sample(m, noise, steps, cfg, "euler", "normal", pos, neg, latent, seed=0,
                                   disable_pbar=True)

    arch = pack._model_family.architecture(model)
    weights = {i: torch.ones(pos[0][0].shape[1]) / pos[0][0].shape[1] for i in range(2)}
    recorder = pack._capture.AttentionRecorder((latent_size, latent_size), weights, "all", arch)
    patched = pack._capture.patched_clone(model, recorder)
    node = pack.attention_capture.LoTTSQualityAttentionCapture()
    with torch.inference_mode():
        plain_samples = run(model)
        candidates = {"samples": plain_samples}
        t_plain, t_recording, t_capture = interleaved_best_times([
            lambda: run(model), lambda: run(patched),
            lambda: node.capture(model, clip, candidates, "a red circle on a striped background",
                                 "A high-quality image of {p}.", "A low-quality image of {p}.", "0.2, 0.3", 1, 0,
                                 "auto")], repeats)
    passes = 1 if cfg == 1.0 else 2
    return {"family": family, "latent": latent_size, "steps": steps,
            "recording_vs_plain_time": t_recording / t_plain,
            "capture_node_vs_plain_time": t_capture / t_plain,
            "capture_node_vs_plain_nfe": (2 * 3) / (steps * passes)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latent", type=int, default=32, help="latent side (32 = 256 px images)")
    args = parser.parse_args()
    sys.path.append(str(REPO / "tests"))
    import tempfile

    import harness

    env = harness.start_in_process(tempfile.mkdtemp(prefix="lotts-bench-"))
    rows = [time_family(env, family, args.steps, args.repeats, args.latent)
            for family in ("sd15", "sd21", "sdxl", "flux")]
    # peak RSS above the baseline varies from process to process (the allocator may reuse pages the baseline
    # already touched): the highest of three fresh processes per variant
    propagate_bytes, a = max(measure_memory("propagate") for _ in range(3))
    full_bytes, b = max(measure_memory("full") for _ in range(3))
    memory = {"tokens": 4096, "heads": 10, "batch": 2, "propagate_peak_bytes": propagate_bytes,
              "full_matrix_peak_bytes": full_bytes,
              # 0: the call never rose above the process's earlier high-water mark, so no ratio (not a huge one)
              "ratio_full_over_propagate": full_bytes / propagate_bytes if propagate_bytes else None,
              "results_agree": abs(a - b) <= 1e-3 * max(abs(a), 1.0)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "capture_overhead.json").write_text(json.dumps({"time": rows, "memory": memory}, indent=2))
    print("| family | recording patches vs plain KSampler (time) | capture node vs plain KSampler (time) | "
          "capture node vs plain KSampler (NFE) |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['family']} | {row['recording_vs_plain_time']:.2f}x | {row['capture_node_vs_plain_time']:.2f}x "
              f"| {row['capture_node_vs_plain_nfe']:.2f}x |")
    ratio = memory["ratio_full_over_propagate"]
    print(f"\nPeak memory above baseline, SA@CA at 4096 tokens, 10 heads, batch 2: as an attention call "
          f"{propagate_bytes / 2**20:.0f} MiB vs full matrix {full_bytes / 2**20:.0f} MiB "
          + (f"({ratio:.1f}x)" if ratio else "(the call stayed under the process's earlier peak)")
          + f", results agree: {memory['results_agree']}")


if __name__ == "__main__":
    main()
