"""Two learned judges of the demo quality world (demo/world.py, version 2), trained on world images only
(the third, the prompt-adherence checker, is bench/adherence.py).

1. WORLD VERIFIER (our stand-in for ImageReward): an image-level CNN classifier p(defect | image), trained on
   split "train" with image labels only. As a LOTTS_VERIFIER (lotts_ops/verifiers/base.py contract) its score
   is -logit p(defect) = log p(clean) / p(defect): higher is better. LoTTS and Best-of-N select with it.
2. HELD-OUT DEFECT MEASURE: a per-pixel defect segmenter with a different architecture (dilated context
   network with a skip decoder instead of a strided classifier with soft-max pooling), a different target
   (ground-truth masks instead of image labels) and different images (split "calib", indices from
   SEGMENTER_FIRST_INDEX on, disjoint from every calib index the benchmarks use to choose settings). Per
   image it reports the predicted defective-area fraction (lower is better). Nothing selects with it, so it
   checks that gains under the verifier are not verifier hacking.

Neither sees diffusion-model outputs. Generated images pass through the demo VAE's decoder, so training uses
mild blur / noise / flips as augmentation. Both nets are tiny (fp16 weights < 1 MB, in bench/weights/).

    .host/venv/bin/python bench/world_scorers.py            # evaluate the committed weights on split "test"
    .host/venv/bin/python bench/world_scorers.py --retrain  # retrain both (a few minutes on 2 CPU cores)
"""

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "bench" / "weights" / "world_scorers.safetensors"
FORMAT = "lotts_bench_world_scorers/1"
VERIFIER_DATA = {"split": "train", "first": 0, "count": 4000, "paired": True}
SEGMENTER_FIRST_INDEX = 100_000  # calib indices the benchmarks use for choosing settings are far below this
SEGMENTER_DATA = {"split": "calib", "first": SEGMENTER_FIRST_INDEX, "count": 2400}
TEST_DATA = {"split": "test", "first": 20_000, "count": 1000}  # bench scripts use test indices < 20000
EPOCHS = {"verifier": 14, "segmenter": 8}
AE_STEPS, AE_SNAPSHOTS = 800, (400, 600, 800)
ALTERNATE_P = 0.6
AREA_THRESHOLD = 0.5  # a pixel counts as defective for the area measure when the segmenter's p > this
MIN_SPOT_PIXELS = 24  # an image is "defective" to the segmenter when a connected spot of p > 0.5 has this many px


def load_standalone(name, relative_path):
    """A repo file as a standalone module under `name` (once), whoever else imported it by another name."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / relative_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_world():
    """demo/world.py (pure numpy/PIL)."""
    return load_standalone("lotts_bench_world", "demo/world.py")


def load_autoencoder_module():
    """demo/autoencoder.py (pure torch): the demo VAE's network design, used here for augmentation only."""
    return load_standalone("lotts_bench_autoencoder", "demo/autoencoder.py")


def train_lossy_autoencoders(images, steps=AE_STEPS, snapshots=AE_SNAPSHOTS, seed=3, batch=16, crop=64, lr=2e-3):
    """Our own autoencoders of the demo VAE's design (8x, 4 latent channels), trained briefly on world images;
    snapshots at several steps give a family of lossy decoders (from very soft to fairly faithful). Passing
    training images through them teaches the judges that autoencoder softening and warping are not defects."""
    autoencoder = load_autoencoder_module()
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    ae = autoencoder.NarrowTAESD().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    n, size = images.shape[0], images.shape[1]
    out, t0 = [], time.time()
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, step / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        idx = gen.integers(n, size=batch)
        ys, xs = gen.integers(0, size - crop + 1, (2, batch)) // 8 * 8
        crops = np.stack([images[i, y:y + crop, x:x + crop] for i, y, x in zip(idx, ys, xs, strict=True)])
        x = (torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0).contiguous(memory_format=torch.channels_last)
        z = ae.encode(x)
        recon = ae.decode(z + 0.05 * z.detach().std() * torch.randn_like(z))
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in snapshots:
            snap = autoencoder.NarrowTAESD().to(memory_format=torch.channels_last)
            snap.load_state_dict(ae.state_dict())
            out.append(snap.eval().requires_grad_(False))
            print(json.dumps({"net": "autoencoder", "step": step, "loss": round(loss.item(), 4),
                              "seconds": round(time.time() - t0, 1)}), flush=True)
    return out


@torch.no_grad()
def autoencoder_versions(images, autoencoders, seed, batch=64):
    """uint8 (N, H, W, 3) -> the same images, each through one random autoencoder of the family (uint8)."""
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(autoencoders), (images.shape[0],), generator=gen)
    out = np.empty_like(images)
    for start in range(0, images.shape[0], batch):
        x = torch.from_numpy(images[start:start + batch]).permute(0, 3, 1, 2).float().div(255.0)
        y = torch.empty_like(x)
        for a, ae in enumerate(autoencoders):
            sel = (pick[start:start + batch] == a).nonzero()[:, 0]
            if len(sel):
                y[sel] = ae.decode(ae.encode(x[sel].contiguous(memory_format=torch.channels_last))).float()
        out[start:start + batch] = (y.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    return out


def render(world, split, first, count, paired=False):
    """count images from index `first`; paired: count / 2 scenes, each rendered clean and with its defects
    (adjacent), so image-level labels contrast exactly the defect."""
    images, masks, flags = [], [], []
    for i in range(first, first + (count // 2 if paired else count)):
        for forced in ((False, True) if paired else (None,)):
            s = world.sample(i, split, with_defect=forced)
            images.append(s["image"])
            masks.append(s["defect_mask"])
            flags.append(s["has_defect"])
    return np.stack(images), np.stack(masks), np.array(flags)


def to_input(images):
    """uint8 (B, H, W, 3) numpy or float [0, 1] (B, H, W, 3) torch -> normalised (B, 3, H, W) float."""
    x = torch.from_numpy(images).float().div(255.0) if isinstance(images, np.ndarray) else images.float()
    return (x.permute(0, 3, 1, 2) - 0.5) / 0.25


# -- networks ----------------------------------------------------------------------------------------
def _conv(n_in, n_out, stride=1, dilation=1, kernel=3):
    pad = dilation * (kernel // 2)
    return nn.Sequential(nn.Conv2d(n_in, n_out, kernel, stride, pad, dilation, bias=False), nn.BatchNorm2d(n_out),
                         nn.ReLU(inplace=True))


class VerifierNet(nn.Module):
    """Strided CNN -> 16x16 map of local defect logits -> log-sum-exp pooling -> one image logit."""

    def __init__(self, width=(16, 32, 64), pool_sharpness=4.0):
        super().__init__()
        a, b, c = width
        self.features = nn.Sequential(_conv(3, a, 2), _conv(a, b, 2), _conv(b, b), _conv(b, c, 2), _conv(c, c),
                                      _conv(c, c, dilation=2))
        self.head = nn.Conv2d(c, 1, 1)
        self.r = pool_sharpness

    def local_logits(self, x):
        return self.head(self.features(x))[:, 0]

    def forward(self, x):
        m = self.local_logits(x).flatten(1)
        return (torch.logsumexp(self.r * m, dim=1) - math.log(m.shape[1])) / self.r


class SegmenterNet(nn.Module):
    """Half-resolution input, dilated context (1, 2, 4, 8) at 1/4, skip decoder at 1/2 -> per-pixel logits."""

    def __init__(self, width=(16, 32)):
        super().__init__()
        a, b = width
        self.stem = _conv(3, a)
        self.down = _conv(a, b, 2)
        self.context = nn.Sequential(*[_conv(b, b, dilation=d) for d in (2, 4, 8)])
        self.fuse = nn.Sequential(_conv(a + b, a, kernel=1), _conv(a, a))
        self.out = nn.Conv2d(a, 1, 1)

    def forward(self, x):
        size = x.shape[-2:]
        x = F.avg_pool2d(x, 2)
        s = self.stem(x)
        c = self.context(self.down(s))
        y = self.fuse(torch.cat([s, F.interpolate(c, size=s.shape[-2:], mode="bilinear", align_corners=False)], 1))
        return F.interpolate(self.out(y), size=size, mode="bilinear", align_corners=False)[:, 0]


# -- training ----------------------------------------------------------------------------------------
def augment(x, masks, gen, labels=None):
    """Flips and generic lossy-decoder degradations (resampling blur, smooth sub-pixel warps, blur, low-frequency
    colour drift, noise) on normalised (B, 3, H, W) inputs; masks (B, H, W) follow flips and warps. Generated
    images pass through a small autoencoder, which softens and slightly warps every shape: the judges must see
    such images as clean unless a defect is present. `labels` (B, H, W) integer class maps, when given, follow the
    flips and warps too (nearest) and come back as a third value."""
    b, _, h, w = x.shape

    def chance(p):
        return (torch.rand(b, generator=gen) < p).nonzero()[:, 0]

    flip_h = torch.rand(b, generator=gen) < 0.5
    flip_v = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip_h[:, None, None, None], x.flip(-1), x)
    x = torch.where(flip_v[:, None, None, None], x.flip(-2), x)
    if masks is not None:
        masks = torch.where(flip_h[:, None, None], masks.flip(-1), masks)
        masks = torch.where(flip_v[:, None, None], masks.flip(-2), masks)
    if labels is not None:
        labels = torch.where(flip_h[:, None, None], labels.flip(-1), labels)
        labels = torch.where(flip_v[:, None, None], labels.flip(-2), labels).clone()
    x = x.clone()
    warp = chance(0.25)
    if len(warp):  # smooth random displacement, up to ~3 px
        amp = torch.rand(len(warp), 1, 1, 1, generator=gen) * 3.0 / (h / 2)
        field = F.interpolate(torch.randn(len(warp), 2, 8, 8, generator=gen), size=(h, w), mode="bicubic",
                              align_corners=False).permute(0, 2, 3, 1) * amp
        base = torch.stack(torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")[::-1], -1)
        grid = base[None] + field
        x[warp] = F.grid_sample(x[warp], grid, mode="bilinear", padding_mode="border", align_corners=True)
        if masks is not None:
            masks = masks.clone()
            masks[warp] = F.grid_sample(masks[warp][:, None], grid, mode="bilinear", padding_mode="border",
                                        align_corners=True)[:, 0]
        if labels is not None:
            labels[warp] = F.grid_sample(labels[warp][:, None].float(), grid, mode="nearest", padding_mode="border",
                                         align_corners=True)[:, 0].to(labels.dtype)
    low = chance(0.2)
    for i in low.tolist():  # resampling through a lower resolution
        f = 1.5 + 2.0 * float(torch.rand(1, generator=gen))
        small = F.interpolate(x[i:i + 1], scale_factor=1 / f, mode="bilinear", antialias=True, align_corners=False)
        x[i:i + 1] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    blur = chance(0.3)
    if len(blur):
        sigma = 0.4 + torch.rand(len(blur), generator=gen) * 0.8
        r = torch.arange(-2, 3, dtype=torch.float32)
        k1 = torch.exp(-r[None] ** 2 / (2 * sigma[:, None] ** 2))
        k1 = k1 / k1.sum(1, keepdim=True)
        kernel = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(3, 0)[:, None]  # (n*3, 1, 5, 5)
        flat = F.pad(x[blur].reshape(1, len(blur) * 3, h, w), (2, 2, 2, 2), mode="replicate")
        x[blur] = F.conv2d(flat, kernel, groups=len(blur) * 3).reshape(len(blur), 3, h, w)
    drift = chance(0.4)
    if len(drift):  # low-frequency colour drift, up to ~0.05 in [0, 1] units
        x[drift] = x[drift] + F.interpolate(torch.randn(len(drift), 3, 4, 4, generator=gen) * 0.1, size=(h, w),
                                            mode="bicubic", align_corners=False)
    noisy = chance(0.5)
    if len(noisy):
        x[noisy] = x[noisy] + torch.rand(len(noisy), 1, 1, 1, generator=gen) * 0.12 * torch.randn(
            x[noisy].shape, generator=gen)
    if masks is not None:
        masks = (masks > 0.5).float()
    return (x, masks) if labels is None else (x, masks, labels)


def train_net(net, images, targets, pixel_targets, epochs, batch, lr, seed, label, paired=False, alternates=None):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = images.shape[0]
    steps = epochs * (n // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    net.train()
    losses, step, t0 = [], 0, time.time()
    for epoch in range(epochs):
        if paired:  # shuffle scenes, keep each clean/defect pair in the same batch
            order = (torch.randperm(n // 2, generator=gen)[:, None] * 2 + torch.arange(2)).reshape(-1)
        else:
            order = torch.randperm(n, generator=gen)
        for start in range(0, n - batch + 1, batch):
            idx = order[start:start + batch].numpy()
            masks = torch.from_numpy(targets[idx]).float() if pixel_targets else None
            batch_images = images[idx]
            if alternates is not None:  # an image's autoencoder version with probability ALTERNATE_P
                use = (torch.rand(len(idx), generator=gen) < ALTERNATE_P).numpy()
                batch_images = np.where(use[:, None, None, None], alternates[idx], batch_images)
            x, masks = augment(to_input(batch_images), masks, gen)
            out = net(x)
            if pixel_targets:
                loss = F.binary_cross_entropy_with_logits(out, masks, pos_weight=torch.tensor(3.0))
            else:
                y = torch.from_numpy(targets[idx]).float()
                loss = F.binary_cross_entropy_with_logits(out, y)
                if paired:  # Bradley-Terry on each (clean, defective) pair of one scene, as reward models train
                    gap = (out[1::2] - out[0::2]) * (y[1::2] - y[0::2])
                    keep = (y[1::2] != y[0::2]).float()
                    loss = loss + (F.softplus(-gap) * keep).sum() / keep.sum().clamp_min(1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
        print(json.dumps({"net": label, "epoch": epoch, "loss": round(float(np.mean(losses[-(n // batch):])), 4),
                          "seconds": round(time.time() - t0, 1)}), flush=True)
    net.eval()
    return {"epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "steps": steps,
            "final_loss": round(float(np.mean(losses[-(n // batch):])), 4), "seconds": round(time.time() - t0, 1)}


# -- inference ----------------------------------------------------------------------------------------
@torch.inference_mode()
def _batched(fn, images, batch=64):
    return torch.cat([fn(to_input(images[i:i + batch])) for i in range(0, images.shape[0], batch)])


class Scorers:
    """Both judges. `images`: uint8 numpy (B, H, W, 3) or a ComfyUI IMAGE tensor (B, H, W, 3) in [0, 1]."""

    def __init__(self, verifier_net, segmenter_net, info):
        self.verifier_net = verifier_net.eval()
        self.segmenter_net = segmenter_net.eval()
        self.info = info

    def defect_logit(self, images):
        return _batched(self.verifier_net, images).float()

    def defect_probability_maps(self, images):
        """(B, H, W) per-pixel p(defect) of the segmenter."""
        return torch.sigmoid(_batched(self.segmenter_net, images).float())

    def defect_area(self, images):
        """(B,) the held-out defect measure: fraction of pixels with p(defect) > AREA_THRESHOLD (lower is better)."""
        return (self.defect_probability_maps(images) > AREA_THRESHOLD).float().mean(dim=(1, 2))

    def defective(self, images):
        """(B,) bool, the held-out "defective" call: some connected spot of p(defect) > AREA_THRESHOLD has at
        least MIN_SPOT_PIXELS pixels (world v2 defects are 40+ px; one spot, not the total area, decides)."""
        return spots_defective(self.defect_probability_maps(images).numpy() > AREA_THRESHOLD)

    def verifier(self, base_class=None):
        """The world verifier as a LOTTS_VERIFIER object (score = -logit p(defect), higher is better).
        `base_class`: the pack's Verifier class as ComfyUI loaded it (default: lotts_ops from this repo)."""
        if base_class is None:
            if str(REPO) not in sys.path:
                sys.path.append(str(REPO))
            from lotts_ops.verifiers.base import Verifier as base_class
        scorers = self

        class WorldVerifier(base_class):
            name = "world verifier (-logit p(defect))"
            uses_prompt = False
            batch_relative = False

            def _score(self, images, prompts):
                return -scorers.defect_logit(images)

        return WorldVerifier()


def save_nets(path, nets, info, file_format):
    """fp16 safetensors of several nets under key prefixes ({prefix: net}), `info` in the metadata."""
    import safetensors.torch

    tensors = {prefix + key: value.detach().to(torch.float16).contiguous()
               for prefix, net in nets.items() for key, value in net.state_dict().items()
               if not key.endswith("num_batches_tracked")}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(tensors, str(path), metadata={"lotts_bench": json.dumps({"format": file_format, **info})})


def load_nets(path, nets, file_format):
    """Fill {prefix: net} from a save_nets file; returns its info."""
    import safetensors

    with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
        info = json.loads((f.metadata() or {}).get("lotts_bench", "{}"))
        if info.get("format") != file_format:
            raise ValueError(f"{path}: not a {file_format} file")
        state = {k: f.get_tensor(k).float() for k in f.keys()}
    for prefix, net in nets.items():
        missing, _ = net.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)},
                                         strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # not saved (save_nets)
        if missing:  # a net of another design: it would run with random weights where the file has none
            raise RuntimeError(f"{path}: {prefix} lacks {len(missing)} weights of this design (e.g. {missing[0]}); "
                               "retrain it")
    return info


def save(path, verifier_net, segmenter_net, info):
    save_nets(path, {"verifier.": verifier_net, "segmenter.": segmenter_net}, info, FORMAT)


def load(path=WEIGHTS):
    verifier_net, segmenter_net = VerifierNet(), SegmenterNet()
    info = load_nets(path, {"verifier.": verifier_net, "segmenter.": segmenter_net}, FORMAT)
    return Scorers(verifier_net, segmenter_net, info)


def spots_defective(binary_maps, min_pixels=MIN_SPOT_PIXELS):
    """(B, H, W) bool -> (B,) bool: does some 8-connected spot have at least min_pixels pixels?"""
    from scipy import ndimage

    out = np.zeros(len(binary_maps), bool)
    for i, m in enumerate(binary_maps):
        labelled, n = ndimage.label(m, structure=np.ones((3, 3)))
        out[i] = n > 0 and np.bincount(labelled.reshape(-1))[1:].max() >= min_pixels
    return out


# -- held-out quality of the judges -------------------------------------------------------------------
def auroc(scores, labels):
    """Mann-Whitney AUROC with tied ranks averaged (same definition as lotts_ops.defect_map.auroc)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1) > 0.5
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mean_ranks = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_ranks, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(scorers, images, masks, flags):
    """Image-level detection and pixel-level segmentation quality on the given (held-out) images."""
    logit = scorers.defect_logit(images).numpy()
    probs = scorers.defect_probability_maps(images).numpy()
    area = (probs > AREA_THRESHOLD).mean(axis=(1, 2))
    pred = probs > AREA_THRESHOLD
    inter = (pred & masks).sum(axis=(1, 2))
    union = (pred | masks).sum(axis=(1, 2))
    defect = flags.astype(bool)
    rng = np.random.default_rng(0)
    pixel_idx = rng.choice(masks.size, size=min(masks.size, 2_000_000), replace=False)
    return {
        "images": int(len(flags)), "defect_images": int(defect.sum()),
        "verifier_auroc": round(auroc(logit, defect), 4),
        "verifier_accuracy": round(float(((logit > 0) == defect).mean()), 4),
        "segmenter_image_auroc": round(auroc(area, defect), 4),
        "segmenter_pixel_auroc": round(auroc(probs.reshape(-1)[pixel_idx], masks.reshape(-1)[pixel_idx]), 4),
        "segmenter_iou_defect_images": round(float((inter[defect] / np.maximum(union[defect], 1)).mean()), 4),
        "segmenter_defective_clean": round(float(spots_defective(pred)[~defect].mean()), 4),
        "segmenter_defective_defect": round(float(spots_defective(pred)[defect].mean()), 4),
        "segmenter_area_clean_mean": round(float(area[~defect].mean()), 5),
        "segmenter_area_defect_mean": round(float(area[defect].mean()), 5),
        "true_area_defect_mean": round(float(masks[defect].mean()), 5),
        "verifier_vs_segmenter_rank_correlation": round(_spearman(logit, area), 4),
    }


def _spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def retrain(path=WEIGHTS, scale=1.0):
    world = load_world()
    info = {"world_version": world.WORLD_VERSION, "area_threshold": AREA_THRESHOLD}
    t0 = time.time()
    spec = {**VERIFIER_DATA, "count": max(64, int(VERIFIER_DATA["count"] * scale)) // 2 * 2}
    images, masks, flags = render(world, **spec)
    print(json.dumps({"rendered": spec, "seconds": round(time.time() - t0, 1)}), flush=True)
    ae_steps = max(AE_SNAPSHOTS[0], int(AE_STEPS * scale))
    snapshots = tuple(sorted({max(1, round(s * ae_steps / AE_STEPS)) for s in AE_SNAPSHOTS}))
    augmentation = {"autoencoder_family": {"design": "demo/autoencoder.py NarrowTAESD (own weights)",
                                           "steps": ae_steps, "snapshots": snapshots, "probability": ALTERNATE_P,
                                           "trained_on": "the judge's own training images"},
                    "other": "flips, smooth warps, resampling, blur, colour drift, noise"}
    verifier_net = VerifierNet()
    alternates = autoencoder_versions(images, train_lossy_autoencoders(images, ae_steps, snapshots, seed=3), seed=5)
    print(json.dumps({"autoencoder_versions": len(alternates), "seconds": round(time.time() - t0, 1)}), flush=True)
    info["verifier"] = {"data": spec, "params": sum(p.numel() for p in verifier_net.parameters()),
                        "augmentation": augmentation,
                        "training": train_net(verifier_net, images, flags.astype(np.float32), False,
                                              epochs=EPOCHS["verifier"], batch=64, lr=3e-3, seed=1, label="verifier",
                                              paired=True, alternates=alternates)}
    spec = {**SEGMENTER_DATA, "count": max(64, int(SEGMENTER_DATA["count"] * scale))}
    images, masks, flags = render(world, **spec)
    print(json.dumps({"rendered": spec, "seconds": round(time.time() - t0, 1)}), flush=True)
    segmenter_net = SegmenterNet()
    # its own autoencoder family, trained on its own images
    alternates = autoencoder_versions(images, train_lossy_autoencoders(images, ae_steps, snapshots, seed=4), seed=6)
    info["segmenter"] = {"data": spec, "params": sum(p.numel() for p in segmenter_net.parameters()),
                         "augmentation": augmentation,
                         "training": train_net(segmenter_net, images, masks.astype(np.float32), True,
                                               epochs=EPOCHS["segmenter"], batch=32, lr=3e-3, seed=2, label="segmenter",
                                               alternates=alternates)}
    scorers = Scorers(verifier_net, segmenter_net, info)
    # round-trip through fp16 before measuring, so the reported numbers are those of the saved file
    save(path, verifier_net, segmenter_net, info)
    scorers = load(path)
    test = render(world, **TEST_DATA)
    info["test"] = {"data": TEST_DATA, **evaluate(scorers, *test)}
    info["seconds"] = round(time.time() - t0, 1)
    save(path, scorers.verifier_net, scorers.segmenter_net, info)
    return info


def roundtrip(images, bench):
    """Test images through the demo VAE (VAEEncode -> VAEDecode): the domain the judges score in the search."""
    with torch.inference_mode():
        return bench.vae_decode(bench.vae_encode(list(images))).clamp(0, 1)


def write_results(info, path):
    from common import markdown_table, write_json

    path = write_json(path, info)
    rows = []
    for name, key in (("test images", "test"), ("same images through the demo VAE", "test_vae_roundtrip")):
        if key in info:
            t = info[key]
            rows.append([name, t["images"], f"{t['verifier_auroc']:.3f}", f"{100 * t['verifier_accuracy']:.1f} %",
                         f"{t['segmenter_image_auroc']:.3f}", f"{t['segmenter_pixel_auroc']:.3f}",
                         f"{t['segmenter_iou_defect_images']:.3f}",
                         f"{100 * t['segmenter_area_clean_mean']:.2f} / {100 * t['segmenter_area_defect_mean']:.2f} / "
                         f"{100 * t['true_area_defect_mean']:.2f}", f"{t['verifier_vs_segmenter_rank_correlation']:.2f}"])
    v, g = info["verifier"], info["segmenter"]
    text = ("## The world judges (held-out split test)\n\n"
            f"World verifier: {v['params']} parameters, trained on {v['data']['count']} images of split "
            f"{v['data']['split']} (clean/defective pairs of the same scene, image labels only, BCE + Bradley-Terry). "
            f"Held-out segmenter: {g['params']} parameters, trained on {g['data']['count']} images of split "
            f"{g['data']['split']} (indices from {g['data']['first']}) with pixel masks. Neither saw a diffusion "
            "output. Both are trained with 60 % of images replaced by round trips through a family of our own small "
            "autoencoders of the demo VAE's design (each judge's family trained on its own images), plus flips, "
            "warps, blur and noise, so that autoencoder softening is not mistaken for a defect.\n\n"
            + markdown_table(["images", "n", "verifier AUROC (defect vs clean)", "verifier accuracy (logit > 0)",
                              "segmenter image AUROC (area)", "segmenter pixel AUROC", "segmenter IoU (defect images)",
                              "area % clean / defect / true", "rank corr. verifier vs area"], rows))
    path.with_suffix(".md").write_text(text)
    return text


def main(argv=None, bench=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true", help="train both judges again (overwrites the weights)")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the training images (quick checks)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LOTTS_BENCH_THREADS", "1")),
                        help="torch threads (default 1, or $LOTTS_BENCH_THREADS: on a shared 2-core machine two "
                             "threads can be several times slower than one)")
    parser.add_argument("--test-images", type=int, default=TEST_DATA["count"])
    parser.add_argument("--roundtrip", type=int, default=0, metavar="N",
                        help="also evaluate on the first N test images through the demo VAE (starts ComfyUI)")
    parser.add_argument("--demo-weights", default=None)
    parser.add_argument("--out", default=None, help="write JSON + Markdown (in bench/results/ or absolute path)")
    opts = parser.parse_args(argv)
    if bench is None:  # standalone; inside a test the session's thread setting stays
        torch.set_num_threads(opts.threads)
    if opts.retrain:
        retrain(opts.weights, opts.scale)
    scorers = load(opts.weights)
    spec = {**TEST_DATA, "count": opts.test_images}
    images, masks, flags = render(load_world(), **spec)
    info = {**scorers.info, "test": {"data": spec, **evaluate(scorers, images, masks, flags)}}
    if opts.roundtrip:
        if bench is None:
            from common import Bench

            bench = Bench(weights=opts.demo_weights, threads=opts.threads, scorers=opts.weights)
        n = min(opts.roundtrip, len(images))
        info["test_vae_roundtrip"] = {"data": {**spec, "count": n}, "demo_weights": bench.weights,
                                      **evaluate(scorers, roundtrip(images[:n], bench), masks[:n], flags[:n])}
    print(json.dumps({k: v for k, v in info.items() if k.startswith("test")}, indent=1))
    if opts.out:
        print(write_results(info, opts.out))
    return info


if __name__ == "__main__":
    main()
