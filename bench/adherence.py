"""The third world judge: a prompt-adherence checker. Which (colour, shape) objects and which background does an
image show? With it the instrument report measures whether the demo generator follows its prompts.

A small CNN with global max and mean pooling and three heads: 24 (colour, shape) pair logits (multi-label),
6 object-colour logits (multi-label) and the background (one of 3 plain colours or striped). Trained like the
other judges on world renders only (split "train", indices from FIRST_INDEX on, which the demo generator never
sees) with 60 % of the images replaced by round trips through its own family of small autoencoders of the demo
VAE's design, plus flips, warps, blur and noise, so that autoencoder softening is not mistaken for another shape.
Defective renders are included: a stray blob or a stain is not an object.

    .host/venv/bin/python bench/adherence.py --retrain   # a few minutes on one CPU core
    .host/venv/bin/python bench/adherence.py             # held-out accuracy on split "test"
"""

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
import world_scorers
from torch import nn

REPO = world_scorers.REPO
WEIGHTS = REPO / "bench" / "weights" / "adherence.safetensors"
FORMAT = "lotts_bench_adherence/1"
TRAIN_DATA = {"split": "train", "first": 50_000, "count": 4000}
TEST_DATA = {"split": "test", "first": 30_000, "count": 600}
EPOCHS = 12
THRESHOLD = 0.5  # a pair or colour is "present" when its probability exceeds this


def vocabulary(world):
    colours, shapes = list(world.COLOURS), list(world.SHAPES)
    backgrounds = [f"a plain {name} background" for name in world.BACKGROUND_COLOURS] + ["a striped background"]
    return colours, shapes, backgrounds


def labels(world, samples):
    """(pairs (N, C*S), colours (N, C), background index (N,)) from world samples' objects."""
    colours, shapes, backgrounds = vocabulary(world)
    pairs = np.zeros((len(samples), len(colours) * len(shapes)), np.float32)
    present = np.zeros((len(samples), len(colours)), np.float32)
    bg = np.zeros(len(samples), np.int64)
    for i, s in enumerate(samples):
        for obj in s["objects"]:
            c = colours.index(obj["colour"])
            pairs[i, c * len(shapes) + shapes.index(obj["shape"])] = 1
            present[i, c] = 1
        bg[i] = backgrounds.index(s["background"])
    return pairs, present, bg


def _conv(n_in, n_out, stride=1):
    return nn.Sequential(nn.Conv2d(n_in, n_out, 3, stride, 1, bias=False), nn.BatchNorm2d(n_out), nn.ReLU(inplace=True))


class AdherenceNet(nn.Module):
    def __init__(self, n_colours=6, n_shapes=4, n_backgrounds=4, width=(24, 48, 64)):
        super().__init__()
        a, b, c = width
        self.features = nn.Sequential(_conv(3, a, 2), _conv(a, a), _conv(a, b, 2), _conv(b, b), _conv(b, c, 2),
                                      _conv(c, c))
        self.n_pairs = n_colours * n_shapes
        self.n_colours = n_colours
        self.head = nn.Linear(2 * c, self.n_pairs + n_colours + n_backgrounds)

    def forward(self, x):
        f = self.features(x)
        out = self.head(torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], 1))
        return out[:, :self.n_pairs], out[:, self.n_pairs:self.n_pairs + self.n_colours], out[:, self.n_pairs + self.n_colours:]


def render(world, split, first, count):
    samples = [world.sample(i, split) for i in range(first, first + count)]
    return np.stack([s["image"] for s in samples]), samples


def train(net, images, targets, alternates, epochs=EPOCHS, batch=64, lr=3e-3, seed=11):
    pairs, present, bg = (torch.from_numpy(t) for t in targets)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = images.shape[0]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * (n // batch), pct_start=0.15)
    net.train()
    t0, losses = time.time(), []
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - batch + 1, batch):
            idx = order[start:start + batch].numpy()
            use = (torch.rand(len(idx), generator=gen) < world_scorers.ALTERNATE_P).numpy()
            x, _ = world_scorers.augment(world_scorers.to_input(
                np.where(use[:, None, None, None], alternates[idx], images[idx])), None, gen)
            p, c, b = net(x)
            loss = (F.binary_cross_entropy_with_logits(p, pairs[idx]) * 4 + F.binary_cross_entropy_with_logits(c, present[idx])
                    + F.cross_entropy(b, bg[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        print(json.dumps({"net": "adherence", "epoch": epoch, "loss": round(float(np.mean(losses[-(n // batch):])), 4),
                          "seconds": round(time.time() - t0, 1)}), flush=True)
    net.eval()
    return {"epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "seconds": round(time.time() - t0, 1),
            "final_loss": round(float(np.mean(losses[-(n // batch):])), 4)}


class Checker:
    """`check(images, prompts)` -> per prompted object: colour present, (colour, shape) present; background right."""

    def __init__(self, net, info, world):
        self.net = net.eval()
        self.info = info
        self.world = world
        self.colours, self.shapes, self.backgrounds = vocabulary(world)

    @torch.inference_mode()
    def probabilities(self, images, batch=64):
        outs = [self.net(world_scorers.to_input(images[i:i + batch])) for i in range(0, len(images), batch)]
        pairs, colours, bg = (torch.cat([o[k] for o in outs]) for k in range(3))
        return torch.sigmoid(pairs).numpy(), torch.sigmoid(colours).numpy(), torch.softmax(bg, 1).numpy()

    def check(self, images, prompts):
        """List (one per image) of dict(objects [(colour, shape, colour_present, shape_correct)], background_right)."""
        pairs, colours, bg = self.probabilities(images)
        out = []
        for i, prompt in enumerate(prompts):
            objects, background = self.world.parse_prompt(prompt)
            rows = []
            for colour, shape in objects:
                c = self.colours.index(colour)
                rows.append((colour, shape, bool(colours[i, c] > THRESHOLD),
                             bool(pairs[i, c * len(self.shapes) + self.shapes.index(shape)] > THRESHOLD)))
            out.append({"objects": rows, "background_right": bool(self.backgrounds[int(bg[i].argmax())] == background)})
        return out


def rates(checks):
    """Fractions of prompted colours present, prompted (colour, shape) objects correct, backgrounds right."""
    objects = [o for c in checks for o in c["objects"]]
    return {"objects": len(objects), "colour_present": float(np.mean([o[2] for o in objects])),
            "shape_correct": float(np.mean([o[3] for o in objects])),
            "background_right": float(np.mean([c["background_right"] for c in checks]))}


def save(path, net, info):
    world_scorers.save_nets(path, {"": net}, info, FORMAT)


def load(path=WEIGHTS):
    net = AdherenceNet()
    info = world_scorers.load_nets(path, {"": net}, FORMAT)
    return Checker(net, info, world_scorers.load_world())


def retrain(path=WEIGHTS, scale=1.0):
    world = world_scorers.load_world()
    spec = {**TRAIN_DATA, "count": max(128, int(TRAIN_DATA["count"] * scale))}
    t0 = time.time()
    images, samples = render(world, **spec)
    steps = max(world_scorers.AE_SNAPSHOTS[0], int(world_scorers.AE_STEPS * scale))
    snapshots = tuple(sorted({max(1, round(s * steps / world_scorers.AE_STEPS)) for s in world_scorers.AE_SNAPSHOTS}))
    family = world_scorers.train_lossy_autoencoders(images, steps, snapshots, seed=13)
    alternates = world_scorers.autoencoder_versions(images, family, seed=15)
    net = AdherenceNet()
    info = {"world_version": world.WORLD_VERSION, "data": spec, "params": sum(p.numel() for p in net.parameters()),
            "threshold": THRESHOLD, "autoencoder_family": {"steps": steps, "snapshots": snapshots},
            "training": train(net, images, labels(world, samples), alternates)}
    save(path, net, info)
    checker = load(path)  # measure the saved (fp16) weights
    info["test"] = evaluate(checker, world)
    info["seconds"] = round(time.time() - t0, 1)
    save(path, checker.net, info)
    return info


def evaluate(checker, world, spec=TEST_DATA, roundtrip=None):
    """Held-out rates on renders (all prompted objects are there, so every rate should be near 1) and, for a
    negative check, on the same images scored against another image's prompt (rates should be low)."""
    images, samples = render(world, **spec)
    if roundtrip is not None:
        images = roundtrip(images)
    prompts = [s["prompt"] for s in samples]
    shuffled = prompts[1:] + prompts[:1]
    return {"data": spec, "own_prompt": rates(checker.check(images, prompts)),
            "another_images_prompt": rates(checker.check(images, shuffled))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the training images (quick checks)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LOTTS_BENCH_THREADS", "1")))
    opts = parser.parse_args(argv)
    torch.set_num_threads(opts.threads)
    if opts.retrain:
        info = retrain(opts.weights, opts.scale)
    else:
        info = {**load(opts.weights).info}
        info["test"] = evaluate(load(opts.weights), world_scorers.load_world())
    print(json.dumps(info["test"], indent=1))
    return info


if __name__ == "__main__":
    main()
