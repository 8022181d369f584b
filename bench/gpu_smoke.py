"""GPU smoke check (a device machine, not CI): full-size random-weight SDXL and FLUX.1 through LoTTS Search on CUDA,
with ComfyUI's GPU defaults on and again with CUDA graphs and dynamic VRAM off, and a small slice on the CPU.

ComfyUI's GPU defaults (0.33: CUDA graphs, dynamic VRAM, async offload) replay recorded work and skip Python code;
the capture's patches must still run. Per family and mode, in a fresh process (ComfyUI reads its args once):
- LoTTS Search (nodes/_search.lotts: 2 seeds, 4 euler steps, capture at level 0.3 with "attention + noise
  difference", k = 1, one round) on a full-size latent (SDXL 128 x 128, FLUX.1 128 x 128 with 2 + 2 blocks at full
  width), a random-weight KL-f8 VAE of the family's channels and a contrast verifier: it must finish, count NFE
  exactly (the counter against the schedule) and give non-empty masks;
- the capture alone on a fixed latent: its maps (low-quality cross-attention, noise difference) must be finite and
  non-constant, and agree between the modes (Pearson r >= AGREE_MODES);
- the same capture on a 32 x 32 slice on CUDA and on the CPU (fp32 both): r >= AGREE_CPU.
Writes bench/results/gpu_smoke.json (or --out). `scripts/gpu_smoke.sh` runs it on a device machine.
Caveat (review, 2026-12-02): in 0.33 dynamic VRAM (comfy-aimdo, ModelPatcherDynamic) is set up by main.py, which the
in-process harness does not run, and CUDA graphs are reached only through it; so until this script starts ComfyUI
the way main.py does, both GPU modes may run the same code. Each run records `aimdo_enabled` and the patcher class,
and the "gpu defaults" mode counts as checked only where aimdo was on.

    python bench/gpu_smoke.py [--families sdxl,flux] [--device cuda]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "tests"))
sys.path.append(str(REPO / "bench"))
AGREE_MODES, AGREE_CPU = 0.99, 0.999
MODES = {  # ComfyUI args per mode (set only where this ComfyUI has them; the result says which applied)
    "gpu defaults": {"cpu": False},
    "cuda graphs and dynamic vram off": {"cpu": False, "disable_cuda_graphs": True, "disable_dynamic_vram": True},
    "cpu": {"cpu": True},
}


def _pearson(a, b):

    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-30))


def child(family, mode, side, out_path):
    import harness

    if str(harness.COMFY_DIR) not in sys.path:
        sys.path.insert(0, str(harness.COMFY_DIR))
    import comfy.cli_args

    overrides = {k: v for k, v in MODES[mode].items() if hasattr(comfy.cli_args.args, k)}

    env = harness.start_in_process(tempfile.mkdtemp(prefix="lotts-gpusmoke-"), **overrides)
    import comfy.model_management
    import comfy.sd
    import real_size
    import torch
    from comfy.ldm.models.autoencoder import AutoencoderKL

    pack = env.pack.nodes
    device = comfy.model_management.get_torch_device()
    dtype = "fp32" if mode == "cpu" or side <= 32 else "bf16"
    model, cond, tokens = real_size.build(family, dtype, str(device))
    channels = 16 if family == "flux" else 4
    ddconfig = {"double_z": True, "z_channels": channels, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    ae = AutoencoderKL(ddconfig=ddconfig, embed_dim=channels)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in ae.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.02 if p.ndim > 1 else 0.0))
    vae = comfy.sd.VAE(sd=ae.state_dict())

    class Contrast(env.pack.lotts_ops.verifiers.base.Verifier):
        name = "contrast"

        def _score(self, images, prompts):
            return images.float().flatten(1).std(dim=1)

    weights = {i: torch.ones(tokens) / tokens for i in range(3)}
    latent = torch.randn(1, channels, side, side, generator=torch.Generator().manual_seed(1))
    import comfy.memory_management as memory_management  # noqa: I001  (0.33+; absent on older hosts)

    out = {"family": family, "mode": mode, "side": side, "device": str(device), "dtype": dtype,
           "args_applied": overrides, "torch": torch.__version__, "patcher": type(model).__name__,
           "aimdo_enabled": bool(getattr(memory_management, "aimdo_enabled", False))}
    t = time.perf_counter()
    attention = pack._capture.capture(model, [cond(1), cond(2), cond(3)], weights, {"samples": latent}, [0.3], 1, 0,
                                      None)
    out["capture_seconds"] = round(time.perf_counter() - t, 3)
    maps = {"ca_low": attention["maps"]["low"]["ca"].float().cpu(),
            "noise_difference": attention["noise_difference"].float().cpu()}
    out["maps_finite"] = all(bool(torch.isfinite(m).all()) for m in maps.values())
    out["maps_non_constant"] = all(float(m.std()) > 0 for m in maps.values())
    if side > 32:  # the full-size search
        steps, cfg = 4, 1.0 if family == "flux" else 5.0
        settings = pack._search.SamplingSettings(cond(1), cond(2), steps, cfg, "euler", "normal")
        local = pack._search.LocalSettings(conds=[cond(1), cond(2), cond(3)], token_weights=weights, noise_levels=[0.3],
                                           noise_draws=1, selection=None, area_ratio=0.5, foreground_weight=0.3,
                                           signal="attention + noise difference", start_step=1, refinements=1,
                                           global_steps=1, rounds=1)
        t = time.perf_counter()
        r = pack._search.lotts(model, vae, Contrast(), {"samples": torch.zeros(1, channels, side, side)}, settings,
                               local, "a photo", 0, 2)
        out["search_seconds"] = round(time.perf_counter() - t, 3)
        passes = 1 if cfg == 1.0 else 2
        expected = 2 * steps * passes + 2 * 3 + 2 * (steps - 1) * passes  # seeds, capture, one re-draw each
        out.update({"nfe": r.report["nfe"], "nfe_expected": expected, "mask_area": float(r.best_masks.float().mean()),
                    "masks_non_empty": bool(r.best_masks.sum() > 0) or all(w.startswith("s") for w in r.report["winners"])})
    torch.save(maps, out_path)
    print("RESULT " + json.dumps(out), flush=True)


def run(family, mode, side, folder):
    path = Path(folder) / f"{family}-{mode.replace(' ', '_')}-{side}.pt"
    cmd = [sys.executable, __file__, "--child", family, mode, str(side), str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"family": family, "mode": mode, "side": side, "error": (proc.stdout[-1500:] + proc.stderr[-3000:])}, None
    import torch

    return json.loads(lines[-1][7:]), torch.load(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="sdxl,flux")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "gpu_smoke.json"))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        family, mode, side, path = opts.child
        return child(family, mode, int(side), path)
    folder = tempfile.mkdtemp(prefix="lotts-gpusmoke-maps-")
    result = {"agree_modes_min_r": AGREE_MODES, "agree_cpu_min_r": AGREE_CPU, "families": {}}
    for family in opts.families.split(","):
        runs, maps = {}, {}
        for mode in ("gpu defaults", "cuda graphs and dynamic vram off"):
            runs[mode], maps[mode] = run(family, mode, 128, folder)
        runs["cuda slice"], maps["cuda slice"] = run(family, "cuda graphs and dynamic vram off", 32, folder)
        runs["cpu slice"], maps["cpu slice"] = run(family, "cpu", 32, folder)
        checks = {}
        pairs = {"modes": ("gpu defaults", "cuda graphs and dynamic vram off", AGREE_MODES),
                 "cpu": ("cuda slice", "cpu slice", AGREE_CPU)}
        for name, (a, b, need) in pairs.items():
            if maps[a] is None or maps[b] is None:
                checks[name] = {"passed": False, "reason": "a run failed"}
                continue
            r = {k: round(_pearson(maps[a][k], maps[b][k]), 5) for k in maps[a]}
            checks[name] = {"pearson_r": r, "passed": all(v >= need for v in r.values())}
        defaults_real = runs["gpu defaults"].get("aimdo_enabled", False)  # else both modes ran the same code
        ok = defaults_real and all(c["passed"] for c in checks.values()) and all(
            "error" not in x and x.get("maps_finite") and x.get("maps_non_constant") for x in runs.values()) and all(
            runs[m].get("nfe") == runs[m].get("nfe_expected") and runs[m].get("masks_non_empty")
            for m in ("gpu defaults", "cuda graphs and dynamic vram off"))
        result["families"][family] = {"runs": runs, "agreement": checks, "passed": ok}
    result["passed"] = all(f["passed"] for f in result["families"].values())
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
