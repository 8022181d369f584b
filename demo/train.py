"""Train the LoTTS demo world model on the CPU: autoencoder, then UNet + text encoder on its latents.

    .host/venv/bin/python -m demo.train --out demo/weights/lotts_demo_world.safetensors

Phases (all seeded): render the training split of demo.world; train a narrow TAESD-shaped autoencoder on
random crops; encode the training images; train ComfyUI's SD15 UNet (small unet_config) jointly with a small
SD1 text encoder with the EPS objective in ComfyUI's sigma parameterisation, i.e. through
`BaseModel.apply_model(x0 + sigma * eps, sigma, c_crossattn=...)` whose output is the denoised latent, so
eps_pred = (x - denoised) / sigma, exactly what ComfyUI's KSampler assumes. Writes one fp16 safetensors
file and a JSON log (losses, wall times, configs, world parameters, learned-association checks).
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))

from demo import autoencoder, world, world3  # noqa: E402  (pure torch / numpy)

WORLDS = {2: world, 3: world3}  # `--world` rebinds the module-level `world` before anything renders

LOG = []
HIGH_TEMPLATE = "A high-quality image of {p}."
LOW_TEMPLATE = "A low-quality image of {p}."


def log(event, **data):
    entry = {"event": event, "time": round(time.time() - START, 1), **data}
    LOG.append(entry)
    print(json.dumps(entry), flush=True)


START = time.time()
DECAY_FRACTION = 0.2


def import_comfy(pytorch_attention=True):
    """Import ComfyUI from COMFYUI_DIR (default: the repo's .host/ComfyUI) in CPU mode."""
    comfy_dir = Path(os.environ.get("COMFYUI_DIR", REPO / ".host" / "ComfyUI"))
    if str(comfy_dir) not in sys.path:
        sys.path.insert(0, str(comfy_dir))
    from comfy.cli_args import args

    args.cpu = True
    # same attention math, PyTorch's fused kernel: faster backward passes on the CPU
    args.use_pytorch_cross_attention = pytorch_attention
    import comfy.clip_model

    def clip_layer_forward(self, x, mask=None, optimized_attention=None):
        # comfy's CLIPLayer adds its residuals in place, which autograd cannot differentiate; same math here
        x = x + self.self_attn(self.layer_norm1(x), mask, optimized_attention)
        return x + self.mlp(self.layer_norm2(x))

    comfy.clip_model.CLIPLayer.forward = clip_layer_forward  # training process only
    from demo import model as demo_model

    return demo_model


# -- data -------------------------------------------------------------------------------------------
def render(split, n, cache_dir, variant="independent"):
    source = hashlib.sha1(Path(world.__file__).read_bytes()).hexdigest()[:10]  # a changed world is re-rendered
    name = f"world_v{world.WORLD_VERSION}_{source}_{variant}_{split}_{n}.npz"
    path = Path(cache_dir) / name if cache_dir else None
    if path is not None and path.exists():
        data = np.load(path, allow_pickle=False)
        return {k: data[k] for k in data.files}
    images, masks, counts, prompts = [], [], [], []
    for i in range(n):
        s = world.sample(i, split, variant=variant)
        images.append(s["image"])
        masks.append(s["defect_mask"])
        counts.append(s["n_defects"])
        prompts.append(s["prompt"])
    counts = np.array(counts)
    out = {"images": np.stack(images), "masks": np.stack(masks), "has_defect": counts > 0, "n_defects": counts,
           "prompts": np.array(prompts)}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    return out


def to_tensor(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)


# -- autoencoder ------------------------------------------------------------------------------------
def train_autoencoder(images, steps, batch, crop, lr, seed, latent_noise=0.1, config=None):
    torch.manual_seed(seed)
    ae = autoencoder.NarrowTAESD(config).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    gen = np.random.default_rng(seed)
    n, size = images.shape[0], images.shape[1]
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        idx = gen.integers(n, size=batch)
        ys, xs = gen.integers(0, size - crop + 1, (2, batch)) // 8 * 8
        crops = np.stack([images[i, y:y + crop, x:x + crop] for i, y, x in zip(idx, ys, xs, strict=True)])
        flip = gen.uniform(size=batch) < 0.5
        crops[flip] = crops[flip][:, :, ::-1]
        x = to_tensor(crops).contiguous(memory_format=torch.channels_last)
        z = ae.encode(x)
        recon = ae.decode(z + latent_noise * z.detach().std() * torch.randn_like(z))
        mean, std = z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3))
        reg = (mean.square() + (std - 1).square()).mean()
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + 0.01 * reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            log("ae", step=step, loss=round(float(np.mean(losses[-50:])), 5), reg=round(reg.item(), 4),
                z_std=[round(v, 3) for v in std.tolist()])
    return ae.eval(), losses


@torch.no_grad()
def encode_all(ae, images, batch=64):
    out = []
    for start in range(0, images.shape[0], batch):
        x = to_tensor(images[start:start + batch]).contiguous(memory_format=torch.channels_last)
        out.append(ae.encode(x).contiguous())
    return torch.cat(out)


@torch.no_grad()
def autoencoder_quality(ae, images, masks):
    x = to_tensor(images)
    recon = ae.decode(ae.encode(x)).clamp(0, 1)
    err = (recon - x).square().mean(dim=1)  # (B, H, W)
    m = torch.from_numpy(masks).float()
    psnr = -10 * math.log10(err.mean().item())
    inside = -10 * math.log10((err * m).sum().item() / max(m.sum().item(), 1))
    return {"psnr": round(psnr, 2), "psnr_in_defects": round(inside, 2)}


# -- text -------------------------------------------------------------------------------------------
class TokenCache:
    def __init__(self, clip):
        self.clip = clip
        self.cache = {}

    def __call__(self, text):
        if text not in self.cache:
            chunks = self.clip.tokenize(text)["l"]
            self.cache[text] = [t[0] for t in chunks[0]]  # one 77-token chunk (captions are short)
        return self.cache[text]


def encode_text(text_model, tokens, texts):
    return text_model([tokens(t) for t in texts])[0]


# -- UNet -------------------------------------------------------------------------------------------
def init_unet_(unet, seed):
    """PyTorch default init (ComfyUI's layers skip it), zero output convolutions as in the original UNet."""
    torch.manual_seed(seed)
    for module in unet.modules():
        for base in (torch.nn.Conv2d, torch.nn.Linear, torch.nn.GroupNorm, torch.nn.LayerNorm):
            if isinstance(module, base):
                base.reset_parameters(module)
    import comfy.ldm.modules.attention as attention
    import comfy.ldm.modules.diffusionmodules.openaimodel as openaimodel

    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, openaimodel.ResBlock):
                module.out_layers[-1].weight.zero_()
                module.out_layers[-1].bias.zero_()
            if isinstance(module, attention.SpatialTransformer):
                module.proj_out.weight.zero_()
                module.proj_out.bias.zero_()
        unet.out[-1].weight.zero_()
        unet.out[-1].bias.zero_()


def init_text_(transformer, seed):
    torch.manual_seed(seed)
    for module in transformer.modules():
        if isinstance(module, torch.nn.Embedding):
            torch.nn.init.normal_(module.weight, std=0.02)
        for base in (torch.nn.Linear, torch.nn.LayerNorm):
            if isinstance(module, base):
                base.reset_parameters(module)


def eps_prediction(base, x, sigma, context):
    denoised = base.apply_model(x, sigma, c_crossattn=context)
    return (x - denoised) / sigma.reshape(-1, 1, 1, 1)


def latent_masks(masks, latent_hw, threshold=0.2):
    """Pixel masks (B, H, W) -> boolean latent-cell labels: cell positive if > threshold of it is defective."""
    m = torch.from_numpy(masks).float().unsqueeze(1)
    return F.adaptive_avg_pool2d(m, latent_hw).squeeze(1) > threshold


@torch.no_grad()
def association_check(base, text_model, tokens, latents, prompts, masks, has_defect, levels, seed):
    """For held-out images: how often the low-quality caption explains the noise better than the
    high-quality caption (defect images) and the reverse (clean images); AUROC of |eps_low - eps_high|
    against latent-resolution defect masks."""
    from lotts_ops import defect_map

    gen = torch.Generator().manual_seed(seed)
    sampling = base.model_sampling
    high = encode_text(text_model, tokens, [HIGH_TEMPLATE.replace("{p}", p) for p in prompts])
    low = encode_text(text_model, tokens, [LOW_TEMPLATE.replace("{p}", p) for p in prompts])
    labels = latent_masks(masks, latents.shape[-2:])
    defect = torch.from_numpy(has_defect)
    out = {}
    for level in levels:
        sigma = float(sampling.percent_to_sigma(1.0 - level))
        sig = torch.full((latents.shape[0],), sigma)
        eps = torch.randn(latents.shape, generator=gen)
        x = latents + sigma * eps
        eps_high, eps_low = eps_prediction(base, x, sig, high), eps_prediction(base, x, sig, low)
        err_high = (eps_high - eps).square().mean(dim=(1, 2, 3))
        err_low = (eps_low - eps).square().mean(dim=(1, 2, 3))
        diff = defect_map.noise_difference_map(eps_low, eps_high)
        per_image = [defect_map.auroc(diff[i], labels[i]) for i in range(len(prompts)) if defect[i] and labels[i].any()]
        out[str(level)] = {
            "defect_low_better": round((err_low < err_high)[defect].float().mean().item(), 3),
            "clean_high_better": round((err_high < err_low)[~defect].float().mean().item(), 3),
            "noise_diff_auroc_pooled": round(defect_map.auroc(diff[defect], labels[defect]), 3),
            "noise_diff_auroc_per_image": round(float(np.nanmean(per_image)), 3),
        }
    return out


@torch.no_grad()
def heldout_loss(base, text_model, tokens, latents, captions, seed):
    gen = torch.Generator().manual_seed(seed)
    sigmas = base.model_sampling.sigmas
    t = torch.randint(0, len(sigmas), (latents.shape[0],), generator=gen)
    sigma = sigmas[t]
    eps = torch.randn(latents.shape, generator=gen)
    context = encode_text(text_model, tokens, captions)
    return F.mse_loss(eps_prediction(base, latents + sigma.reshape(-1, 1, 1, 1) * eps, sigma, context), eps).item()


class EMA:
    def __init__(self, params, decay):
        self.params = list(params)
        self.decay = decay
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step):
        d = min(self.decay, (1 + step) / (10 + step))
        for s, p in zip(self.shadow, self.params, strict=True):
            s.lerp_(p.detach(), 1 - d)

    @torch.no_grad()
    def swap(self):
        for s, p in zip(self.shadow, self.params, strict=True):
            tmp = p.detach().clone()
            p.copy_(s)
            s.copy_(tmp)


def train_unet(demo_model, data, calib, opts, deadline):
    torch.manual_seed(opts.seed + 1)
    unet_config = demo_model.unet_config_for()
    patcher = demo_model.build_model(unet_config)
    base = patcher.model
    unet = base.diffusion_model
    init_unet_(unet, opts.seed + 2)
    clip = demo_model.build_clip(demo_model.CLIP_CONFIG)
    text = demo_model.text_model(clip)
    init_text_(text.transformer, opts.seed + 3)
    for p in list(unet.parameters()) + list(text.transformer.parameters()):
        p.requires_grad_(True)
    base.train()
    text.transformer.train()
    tokens = TokenCache(clip)
    n_unet = sum(p.numel() for p in unet.parameters())
    n_text = sum(p.numel() for p in text.transformer.parameters())
    log("unet_start", unet_params=n_unet, text_params=n_text, unet_config=unet_config, clip_config=demo_model.CLIP_CONFIG)
    embed_params = [p for n, p in text.transformer.named_parameters() if "embed" in n]
    other_text = [p for n, p in text.transformer.named_parameters() if "embed" not in n]
    opt = torch.optim.AdamW([{"params": list(unet.parameters()) + other_text, "weight_decay": 0.01},
                             {"params": embed_params, "weight_decay": 0.0}], lr=opts.lr, betas=(0.9, 0.99),
                            fused=True)
    params = list(unet.parameters()) + list(text.transformer.parameters())
    ema = EMA(params, opts.ema)
    latents, prompts, n_defects = data["latents"], data["prompts"], data["n_defects"]
    if opts.shuffle_quality:  # negative control: quality words independent of the defects
        n_defects = np.random.default_rng(opts.seed + 7).permutation(n_defects)
    gen = np.random.default_rng(opts.seed + 4)
    tgen = torch.Generator().manual_seed(opts.seed + 5)
    sigmas = base.model_sampling.sigmas
    n = latents.shape[0]
    losses = []
    check_idx = np.nonzero(calib["has_defect"])[0][:48].tolist() + np.nonzero(~calib["has_defect"])[0][:48].tolist()
    check = {k: calib[k][check_idx] for k in ("prompts", "masks", "has_defect")}
    check_latents = calib["latents"][check_idx]
    calib_captions = [world.quality_caption(str(p), int(d), np.random.default_rng([9, i]))
                      for i, (p, d) in enumerate(zip(calib["prompts"], calib["n_defects"], strict=True))]
    total_steps = opts.steps or 10 ** 9
    step = 0
    state_path = Path(opts.work_dir) / "unet_state.pt"
    if opts.resume and state_path.is_file():  # continue a run that was stopped (same options)
        state = torch.load(state_path, weights_only=False)
        unet.load_state_dict(state["unet"])
        text.transformer.load_state_dict(state["text"])
        opt.load_state_dict(state["opt"])
        for shadow, saved in zip(ema.shadow, state["ema"], strict=True):
            shadow.copy_(saved)
        gen.bit_generator.state = state["gen"]
        tgen.set_state(state["tgen"])
        step, total_steps, losses = state["step"], state["total_steps"], state["losses"]
        total_steps = opts.steps or total_steps
        log("resumed", step=step, total_steps=total_steps)
    t0 = time.time()
    step_at_start = step
    # warmup - stable - decay: the last DECAY_FRACTION of the steps decay the LR linearly to 10 %. With a time
    # budget the total is fixed (and logged) once the measured speed says the decay must start now.
    t_timed = time.time()
    while step < total_steps:
        if step == step_at_start + 10:
            t_timed = time.time()
        if not opts.steps and total_steps == 10 ** 9 and step > step_at_start + 60:
            per_step = (time.time() - t_timed) / (step - step_at_start - 10)  # includes the evaluations so far
            predicted = step + (deadline - time.time()) / per_step
            if step >= (1 - DECAY_FRACTION) * predicted:
                total_steps = max(step + 1, int(step / (1 - DECAY_FRACTION)))
                log("unet_steps_fixed", steps=total_steps, sec_per_step=round(per_step, 3))
        decay_start = (1 - DECAY_FRACTION) * total_steps
        lr = opts.lr * min(1.0, (step + 1) / opts.warmup)
        if step >= decay_start:
            lr *= 1 - 0.9 * (step - decay_start) / max(total_steps - decay_start, 1)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = gen.integers(n, size=opts.batch)
        captions = [world.quality_caption(str(prompts[i]), int(n_defects[i]), gen) for i in idx]
        captions = ["" if gen.uniform() < opts.caption_dropout else c for c in captions]
        context = encode_text(text, tokens, captions)
        x0 = latents[torch.from_numpy(idx)]
        # timesteps: uniform, plus extra weight on low-mid noise where LoTTS reads the model out
        t_uniform = torch.randint(0, len(sigmas), (opts.batch,), generator=tgen)
        t_low = torch.randint(0, len(sigmas) * 2 // 5, (opts.batch,), generator=tgen)
        low_mask = torch.rand(opts.batch, generator=tgen) < opts.low_noise_fraction
        sigma = sigmas[torch.where(low_mask, t_low, t_uniform)]
        eps = torch.randn(x0.shape, generator=tgen)
        x = x0 + sigma.reshape(-1, 1, 1, 1) * eps
        # min-SNR-5 weighting (Hang et al. 2023): low-noise steps stop dominating, coarse structure learns faster
        weight = (1 / sigma.square()).clamp(max=opts.min_snr) * sigma.square() if opts.min_snr > 0 else torch.ones_like(sigma)
        per_sample = (eps_prediction(base, x, sigma, context) - eps).square().mean(dim=(1, 2, 3))
        loss = (weight * per_sample).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        losses.append(loss.item())
        if step % 50 == 0:
            log("unet", step=step, loss=round(float(np.mean(losses[-50:])), 5), lr=round(lr, 6),
                sec_per_step=round((time.time() - t0) / (step - step_at_start + 1), 3))
        step += 1
        if step % opts.eval_every == 0 or step == total_steps:
            base.eval()
            text.transformer.eval()
            ema.swap()
            ema_loss = heldout_loss(base, text, tokens, calib["latents"], calib_captions, opts.seed)
            assoc = association_check(base, text, tokens, check_latents, [str(p) for p in check["prompts"]],
                                      check["masks"], check["has_defect"], (0.2, 0.3, 0.5), opts.seed)
            if opts.checkpoint:
                save_weights(demo_model, opts.checkpoint, unet, text, data["taesd"], opts, step, losses, unet_config)
            ema.swap()
            state_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"unet": unet.state_dict(), "text": text.transformer.state_dict(), "opt": opt.state_dict(),
                        "ema": ema.shadow, "gen": gen.bit_generator.state, "tgen": tgen.get_state(), "step": step,
                        "total_steps": total_steps, "losses": losses}, state_path.with_suffix(".tmp"))
            state_path.with_suffix(".tmp").replace(state_path)  # a stop mid-write keeps the previous state
            raw_loss = heldout_loss(base, text, tokens, calib["latents"], calib_captions, opts.seed)
            log("eval", step=step, heldout_loss_ema=round(ema_loss, 5), heldout_loss_raw=round(raw_loss, 5),
                association_ema=assoc)
            base.train()
            text.transformer.train()
    ema.swap()  # keep the EMA weights
    base.eval()
    text.transformer.eval()
    return unet, text, losses, unet_config, total_steps


def save_weights(demo_model, path, unet, text, taesd, opts, steps_done, losses, unet_config):
    info = {"unet_config": unet_config, "clip_config": demo_model.CLIP_CONFIG, "family": "sd15",
            "resolution": world.RESOLUTION, "world_version": world.WORLD_VERSION, "steps": steps_done,
            "final_loss": round(float(np.mean(losses[-100:])), 5) if losses else None,
            "shuffle_quality": bool(opts.shuffle_quality), "variant": opts.variant}
    demo_model.save(path, unet.state_dict(), text.transformer.state_dict(), taesd, info)


def main(argv=None):
    global world
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "demo" / "weights" / "lotts_demo_world.safetensors"))
    parser.add_argument("--log", default=None, help="JSON log path (default: training_log.json next to --out)")
    parser.add_argument("--train-images", type=int, default=6000)
    parser.add_argument("--calib-images", type=int, default=256)
    parser.add_argument("--ae-steps", type=int, default=800)
    parser.add_argument("--ae-batch", type=int, default=16)
    parser.add_argument("--ae-lr", type=float, default=2e-3)
    parser.add_argument("--ae-latent-noise", type=float, default=0.05,
                        help="noise (relative to the latent std) added before decoding in autoencoder training")
    parser.add_argument("--steps", type=int, default=0,
                        help="UNet + text encoder steps; 0 = as many as fit in --budget-minutes (measured, logged)")
    parser.add_argument("--budget-minutes", type=float, default=35.0, help="total wall-time budget with --steps 0")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--min-snr", type=float, default=5.0, help="min-SNR loss weighting gamma (0 = plain MSE)")
    parser.add_argument("--low-noise-fraction", type=float, default=0.0,
                        help="fraction of timesteps drawn from the low-noise 40%% of the schedule")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--ema", type=float, default=0.995)
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    parser.add_argument("--eval-every", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads; on a CPU shared with other jobs 1 is often faster than 2")
    parser.add_argument("--cache-dir", default="/tmp/lotts_demo_cache", help="rendered world cache ('' = none)")
    parser.add_argument("--checkpoint", default=None, help="also write the weights here at every evaluation")
    parser.add_argument("--variant", default="independent", choices=world.VARIANTS,
                        help="world variant: independent defect sites, or image-correlated ones (ablation)")
    parser.add_argument("--work-dir", default="/tmp/lotts_demo_train",
                        help="resumable state: the autoencoder and the UNet run's state at every evaluation")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --work-dir (same options; the autoencoder is reused)")
    parser.add_argument("--shuffle-quality", action="store_true",
                        help="negative control: captions' quality words independent of the defects")
    parser.add_argument("--world", type=int, default=2, choices=sorted(WORLDS),
                        help="world version: 2 (1-2 flat objects) or 3 (1-6 objects, textured, structural defects)")
    parser.add_argument("--decoder", default="narrow", choices=("narrow", "wide"),
                        help="autoencoder decoder: narrow (v2's) or wide (more channels and blocks, for v3's "
                             "few-pixel defects; still exported into ComfyUI's TAESD layout)")
    opts = parser.parse_args(argv)
    world = WORLDS[opts.world]
    torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    demo_model = import_comfy()
    log("start", options=vars(opts), torch=torch.__version__)

    t = time.time()
    train = render("train", opts.train_images, opts.cache_dir, opts.variant)
    calib = render("calib", opts.calib_images, opts.cache_dir, opts.variant)
    log("rendered", seconds=round(time.time() - t, 1), defect_fraction=round(float(train["has_defect"].mean()), 3),
        mean_defect_area=round(float(train["masks"][train["has_defect"]].mean()), 4))

    t = time.time()
    ae_path = Path(opts.work_dir) / "autoencoder.pt"
    if opts.resume and ae_path.is_file():
        saved = torch.load(ae_path, weights_only=False)
        ae = autoencoder.NarrowTAESD(saved["config"])
        ae.load_state_dict(saved["state"])
        ae.eval()
        ae_losses, ae_seconds = saved["losses"], saved["seconds"]
        log("ae_resumed", path=str(ae_path))
    else:
        config = {**autoencoder.DEFAULT_CONFIG, **(autoencoder.WIDE_DECODER if opts.decoder == "wide" else {})}
        ae, ae_losses = train_autoencoder(train["images"], opts.ae_steps, opts.ae_batch, 64, opts.ae_lr, opts.seed,
                                          opts.ae_latent_noise, config)
        ae_seconds = time.time() - t
        ae_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"config": ae.config, "state": ae.state_dict(), "losses": ae_losses, "seconds": ae_seconds}, ae_path)
    ae_quality = autoencoder_quality(ae, calib["images"][:64], calib["masks"][:64])
    log("ae_done", seconds=round(ae_seconds, 1), **ae_quality)

    t = time.time()
    z = encode_all(ae, train["images"])
    mean, std = z.mean().item(), z.std().item()
    vae_scale, vae_shift = 0.18215 * std, -mean / (0.18215 * std)  # SD15 latent format multiplies by 0.18215
    train["latents"] = (z - mean) / std
    calib["latents"] = (encode_all(ae, calib["images"]) - mean) / std
    taesd = ae.to_taesd_state_dict(vae_scale, vae_shift)
    train["taesd"] = taesd
    log("encoded", seconds=round(time.time() - t, 1), latent_mean=round(mean, 4), latent_std=round(std, 4),
        channel_std=[round(v, 3) for v in (z.std(dim=(0, 2, 3)) / std).tolist()])

    t = time.time()
    deadline = START + opts.budget_minutes * 60 - 45  # keep time for the final evaluation and saving
    unet, text, losses, unet_config, steps = train_unet(demo_model, train, calib, opts, deadline)
    unet_seconds = time.time() - t
    save_weights(demo_model, opts.out, unet, text, taesd, opts, steps, losses, unet_config)
    total = time.time() - START
    size = Path(opts.out).stat().st_size
    log("done", unet_seconds=round(unet_seconds, 1), total_seconds=round(total, 1), file_bytes=size)
    summary = {
        "weights": Path(opts.out).name, "file_bytes": size, "total_wall_seconds": round(total, 1),
        "options": vars(opts), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "world": {"version": world.WORLD_VERSION, "variant": opts.variant, "resolution": world.RESOLUTION,
                  **{k.lower(): getattr(world, k) for k in ("SITES_PER_IMAGE", "SITE_SIZES", "OBJECT_COUNTS",
                                                            "BACKGROUND_SITES", "OBJECT_RADIUS") if hasattr(world, k)},
                  "site_defect_probability": world.SITE_DEFECT_PROBABILITY,
                  "low_word": [world.LOW_WORD_BASE, world.LOW_WORD_PER_DEFECT, world.LOW_WORD_CAP],
                  "caption_neutral": world.CAPTION_NEUTRAL, "defect_kinds": list(world.DEFECT_KINDS),
                  "mask_threshold": world.MASK_THRESHOLD,
                  "high_quality_captions": list(world.HIGH_QUALITY_CAPTIONS),
                  "low_quality_captions": list(world.LOW_QUALITY_CAPTIONS),
                  "neutral_captions": list(world.NEUTRAL_CAPTIONS)},
        "autoencoder": {"config": ae.config, "steps": opts.ae_steps, "seconds": round(ae_seconds, 1),
                        "final_loss": round(float(np.mean(ae_losses[-50:])), 5), "vae_scale": vae_scale,
                        "vae_shift": vae_shift, **ae_quality},
        "unet": {"config": unet_config, "clip_config": demo_model.CLIP_CONFIG, "steps": steps,
                 "seconds": round(unet_seconds, 1), "final_loss": round(float(np.mean(losses[-100:])), 5),
                 "loss_curve": [round(float(np.mean(losses[i:i + 50])), 5) for i in range(0, len(losses), 50)]},
        "events": LOG,
    }
    log_path = Path(opts.log) if opts.log else Path(opts.out).with_name("training_log.json")
    log_path.write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
