"""Retrain only the decoder of a demo model's autoencoder, wider, on the frozen encoder's latents.

The UNet lives in the encoder's latent space, so a new decoder leaves the model's latents, the UNet and every
capture untouched and changes only how latents become pixels (the VAE gate: round-trip PSNR on held-out
renders). The decoder keeps ComfyUI's TAESD layout (widths <= 64, at most TAESD's blocks per stage).

    .host/venv/bin/python -m demo.train_decoder --weights demo/weights/lotts_demo_world_v3.safetensors \\
        --work-dir /tmp/lotts_v3/work --world 3 --steps 3000 --out demo/weights/lotts_demo_world_v3.safetensors
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import autoencoder, train

WIDE_DECODER = autoencoder.WIDE_DECODER


@torch.no_grad()
def widen_from(new_decoder, old_decoder):
    """Start the wide decoder as the old one's function: old weights in the first channels, the new channels'
    incoming weights random (so they can learn) and their outgoing weights into old channels zero. Blocks the
    old decoder had switched off stay relu(x) (their last convolution is zero from construction)."""
    old_convs = {name: m for name, m in old_decoder.named_modules() if isinstance(m, torch.nn.Conv2d)}
    for name, conv in new_decoder.named_modules():
        if not isinstance(conv, torch.nn.Conv2d) or name not in old_convs:
            continue
        old = old_convs[name]
        n_out, n_in = old.weight.shape[:2]
        conv.weight[:n_out, :n_in] = old.weight
        conv.weight[:n_out, n_in:] = 0
        if conv.bias is not None:
            conv.bias.zero_()
            conv.bias[:n_out] = old.bias


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="demo weights file whose VAE is replaced")
    parser.add_argument("--work-dir", required=True, help="the training run's work dir (autoencoder.pt)")
    parser.add_argument("--world", type=int, default=3, choices=sorted(train.WORLDS))
    parser.add_argument("--train-images", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", default="/tmp/lotts_demo_cache")
    parser.add_argument("--out", required=True)
    parser.add_argument("--decoder-state", default=None, help="also keep the trained decoder here (.pt); if the "
                        "file exists, training is skipped and that decoder is put into --weights (e.g. after the "
                        "UNet run it was trained beside has finished)")
    parser.add_argument("--log", default=None)
    opts = parser.parse_args(argv)
    torch.set_num_threads(opts.threads)
    train.world = train.WORLDS[opts.world]
    model = train.import_comfy()  # demo.model reads and writes the weights file (it imports ComfyUI)
    start = time.time()
    saved = torch.load(Path(opts.work_dir) / "autoencoder.pt", weights_only=False)
    old = autoencoder.NarrowTAESD(saved["config"])
    old.load_state_dict(saved["state"])
    new = autoencoder.NarrowTAESD({**saved["config"], **WIDE_DECODER})
    new.encoder.load_state_dict(old.encoder.state_dict())
    for p in new.encoder.parameters():
        p.requires_grad_(False)
    old.eval()
    new.encoder.eval()
    images = train.render("train", opts.train_images, opts.cache_dir)["images"]
    calib = train.render("calib", 256, opts.cache_dir)
    before = train.autoencoder_quality(old, calib["images"][:64], calib["masks"][:64])
    widened = autoencoder.NarrowTAESD(new.config)
    widened.encoder.load_state_dict(old.encoder.state_dict())
    widen_from(widened.decoder, old.decoder)
    start_quality = train.autoencoder_quality(widened.eval(), calib["images"][:64], calib["masks"][:64])
    print(json.dumps({"before": before, "widened_start": start_quality}), flush=True)  # equal: same function
    state_path = Path(opts.decoder_state) if opts.decoder_state else None
    losses = []
    if state_path is not None and state_path.is_file():
        new.decoder.load_state_dict(torch.load(state_path, weights_only=False)["decoder"])
    else:
        widen_from(new.decoder, old.decoder)
        opt = torch.optim.Adam(new.decoder.parameters(), lr=opts.lr)
        gen = np.random.default_rng(0)
        size, losses = images.shape[1], []
        for step in range(opts.steps):
            for group in opt.param_groups:  # warmup, then cosine to 10 %
                group["lr"] = opts.lr * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / opts.steps)))
            idx = gen.integers(images.shape[0], size=opts.batch)
            ys, xs = gen.integers(0, size - opts.crop + 1, (2, opts.batch)) // 8 * 8
            crops = np.stack([images[i, y:y + opts.crop, x:x + opts.crop] for i, y, x in zip(idx, ys, xs, strict=True)])
            x = train.to_tensor(crops)
            with torch.no_grad():
                z = new.encoder(x)
            recon = new.decoder(z)
            loss = F.l1_loss(recon, x) + F.mse_loss(recon, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step % 100 == 0:
                print(json.dumps({"step": step, "loss": round(float(np.mean(losses[-100:])), 5),
                                  "seconds": round(time.time() - start, 1)}), flush=True)
        if state_path is not None:
            torch.save({"decoder": new.decoder.state_dict(), "config": new.config}, state_path)
    new.eval()
    after = train.autoencoder_quality(new, calib["images"][:64], calib["masks"][:64])
    unet, clip, taesd, info = model.read(opts.weights)
    exported = new.to_taesd_state_dict(float(taesd["vae_scale"]), float(taesd["vae_shift"]))
    info = {**info, "decoder": {"config": new.config, "steps": opts.steps, "psnr_before": before, "psnr_after": after}}
    model.save(opts.out, unet, clip, exported, info)
    summary = {"weights": opts.out, "decoder_config": WIDE_DECODER, "steps": opts.steps, "before": before,
               "after": after, "seconds": round(time.time() - start, 1),
               "final_loss": round(float(np.mean(losses[-100:])), 5) if losses else None}
    print(json.dumps(summary), flush=True)
    if opts.log:
        Path(opts.log).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
