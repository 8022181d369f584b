"""The judges of world v3 (demo/world3.py): a prompt-aware selecting verifier and two held-out judges.

1. SELECTING VERIFIER (the stand-in for ImageReward, HPS, PickScore: it reads the prompt). One net, two parts: a
   defect part (a narrow full-resolution trunk, local defect logits at 1/2, log-sum-exp pooled) and a content part
   (a strided CNN's features, mean- and max-pooled, predict how many objects of each (colour, shape) pair the image shows, 0-6, and
   the background's texture and tone). Its score for (image, prompt) is one number,
       log p(clean | image) + log p(the prompt's counts and background | image),
   the log-probability that the image is clean AND shows what the prompt asks for. Changing a shape, dropping an
   object or adding one lowers it as surely as a defect does. Trained on split "train" from VERIFIER_FIRST on
   (the demo model never sees those indices), clean/defective pairs of one scene (Bradley-Terry, as reward
   models train), the cells of its 1/2 grid that hold a defect (as reward models with artifact heatmaps train)
   and content labels. `prompt_blind()` gives the defect part alone: the ablation row.
   Its defect part shares the full-resolution trunk's design with the held-out segmenter (narrower, its head on
   the 1/2-resolution context, trained on other data with image labels as well): their errors may correlate, so
   the segmenter is a weaker check of the verifier's defect picks than the checker is of its content picks.
2. HELD-OUT SEGMENTER (SegmenterNetV3, a full-resolution trunk): per-pixel defect probability, trained on
   split "calib" from SEGMENTER_FIRST on with ground-truth masks. Reports the defective-area fraction.
3. HELD-OUT ADHERENCE CHECKER, of another design than the verifier's content part (bench/object_parser.py): a
   per-pixel colour net whose connected components are the objects (counting by components, not by a learned
   regression), a shape classifier on a window around each component, and a background head. Trained on split
   "train" from PARSER_FIRST on.
Nothing here sees diffusion-model outputs. The verifier and the segmenter train with round trips through small
autoencoders of the demo VAE's design and v2's augmentations, so autoencoder softening is not taken for a defect;
the checker, which reads one model's decodes, with round trips through that model's own autoencoder (DEMO_MODEL).
The held-out judges never select and never choose a setting.

    .host/venv/bin/python bench/judges_v3.py --retrain   # about 15 minutes on one core
    .host/venv/bin/python bench/judges_v3.py             # held-out figures on split "test"
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for path in (str(BENCH), str(REPO)):
    if path not in sys.path:
        sys.path.append(path)

import object_parser  # noqa: E402
import world_scorers as ws  # noqa: E402  (v2's nets, augmentation, autoencoder family, save/load)
from common import autoencoder_digest  # noqa: E402

from demo import world3  # noqa: E402

WEIGHTS = REPO / "bench" / "weights" / "judges_v3.safetensors"
DEMO_MODEL = REPO / "demo" / "weights" / "lotts_demo_world_v3.safetensors"  # the model whose decodes are judged
FORMAT = "lotts_bench_judges_v3/2"  # /2: the object-centric parser
VERIFIER_FIRST, SEGMENTER_FIRST, PARSER_FIRST = 60_000, 100_000, 80_000
TEST_FIRST = 30_000  # split "test" indices the benchmarks never use for prompts
COLOURS, SHAPES = list(world3.COLOURS), list(world3.SHAPES)
PAIRS = [(c, s) for c in COLOURS for s in SHAPES]
MAX_COUNT = max(world3.OBJECT_COUNTS)
TEXTURES, TONES = list(world3.TEXTURES), list(world3.BACKGROUND_TONES)
LOCAL_POS_WEIGHT = 5.0  # defective cells of the verifier's defect grid (1/2 resolution) are rare


# -- labels ------------------------------------------------------------------------------------------------
def content_targets(prompt):
    """(pair counts (len(PAIRS),) int, texture index, tone index) of a prompt as world3 writes it."""
    objects, background = world3.parse_prompt(prompt)
    counts = np.zeros(len(PAIRS), np.int64)
    for pair in objects:
        counts[PAIRS.index(tuple(pair))] += 1
    words = background.split()  # "a {texture} {tone} background"
    return counts, TEXTURES.index(words[1]), TONES.index(words[2])


def pixel_classes(sample):
    """(colour class, shape class) per pixel: 0 = background, else 1 + index."""
    colour, shape = np.zeros(sample["object_ids"].shape, np.int64), np.zeros(sample["object_ids"].shape, np.int64)
    for i, o in enumerate(sample["objects"]):
        where = sample["object_ids"] == i
        colour[where], shape[where] = 1 + COLOURS.index(o["colour"]), 1 + SHAPES.index(o["shape"])
    return colour, shape


def render(split, first, count, paired=False):
    images, masks, flags, prompts, colour, shape, ids, objects = [], [], [], [], [], [], [], []
    for i in range(first, first + (count // 2 if paired else count)):
        for forced in ((False, True) if paired else (None,)):
            s = world3.sample(i, split, with_defect=forced)
            images.append(s["image"])
            masks.append(s["defect_mask"])
            flags.append(s["has_defect"])
            prompts.append(s["prompt"])
            c, h = pixel_classes(s)
            colour.append(c)
            shape.append(h)
            ids.append(s["object_ids"])
            objects.append(s["objects"])
    return {"images": np.stack(images), "masks": np.stack(masks), "flags": np.array(flags), "prompts": prompts,
            "colour": np.stack(colour), "shape": np.stack(shape), "ids": np.stack(ids), "objects": objects}


@torch.inference_mode()
def model_roundtrips(images, path=DEMO_MODEL, batch=32):
    """uint8 (N, H, W, 3) -> the same images encoded and decoded by the demo model's own autoencoder (uint8),
    in pure torch (demo/autoencoder.from_taesd_state_dict)."""
    from safetensors import safe_open

    from demo import autoencoder

    with safe_open(str(path), framework="pt", device="cpu") as f:
        ae = autoencoder.from_taesd_state_dict({k: f.get_tensor(k) for k in f.keys() if k.startswith("taesd_")})
    out = np.empty_like(images)
    for start in range(0, images.shape[0], batch):
        x = torch.from_numpy(images[start:start + batch]).permute(0, 3, 1, 2).float().div(255.0)
        y = ae.decode(ae.encode(x)).clamp(0, 1)
        out[start:start + batch] = (y * 255).round().byte().permute(0, 2, 3, 1).numpy()
    return out


# -- nets -------------------------------------------------------------------------------------------------
class PromptVerifierNet(nn.Module):
    def __init__(self, width=(16, 32, 64), pool_sharpness=4.0):
        super().__init__()
        a, b, c = width
        # a full-resolution first layer: v3's defects are a few pixels wide (a missing star point, a dot)
        self.features = nn.Sequential(ws._conv(3, a), ws._conv(a, a, 2), ws._conv(a, b, 2), ws._conv(b, b),
                                      ws._conv(b, c, 2), ws._conv(c, c), ws._conv(c, c, dilation=2))
        # The defect part sees the image at full resolution (narrower than the held-out segmenter, its head on the
        # 1/2-resolution context): on the strided content features it separated defective from clean at AUROC
        # 0.58, also with per-cell supervision.
        self.defect_trunk = object_parser.FullResolutionTrunk(width=(12, 24))
        self.defect_head = nn.Conv2d(24, 1, 1)
        self.content = nn.Sequential(nn.Linear(2 * c, 128), nn.ReLU(inplace=True))
        self.count_head = nn.Linear(128, len(PAIRS) * (MAX_COUNT + 1))
        self.background_head = nn.Linear(128, len(TEXTURES) + len(TONES))
        self.r = pool_sharpness

    def forward(self, x):
        return self.parts(x)[1:]

    def parts(self, x):
        """(local defect logits (B, h, w) at 1/2, defect logit, count logits, texture, tone logits)."""
        f = self.features(x)
        local = self.defect_head(self.defect_trunk.trunk(x)[0])[:, 0]
        m = local.flatten(1)
        defect = (torch.logsumexp(self.r * m, dim=1) - math.log(m.shape[1])) / self.r
        h = self.content(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))
        counts = self.count_head(h).reshape(-1, len(PAIRS), MAX_COUNT + 1)
        bg = self.background_head(h)
        return local, defect, counts, bg[:, :len(TEXTURES)], bg[:, len(TEXTURES):]


class SegmenterNetV3(object_parser.FullResolutionTrunk):
    """Full-resolution defect segmenter (v2's design pools the input to half size first, which erases v3's
    few-pixel structural defects)."""

    def __init__(self, width=(16, 32)):
        super().__init__(width)
        self.out = nn.Conv2d(width[0], 1, 1)

    def forward(self, x):
        return self.out(self.trunk(x)[1])[:, 0]


def segmenter_loss(pos_weight=10.0):
    def step(net, x, idx, labels):
        return F.binary_cross_entropy_with_logits(net(x), (labels >= 256).float(), pos_weight=torch.tensor(pos_weight))

    return step


# -- training ---------------------------------------------------------------------------------------------
def _batches(n, batch, gen, paired):
    if paired:
        order = (torch.randperm(n // 2, generator=gen)[:, None] * 2 + torch.arange(2)).reshape(-1)
    else:
        order = torch.randperm(n, generator=gen)
    return [order[s:s + batch].numpy() for s in range(0, n - batch + 1, batch)]


def train(net, data, alternates, epochs, batch, lr, seed, label, step_loss):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = len(data["images"])
    steps = epochs * (n // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    net.train()
    losses, t0 = [], time.time()
    for epoch in range(epochs):
        for idx in _batches(n, batch, gen, label == "verifier"):
            use = (torch.rand(len(idx), generator=gen) < ws.ALTERNATE_P).numpy()
            images = np.where(use[:, None, None, None], alternates[idx], data["images"][idx])
            labels = torch.from_numpy(data["colour"][idx] * 16 + data["shape"][idx] + 256 * data["masks"][idx])
            x, _, labels = ws.augment(ws.to_input(images), None, gen, labels=labels)
            loss = step_loss(net, x, idx, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        print(json.dumps({"net": label, "epoch": epoch, "loss": round(float(np.mean(losses[-(n // batch):])), 4),
                          "seconds": round(time.time() - t0, 1)}), flush=True)
    net.eval()
    return {"epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "steps": steps,
            "final_loss": round(float(np.mean(losses[-(n // batch):])), 4), "seconds": round(time.time() - t0, 1)}


def verifier_loss(data):
    targets = [content_targets(p) for p in data["prompts"]]
    counts = torch.from_numpy(np.stack([t[0] for t in targets]))
    texture = torch.tensor([t[1] for t in targets])
    tone = torch.tensor([t[2] for t in targets])
    flags = torch.from_numpy(data["flags"]).float()

    def step(net, x, idx, labels):
        local, defect, count_logits, tex, ton = net.parts(x)
        y = flags[idx]
        loss = F.binary_cross_entropy_with_logits(defect, y)
        # Where the defect is, on the defect part's own 1/2 grid: reward models with artifact heatmaps train so
        # (Rich Human Feedback, Liang et al. 2024).
        where = F.adaptive_max_pool2d((labels >= 256).float()[:, None], local.shape[-2:])[:, 0]
        loss = loss + F.binary_cross_entropy_with_logits(local, where, pos_weight=torch.tensor(LOCAL_POS_WEIGHT))
        gap = (defect[1::2] - defect[0::2]) * (y[1::2] - y[0::2])  # Bradley-Terry on each (clean, defective) pair
        keep = (y[1::2] != y[0::2]).float()
        loss = loss + (F.softplus(-gap) * keep).sum() / keep.sum().clamp_min(1)
        loss = loss + F.cross_entropy(count_logits.reshape(-1, MAX_COUNT + 1), counts[idx].reshape(-1)) * 3
        return loss + F.cross_entropy(tex, texture[idx]) + F.cross_entropy(ton, tone[idx])

    return step


def background_targets(data):
    targets = [content_targets(p) for p in data["prompts"]]
    return torch.tensor([t[1] for t in targets]), torch.tensor([t[2] for t in targets])


# -- inference --------------------------------------------------------------------------------------------
def _as_uint8(images):
    if isinstance(images, np.ndarray):
        return images
    return (images[..., :3].clamp(0, 1) * 255).round().byte().cpu().numpy()


class Judges:
    def __init__(self, verifier_net, segmenter_net, colour_net, shape_net, info):
        self.verifier_net, self.segmenter_net = verifier_net.eval(), segmenter_net.eval()
        self.colour_net, self.shape_net = colour_net.eval(), shape_net.eval()
        self.info = info
        self.spot_threshold = ws.AREA_THRESHOLD  # raw p at which a pixel is defective (set_spot_threshold)

    def set_spot_threshold(self, threshold):
        """The segmenter's operating point, chosen on calib data (world3_gates.calibrate_segmenter). Every reader
        thresholds the maps at 0.5 (v2's instrument code too), so the maps are shifted in logit space: a shown
        p > 0.5 is a raw p > threshold."""
        self.spot_threshold = float(threshold)

    @torch.inference_mode()
    def verifier_parts(self, images, prompts):
        """(log p(clean), log p(prompt content)) per image, each (B,)."""
        x = ws.to_input(_as_uint8(images))
        defect, count_logits, tex, ton = self.verifier_net(x)
        targets = [content_targets(p) for p in prompts]
        counts = torch.from_numpy(np.stack([t[0] for t in targets]))
        log_counts = count_logits.log_softmax(-1).gather(-1, counts[..., None])[..., 0].sum(-1)
        log_bg = (tex.log_softmax(-1)[torch.arange(len(prompts)), torch.tensor([t[1] for t in targets])]
                  + ton.log_softmax(-1)[torch.arange(len(prompts)), torch.tensor([t[2] for t in targets])])
        return -F.softplus(defect), log_counts + log_bg

    def score(self, images, prompts):
        clean, content = self.verifier_parts(images, prompts)
        return clean + content

    @torch.inference_mode()
    def prompt_blind_score(self, images):
        return -self.verifier_net(ws.to_input(_as_uint8(images)))[0]

    @torch.inference_mode()
    def defect_probability_maps(self, images):
        """The held-out segmenter's per-pixel defect probability at its operating point, (B, H, W): > 0.5 where
        the raw probability exceeds spot_threshold."""
        shift = math.log(self.spot_threshold / (1 - self.spot_threshold))
        return torch.sigmoid(self.segmenter_net(ws.to_input(_as_uint8(images))) - shift)

    def segment(self, images):
        """(defective-area fraction, has a defect spot) per image, from one pass of the segmenter."""
        spots = (self.defect_probability_maps(images) > ws.AREA_THRESHOLD).numpy()
        return spots.mean(axis=(1, 2)), ws.spots_defective(spots)

    def defect_area(self, images):
        return self.segment(images)[0]

    def segmenter_defective(self, images):
        return self.segment(images)[1]

    defective = segmenter_defective  # the name v2's instrument code calls

    def parse(self, images):
        """Per image: (objects [(colour, shape)] left to right, background phrase)."""
        return object_parser.parse(self.colour_net, self.shape_net, ws.to_input(_as_uint8(images)))

    def adherence(self, images, prompts):
        """Per image: dict(colours present share, objects right, count right, background right, right (all))."""
        rows = []
        for (seen, bg), prompt in zip(self.parse(images), prompts, strict=True):
            asked, asked_bg = world3.parse_prompt(prompt)
            colours = {c for c, _ in asked}
            seen_colours = {c for c, _ in seen}
            objects_right = sorted(seen) == sorted(asked)
            rows.append({"colours_present": len(colours & seen_colours) / len(colours),
                         "objects_right": objects_right, "count_right": len(seen) == len(asked),
                         "background_right": bg == asked_bg, "right": objects_right and bg == asked_bg})
        return rows

    def verifier(self, base_class=None, prompt_aware=True):
        """The selecting verifier as a LOTTS_VERIFIER object (higher is better)."""
        if base_class is None:
            from lotts_ops.verifiers.base import Verifier as base_class
        judges = self

        class WorldVerifierV3(base_class):
            name = ("world v3 verifier (log p(clean) + log p(prompt | image))" if prompt_aware
                    else "world v3 verifier, prompt-blind ablation (-logit p(defect))")
            uses_prompt = prompt_aware
            batch_relative = False

            def _score(self, images, prompts):
                if prompt_aware:
                    return judges.score(images, prompts)
                return judges.prompt_blind_score(images)

        return WorldVerifierV3()


def save(path, judges):
    ws.save_nets(path, {"verifier.": judges.verifier_net, "segmenter.": judges.segmenter_net,
                        "parser.": judges.colour_net, "shape.": judges.shape_net}, judges.info, FORMAT)


def load(path=WEIGHTS):
    nets = _fresh_nets()
    info = ws.load_nets(path, nets, FORMAT)
    if info.get("untrained"):
        raise RuntimeError(f"{path}: {', '.join(info['untrained'])} never trained (a partial --retrain); retrain with "
                           f"--nets {','.join(info['untrained'])}")
    return Judges(*nets.values(), info)


def _fresh_nets():
    return {"verifier.": PromptVerifierNet(), "segmenter.": SegmenterNetV3(), "parser.": object_parser.ColourNet(),
            "shape.": object_parser.ShapeNet()}


# -- retraining and held-out figures ---------------------------------------------------------------------------
def retrain(path=WEIGHTS, scale=1.0, nets=("verifier", "segmenter", "parser"), verifier_roundtrips="lossy"):
    """Train the named nets; the others are taken from the existing weights file. `verifier_roundtrips`: the
    verifier's distorted copies come from the family of small lossy autoencoders ("lossy") or from the demo
    model's own autoencoder ("model"), as the checker's do."""
    torch.set_num_threads(1)
    n = lambda count: max(64, int(count * scale))  # noqa: E731
    epochs = lambda full: max(1, int(full * min(1.0, scale * 4)))  # noqa: E731
    t0 = time.time()
    held = _fresh_nets()
    keep = {k: net for k, net in held.items() if k[:-1] not in nets and not (k == "shape." and "parser" in nets)}
    # "shape" alone retrains the shape classifier on the components of the colour net in the file
    info = {"world_version": world3.WORLD_VERSION}
    untrained = []
    for prefix, net in keep.items():  # a net of an older design cannot load: it must be retrained, said loudly
        if not Path(path).is_file():
            print(json.dumps({"warning": f"{path} does not exist: {prefix} stays untrained until it is retrained"}))
            untrained.append(prefix[:-1])
            continue
        try:
            info = {k: v for k, v in ws.load_nets(path, {prefix: net}, FORMAT).items() if k != "untrained"}
        except RuntimeError as error:
            print(json.dumps({"warning": f"{prefix} in {path} is of an older design; retrain it", "error": str(error)[:200]}))
            untrained.append(prefix[:-1])
    if untrained:  # written down, so that load() refuses the file until they are retrained
        info["untrained"] = untrained
    autoencoders = None
    verifier, segmenter, colour, shape = held.values()
    if "verifier" in nets:
        vdata = render("train", VERIFIER_FIRST, n(4000), paired=True)
        if verifier_roundtrips == "model":
            alternates = model_roundtrips(vdata["images"])
        else:
            autoencoders = ws.train_lossy_autoencoders(vdata["images"][: n(2000)])
            alternates = ws.autoencoder_versions(vdata["images"], autoencoders, 11)
        verifier = PromptVerifierNet()
        info["verifier"] = train(verifier, vdata, alternates, epochs(16), 32, 3e-3, 1, "verifier", verifier_loss(vdata))
        info["verifier_roundtrips"] = verifier_roundtrips
    if "segmenter" in nets:
        sdata = render("calib", SEGMENTER_FIRST, n(2400))
        autoencoders = autoencoders or ws.train_lossy_autoencoders(sdata["images"][: n(2000)])
        segmenter = SegmenterNetV3()
        info["segmenter"] = train(segmenter, sdata, ws.autoencoder_versions(sdata["images"], autoencoders, 12),
                                  epochs(16), 16, 3e-3, 2, "segmenter", segmenter_loss())
    if "parser" in nets or "shape" in nets:
        pdata = render("train", PARSER_FIRST, n(3000))
        # The checker reads decoded images of one model: it trains on round trips through that model's own
        # autoencoder (trained on the family of small lossy autoencoders it read them at objects right 0.73 ->
        # 0.23 on round trips, 0.98 -> 0.86 on renders).
        alternates = model_roundtrips(pdata["images"])
        if "parser" in nets:
            info["parser_alternates"] = f"round trips through {DEMO_MODEL.name}'s autoencoder"
            colour = object_parser.ColourNet()
            info["parser"] = train(colour, pdata, alternates, epochs(6), 16, 3e-3, 3, "parser",
                                   object_parser.colour_loss(background_targets(pdata)))
        shape, info["shape"] = object_parser.train_shape_net(pdata, alternates, epochs(6), colour_net=colour)
        info["parser_autoencoder_sha256"] = autoencoder_digest(DEMO_MODEL)  # whose decodes it reads
    info["seconds_last_retrain"] = round(time.time() - t0, 1)
    info["retrained_last"] = list(nets)
    judges = Judges(verifier, segmenter, colour, shape, info)
    save(path, judges)
    return judges


def evaluate(judges, count=600, first=TEST_FIRST):
    """Held-out figures on split "test" renders: the verifier's defect and content parts, the segmenter, the parser;
    per complexity for the parser (right count, objects right)."""
    data = render("test", first, count)
    flags = data["flags"]
    clean, content = judges.verifier_parts(data["images"], data["prompts"])
    shuffled = data["prompts"][1:] + data["prompts"][:1]  # another scene's prompt
    _, content_wrong = judges.verifier_parts(data["images"], shuffled)
    rows = judges.adherence(data["images"], data["prompts"])
    wrong_rows = judges.adherence(data["images"], shuffled)
    trip_rows = judges.adherence(model_roundtrips(data["images"]), data["prompts"])

    def by_objects(rows):
        by_n = {}
        for r, prompt in zip(rows, data["prompts"], strict=True):
            by_n.setdefault(len(world3.parse_prompt(prompt)[0]), []).append(r)
        return {str(k): {"count_right": round(float(np.mean([r["count_right"] for r in v])), 3),
                         "objects_right": round(float(np.mean([r["objects_right"] for r in v])), 3),
                         "images": len(v)} for k, v in sorted(by_n.items())}

    return {
        "images": count,
        "verifier_defect_auroc": round(ws.auroc(-clean.numpy(), flags), 4),
        "verifier_prefers_own_prompt": round(float((content > content_wrong).float().mean()), 4),
        "segmenter_image_auroc": round(ws.auroc(judges.defect_area(data["images"]), flags), 4),
        "segmenter_false_positive_clean_renders": round(float(judges.segmenter_defective(data["images"])[~flags].mean()), 4),
        "parser_right": round(float(np.mean([r["right"] for r in rows])), 4),
        "parser_right_other_prompt": round(float(np.mean([r["right"] for r in wrong_rows])), 4),
        "parser_by_objects": by_objects(rows),
        "parser_right_model_roundtrips": round(float(np.mean([r["right"] for r in trip_rows])), 4),
        "parser_by_objects_model_roundtrips": by_objects(trip_rows),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--nets", default="verifier,segmenter,parser", help="which nets --retrain trains")
    parser.add_argument("--scale", type=float, default=1.0, help="data and epochs scale (smoke runs)")
    parser.add_argument("--verifier-roundtrips", default="lossy", choices=("lossy", "model"),
                        help="the verifier's distorted copies: small lossy autoencoders, or the demo model's own")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--count", type=int, default=600, help="held-out test renders to evaluate")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "judges_v3.json"))
    opts = parser.parse_args(argv)
    torch.set_num_threads(1)
    judges = (retrain(opts.weights, opts.scale, tuple(opts.nets.split(",")), opts.verifier_roundtrips) if opts.retrain
              else load(opts.weights))
    result = {"weights": Path(opts.weights).name, "training": judges.info,
              "heldout": evaluate(judges, opts.count)}
    Path(opts.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["heldout"], indent=1))
    return result


if __name__ == "__main__":
    main()
