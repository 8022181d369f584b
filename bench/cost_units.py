"""Benchmark (not a test): what a VAE decode and a reward-model call cost at real size, in model evaluations.

LoTTS decodes and scores more images than Best-of-N (parents re-scored each round, per-region swaps decoded and
scored). On the tiny demo world both are nearly free; with SDXL's VAE and a ViT-L reward model they are not. So
every result is also given in "cost at real size": NFE + decodes x d + verifier calls x v, where d and v are a
decode and a reward-model forward of one image each, in NFE of that family, measured here as ratios in one run:
- one UNet CFG sampling step (batch 2 = 2 NFE) at real size with random weights (bench/real_size.py's builder:
  SD1.5 at 512 x 512, SDXL at 1024 x 1024);
- one VAE decode of one latent at that size: ComfyUI's own SD VAE (comfy.sd.VAE from a random-weight state dict
  of the SD / SDXL KL-f8 layout, which both families share), through VAE.decode as VAEDecode calls it;
- one reward-model forward of one image at ImageReward's size: BLIP's ViT-L/16 at 224 px (24 layers, width 1024)
  and a BERT-base text encoder (12 layers, width 768, 35 tokens) with cross-attention to the image tokens and the
  MLP head, pure torch, random weights. The resize to 224 px is included.

    .host/venv/bin/python bench/cost_units.py [--families sd15,sdxl]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.append(str(REPO / "bench"))
import real_size  # noqa: E402  (the full-size builders and the measuring-child runner)

IMAGE_SIDE = {"sd15": 512, "sdxl": 1024}


def _random_(module, seed=0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.randn(p.shape, generator=gen) * (0.02 if p.ndim > 1 else 0.0)).to(p.dtype))
    return module


def vae_decode_seconds(family):
    import comfy.sd
    import torch
    from comfy.ldm.models.autoencoder import AutoencoderKL

    ddconfig = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    state = _random_(AutoencoderKL(ddconfig=ddconfig, embed_dim=4)).state_dict()
    vae = comfy.sd.VAE(sd=state)
    side = IMAGE_SIDE[family] // 8
    latent = torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():  # as ComfyUI's executor runs VAEDecode (no autograd graph kept)
        vae.decode(latent[:, :, :8, :8])  # load the weights outside the timing
        start = time.perf_counter()
        image = vae.decode(latent)
        seconds = time.perf_counter() - start
    assert image.shape[1:3] == (IMAGE_SIDE[family], IMAGE_SIDE[family]), image.shape
    return seconds


def reward_forward_seconds(family):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ImageRewardSized(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 1024, 16, 16)
            self.pos = nn.Parameter(torch.zeros(1, 197, 1024))
            self.cls = nn.Parameter(torch.zeros(1, 1, 1024))
            self.vision = nn.TransformerEncoder(nn.TransformerEncoderLayer(1024, 16, 4096, batch_first=True,
                                                                           norm_first=True), 24)
            self.to_text = nn.Linear(1024, 768)
            self.embed = nn.Embedding(30524, 768)
            self.text = nn.TransformerDecoder(nn.TransformerDecoderLayer(768, 12, 3072, batch_first=True), 12)
            self.head = nn.Sequential(nn.Linear(768, 1024), nn.Linear(1024, 128), nn.Linear(128, 64),
                                      nn.Linear(64, 16), nn.Linear(16, 1))

        def forward(self, image, tokens):
            x = F.interpolate(image, size=(224, 224), mode="bicubic", align_corners=False)
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = self.vision(torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos)
            t = self.text(self.embed(tokens), self.to_text(x))
            return self.head(t[:, 0])

    model = _random_(ImageRewardSized().eval())
    image = torch.rand(1, 3, IMAGE_SIDE[family], IMAGE_SIDE[family])
    tokens = torch.randint(0, 30524, (1, 35), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        model(image, tokens)  # warm-up
        start = time.perf_counter()
        model(image, tokens)
    return time.perf_counter() - start


def child(family, kind):
    sys.path.append(str(REPO / "tests"))
    import tempfile

    import harness
    import torch

    torch.set_num_threads(int(os.environ.get("LOTTS_BENCH_THREADS", "1")))
    harness.start_in_process(tempfile.mkdtemp(prefix="lotts-costunits-"))
    seconds = vae_decode_seconds(family) if kind == "decode" else reward_forward_seconds(family)
    print("RESULT " + json.dumps({"family": family, "kind": kind, "seconds": seconds}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="sd15,sdxl")
    parser.add_argument("--out", default="cost_units.json")
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "KIND"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        return child(*opts.child)
    path = RESULTS / opts.out
    out = json.loads(path.read_text()) if path.is_file() else {}  # a family measured later joins the others
    out.update({"threads": int(os.environ.get("LOTTS_BENCH_THREADS", "1")), "device": "CPU", "dtype": "fp32"})
    out.setdefault("families", {})
    for family in opts.families.split(","):
        # the three of one family run back to back, so their ratios come from one stretch of this shared machine
        step = real_size.run_result([sys.executable, str(REPO / "bench" / "real_size.py"), "--child", family, "plain",
                                     "--dtype", "fp32", "--device", "cpu"])
        decode = real_size.run_result([sys.executable, __file__, "--child", family, "decode"])
        reward = real_size.run_result([sys.executable, __file__, "--child", family, "reward"])
        out["families"][family] = {
            "image_side": IMAGE_SIDE[family], "cfg_step_seconds": step["seconds"], "decode_seconds": decode["seconds"],
            "reward_seconds": reward["seconds"],
            # one CFG step is two model evaluations (cond and uncond in one batch)
            "decode_in_nfe": round(2 * decode["seconds"] / step["seconds"], 3),
            "verifier_call_in_nfe": round(2 * reward["seconds"] / step["seconds"], 3)}
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
