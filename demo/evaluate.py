"""Quick check that the demo model learned the world and the quality words, through a real ComfyUI.

    .host/venv/bin/python -m demo.evaluate --grid /tmp/lotts_demo_samples.png --write-log

1. Samples with ComfyUI's own nodes (CLIPTextEncode, EmptyLatentImage, KSampler, VAEDecode) for held-out
   prompts, as a PNG grid: a real world image, then the prompt alone, the high-quality and the low-quality
   template (same seed in a row).
2. Learned association on held-out test images (encoded with VAEEncode): how often the low-quality
   template explains the injected noise better than the high-quality one (defect images), the reverse
   (clean images), and the AUROC of |eps_low - eps_high| against the latent-resolution defect masks.
3. The pack's capture node (LoTTSQualityAttentionCapture) on held-out defect images: AUROC of the
   cross-attention contrast (low - high, raw and self-attention-propagated) and of its noise difference.
A latent cell counts as defective when more than CELL_THRESHOLD of its pixels are.
"""

import argparse
import importlib
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
CELL_THRESHOLD = 0.2
HIGH = "A high-quality image of {p}."
LOW = "A low-quality image of {p}."


def start_comfy():
    sys.path.append(str(REPO / "tests"))
    import harness

    env = harness.start_in_process(tempfile.mkdtemp(prefix="lotts_demo_eval_"))
    demo = importlib.import_module(env.pack.__name__ + ".demo")
    for sub in ("world", "model", "loader_node"):
        importlib.import_module(f"{demo.__name__}.{sub}")
    return env, demo


def cell_labels(masks, hw):
    m = torch.from_numpy(np.stack(masks)).float().unsqueeze(1)
    return F.adaptive_avg_pool2d(m, hw).squeeze(1) > CELL_THRESHOLD


def aurocs(defect_map, scores, labels):
    """Pooled over all cells of all images, and the mean of per-image AUROCs."""
    per_image = [defect_map.auroc(s, lab) for s, lab in zip(scores, labels, strict=True) if lab.any() and not lab.all()]
    return {"pooled": round(defect_map.auroc(scores, labels), 3), "per_image": round(float(np.mean(per_image)), 3)}


def encode(nodes, clip, text):
    return nodes.CLIPTextEncode().encode(clip, text)[0]


def sample_grid(env, demo, model, clip, vae, n_rows, steps, cfg, path):
    from PIL import Image, ImageDraw

    world, nodes = demo.world, env.nodes
    negative = encode(nodes, clip, "")
    size = world.RESOLUTION
    rows, prompts = [], []
    for i in range(n_rows):
        s = world.sample(i, "test")
        prompts.append(s["prompt"])
        row = [s["image"]]
        for text in (s["prompt"], HIGH.replace("{p}", s["prompt"]), LOW.replace("{p}", s["prompt"])):
            latent = nodes.EmptyLatentImage().generate(size, size, 1)[0]
            out = nodes.KSampler().sample(model, 100 + i, steps, cfg, "euler", "normal", encode(nodes, clip, text),
                                          negative, latent)[0]
            image = nodes.VAEDecode().decode(vae, out)[0][0]
            row.append((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8))
        rows.append(np.concatenate([np.pad(r, ((2, 2), (2, 2), (0, 0)), constant_values=255) for r in row], 1))
    grid = Image.fromarray(np.concatenate(rows, 0))
    canvas = Image.new("RGB", (grid.width + 330, grid.height), "white")
    canvas.paste(grid, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, p in enumerate(prompts):
        for j, line in enumerate(textwrap.wrap(p, 52)):
            draw.text((grid.width + 6, i * (size + 4) + 8 + 12 * j), line, fill="black")
    draw.text((grid.width + 6, grid.height - 14), "cols: world | p | high-quality | low-quality", fill="gray")
    canvas.save(path)
    return {"path": str(path), "prompts": prompts, "steps": steps, "cfg": cfg, "sampler": "euler/normal"}


def association(env, demo, model, clip, vae, n_defect, n_clean, levels, draws, seed):
    from lotts_ops import defect_map

    world, nodes = demo.world, env.nodes
    samples, i = [], 0
    while sum(s["has_defect"] for s in samples) < n_defect or sum(not s["has_defect"] for s in samples) < n_clean:
        s = world.sample(i, "test")
        i += 1
        if (s["has_defect"] and sum(x["has_defect"] for x in samples) < n_defect) or (
                not s["has_defect"] and sum(not x["has_defect"] for x in samples) < n_clean):
            samples.append(s)
    pixels = torch.from_numpy(np.stack([s["image"] for s in samples])).float() / 255.0
    raw = nodes.VAEEncode().encode(vae, pixels)[0]["samples"]
    base = model.model
    x0 = base.process_latent_in(raw)
    labels = cell_labels([s["defect_mask"] for s in samples], x0.shape[-2:])
    defect = torch.tensor([s["has_defect"] for s in samples])
    high = torch.cat([encode(nodes, clip, HIGH.replace("{p}", s["prompt"]))[0][0] for s in samples])
    low = torch.cat([encode(nodes, clip, LOW.replace("{p}", s["prompt"]))[0][0] for s in samples])
    sampling = base.model_sampling
    gen = torch.Generator().manual_seed(seed)
    results = {}
    for level in levels:
        sigma = float(sampling.percent_to_sigma(1.0 - level))
        sig = torch.full((x0.shape[0],), sigma)
        err_high = err_low = diff = 0
        for _ in range(draws):
            eps = torch.randn(x0.shape, generator=gen)
            x = x0 + sigma * eps
            eps_high = (x - base.apply_model(x, sig, c_crossattn=high)) / sigma
            eps_low = (x - base.apply_model(x, sig, c_crossattn=low)) / sigma
            err_high = err_high + (eps_high - eps).square().mean(dim=1)  # (B, h, w)
            err_low = err_low + (eps_low - eps).square().mean(dim=1)
            diff = diff + defect_map.noise_difference_map(eps_low, eps_high)
        cells = labels.float()
        in_high = (err_high * cells).sum(dim=(1, 2)) / cells.sum(dim=(1, 2)).clamp_min(1)
        in_low = (err_low * cells).sum(dim=(1, 2)) / cells.sum(dim=(1, 2)).clamp_min(1)
        err_high, err_low = err_high.mean(dim=(1, 2)), err_low.mean(dim=(1, 2))
        has_cells = defect & labels.flatten(1).any(dim=1)
        results[str(level)] = {
            "defect_images_low_caption_lower_error": round((err_low < err_high)[defect].float().mean().item(), 3),
            "defect_images_low_caption_lower_error_in_defect_cells": round(
                (in_low < in_high)[has_cells].float().mean().item(), 3),
            "clean_images_high_caption_lower_error": round((err_high < err_low)[~defect].float().mean().item(), 3),
            "noise_difference_auroc": aurocs(defect_map, diff[defect], labels[defect]),
        }
    return {"n_defect": n_defect, "n_clean": n_clean, "noise_draws": draws, "levels": results,
            "cell_threshold": CELL_THRESHOLD}, samples, raw, labels


def capture_aurocs(env, demo, model, clip, samples, raw, labels, n, settings):
    from lotts_ops import defect_map

    node = env.pack.nodes.attention_capture.LoTTSQualityAttentionCapture()
    chosen = [k for k, s in enumerate(samples) if s["has_defect"]][:n]
    out = {}
    for name, (levels, layers) in settings.items():
        ca, prop, noise = [], [], []
        for k in chosen:
            attention, _ = node.capture(model, clip, {"samples": raw[k:k + 1]}, samples[k]["prompt"], HIGH, LOW,
                                        levels, 2, 0, layers)
            maps = attention["maps"]
            ca.append(maps["low"]["ca"] - maps["high"]["ca"])
            prop.append(maps["low"]["ca_prop"] - maps["high"]["ca_prop"])
            noise.append(attention["noise_difference"])
        lab = labels[chosen]
        out[name] = {"noise_levels": levels, "layers": layers, "noise_draws": 2,
                     "layers_seen": attention["layers"],
                     "ca_low_minus_high": aurocs(defect_map, torch.cat(ca), lab),
                     "ca_prop_low_minus_high": aurocs(defect_map, torch.cat(prop), lab),
                     "noise_difference": aurocs(defect_map, torch.cat(noise), lab)}
    return {"n_defect_images": len(chosen), "settings": out}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="lotts_demo_world.safetensors", help="file in demo/weights")
    parser.add_argument("--grid", default="/tmp/lotts_demo_samples.png")
    parser.add_argument("--grid-rows", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--n-defect", type=int, default=200)
    parser.add_argument("--n-clean", type=int, default=100)
    parser.add_argument("--n-capture", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write-log", action="store_true", help="add the results to demo/weights/training_log.json")
    opts = parser.parse_args(argv)
    torch.set_num_threads(opts.threads)
    t0 = time.time()
    env, demo = start_comfy()
    model, clip, vae = demo.loader_node.LoTTSDemoModelLoader().load(opts.weights)
    checks = {"weights": opts.weights}
    with torch.inference_mode():
        checks["sample_grid"] = sample_grid(env, demo, model, clip, vae, opts.grid_rows, opts.steps, opts.cfg,
                                            opts.grid)
        print(json.dumps(checks["sample_grid"]), flush=True)
        checks["association"], samples, raw, labels = association(env, demo, model, clip, vae, opts.n_defect,
                                                                   opts.n_clean, (0.1, 0.2, 0.3, 0.5), 2, 0)
        print(json.dumps(checks["association"]), flush=True)
        checks["capture"] = capture_aurocs(env, demo, model, clip, samples, raw, labels, opts.n_capture, {
            "auto_0.3": ("0.3", "auto"), "auto_0.1-0.3": ("0.1, 0.2, 0.3", "auto"), "all_0.3": ("0.3", "all")})
        print(json.dumps(checks["capture"]), flush=True)
    checks["seconds"] = round(time.time() - t0, 1)
    if opts.write_log:
        path = demo.model.WEIGHTS_DIR / "training_log.json"
        log = json.loads(path.read_text())
        log["checks"] = checks
        path.write_text(json.dumps(log, indent=1))
    return checks


if __name__ == "__main__":
    main()
