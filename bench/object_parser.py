"""World v3's held-out adherence checker: which objects (colour, shape) and which background an image shows.

Object-centric, a different design from the selecting verifier's pooled count heads:
1. a per-pixel colour net (full-resolution trunk, 1 + 6 colour classes) and a pooled background head;
2. connected components of object pixels (majority colour each; counting is by components, not regression);
3. a shape classifier on a fixed window around each component (RGB plus the component's mask as a fourth
   channel, so neighbours do not vote). The first parser classified shape per pixel and was right about an
   object's shape only ~75 % of the time (objects right 0.17 at six objects on clean renders): a pixel's context
   rarely covers the whole outline, while a window around the component always does.
"""

import json
import time

import numpy as np
import torch
import torch.nn.functional as F
import world_scorers as ws
from torch import nn

from demo import world3

COLOURS, SHAPES = list(world3.COLOURS), list(world3.SHAPES)
TEXTURES, TONES = list(world3.TEXTURES), list(world3.BACKGROUND_TONES)
MIN_COMPONENT = 25  # pixels: a parsed object smaller than this is noise
WINDOW = 48  # px around a component's centroid: objects have radius <= 16, plus defects that stick out


class FullResolutionTrunk(nn.Module):
    """Two full-resolution layers, dilated context (1, 2, 4, 8) at 1/2, fused back at full resolution: v3's defects
    and shapes are a few pixels wide (v2's judges pool the input to half size first). The held-out segmenter
    (judges_v3.SegmenterNetV3) and the colour net put their heads on it."""

    def __init__(self, width=(16, 32)):
        super().__init__()
        a, b = width
        self.stem = nn.Sequential(ws._conv(3, a), ws._conv(a, a))
        self.down = ws._conv(a, b, 2)
        self.context = nn.Sequential(*[ws._conv(b, b, dilation=d) for d in (1, 2, 4, 8)])
        self.fuse = nn.Sequential(ws._conv(a + b, a, kernel=1), ws._conv(a, a))

    def trunk(self, x):
        """(context features at 1/2, fused full-resolution features)."""
        s = self.stem(x)
        c = self.context(self.down(s))
        return c, self.fuse(torch.cat([s, F.interpolate(c, size=s.shape[-2:], mode="bilinear", align_corners=False)], 1))


class ColourNet(FullResolutionTrunk):
    """Per-pixel colour class (0 = background); background texture and tone from the pooled context."""

    def __init__(self, width=(16, 32)):
        super().__init__(width)
        a, b = width
        self.colour = nn.Conv2d(a, 1 + len(COLOURS), 1)
        self.background = nn.Linear(b, len(TEXTURES) + len(TONES))

    def forward(self, x):
        c, y = self.trunk(x)
        bg = self.background(c.mean(dim=(2, 3)))
        return self.colour(y), bg[:, :len(TEXTURES)], bg[:, len(TEXTURES):]


class ShapeNet(nn.Module):
    """Shape class of the object in a WINDOW x WINDOW crop (RGB + its component mask)."""

    def __init__(self, width=(24, 48, 64)):
        super().__init__()
        a, b, c = width
        self.features = nn.Sequential(ws._conv(4, a), ws._conv(a, b, 2), ws._conv(b, b), ws._conv(b, c, 2),
                                      ws._conv(c, c), ws._conv(c, c, 2), ws._conv(c, c))
        self.head = nn.Linear(c, len(SHAPES))

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def windows(x, masks):
    """Crops of normalised images x (B, 3, H, W) around masks [(image index, bool (H, W) tensor)] -> (N, 4, W, W)."""
    half = WINDOW // 2
    padded = F.pad(x, (half, half, half, half))
    out = []
    for b, mask in masks:
        ys, xs = mask.nonzero(as_tuple=True)
        cy, cx = int(ys.float().mean().round()), int(xs.float().mean().round())
        m = F.pad(mask.float(), (half, half, half, half))[cy:cy + WINDOW, cx:cx + WINDOW]
        out.append(torch.cat([padded[b, :, cy:cy + WINDOW, cx:cx + WINDOW], m[None] * 2 - 1]))
    return torch.stack(out) if out else x.new_zeros(0, 4, WINDOW, WINDOW)


def components(colour_map):
    """Object components of one (H, W) colour-class map: [(bool mask, colour index)], left to right."""
    from scipy import ndimage

    labels, n = ndimage.label(colour_map > 0)
    found = []
    for k in range(1, n + 1):
        where = labels == k
        if where.sum() < MIN_COMPONENT:
            continue
        colour = int(np.bincount(colour_map[where], minlength=1 + len(COLOURS))[1:].argmax())
        found.append((float(np.nonzero(where)[1].mean()), where, colour))
    found.sort(key=lambda f: f[0])
    return [(where, colour) for _, where, colour in found]


@torch.inference_mode()
def parse(colour_net, shape_net, x):
    """Per normalised image: (objects [(colour, shape)] left to right, background phrase)."""
    colour_logits, tex, ton = colour_net(x)
    colour = colour_logits.argmax(1).numpy()
    found = [components(colour[b]) for b in range(x.shape[0])]
    masks = [(b, torch.from_numpy(where)) for b, comps in enumerate(found) for where, _ in comps]
    shapes = shape_net(windows(x, masks)).argmax(1).tolist() if masks else []
    out, k = [], 0
    for b, comps in enumerate(found):
        objects = []
        for _, c in comps:
            objects.append((COLOURS[c], SHAPES[shapes[k]]))
            k += 1
        out.append((objects, f"a {TEXTURES[int(tex[b].argmax())]} {TONES[int(ton[b].argmax())]} background"))
    return out


def colour_loss(background_targets):
    """Step loss for judges_v3.train: per-pixel colour (labels carry colour * 16 + shape) and background."""
    texture, tone = background_targets
    weight = torch.tensor([0.3] + [1.0] * len(COLOURS))

    def step(net, x, idx, labels):
        colour_logits, tex, ton = net(x)
        loss = F.cross_entropy(colour_logits, (labels % 256) // 16, weight=weight)
        return loss + F.cross_entropy(tex, texture[idx]) + F.cross_entropy(ton, tone[idx])

    return step


def predicted_masks(colour_net, x, ids, shape_of):
    """The masks the parser will see at test time: components of colour_net's map on x, each labelled with the
    shape of the object (instance ids, 0 = background) covering most of it; components mostly off any object
    (a defect blob, background) are left out. -> ([(image index, mask)], [shape index])."""
    with torch.no_grad():
        colour = colour_net(x)[0].argmax(1).numpy()
    masks, labels = [], []
    for b in range(x.shape[0]):
        owner = ids[b].numpy()
        for where, _ in components(colour[b]):
            counts = np.bincount(owner[where], minlength=len(shape_of[b]) + 1)
            k = int(counts[1:].argmax()) + 1 if len(counts) > 1 else 0
            if k and counts[k] >= 0.5 * where.sum():
                masks.append((b, torch.from_numpy(where)))
                labels.append(shape_of[b][k - 1])
    return masks, labels


def train_shape_net(data, alternates, epochs=6, batch=16, lr=3e-3, seed=4, colour_net=None, predicted_p=0.7):
    """Train on every object of data's images (object_ids give the instance masks), through the judges'
    augmentations (flips, warps, blur, colour drift, autoencoder round trips); masks follow the warps. With
    `colour_net`, a batch uses the components that net finds (as `parse` does) with probability predicted_p: on
    round trips they lose the thin parts of an outline (a star's points) that the true masks keep, and a net
    trained on true masks alone read those stars as squares or triangles about 60 % of the time."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if colour_net is not None:
        colour_net.eval()
    net = ShapeNet()
    shape_of = [[SHAPES.index(o["shape"]) for o in objects] for objects in data["objects"]]
    n = len(data["images"])
    steps = epochs * (n // batch)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    net.train()
    losses, right, t0 = [], [], time.time()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen).numpy()
        for s in range(0, n - batch + 1, batch):
            idx = order[s:s + batch]
            use = (torch.rand(len(idx), generator=gen) < ws.ALTERNATE_P).numpy()
            images = np.where(use[:, None, None, None], alternates[idx], data["images"][idx])
            ids = torch.from_numpy(data["ids"][idx].astype(np.int64) + 1)  # 0 = background
            x, _, ids = ws.augment(ws.to_input(images), None, gen, labels=ids)
            masks, labels = [], []
            if colour_net is not None and float(torch.rand((), generator=gen)) < predicted_p:
                masks, labels = predicted_masks(colour_net, x, ids, [shape_of[i] for i in idx])
            if not masks:
                for b, i in enumerate(idx):
                    for k, shape in enumerate(shape_of[i]):
                        mask = ids[b] == k + 1
                        if int(mask.sum()) >= MIN_COMPONENT:
                            masks.append((b, mask))
                            labels.append(shape)
            logits = net(windows(x, masks))
            target = torch.tensor(labels)
            loss = F.cross_entropy(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            right.append(float((logits.argmax(1) == target).float().mean()))
        print(json.dumps({"net": "shape", "epoch": epoch, "loss": round(float(np.mean(losses[-(n // batch):])), 4),
                          "train_right": round(float(np.mean(right[-(n // batch):])), 4),
                          "seconds": round(time.time() - t0, 1)}), flush=True)
    net.eval()
    return net, {"epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "steps": steps,
                 "predicted_masks_p": predicted_p if colour_net is not None else 0.0,
                 "final_loss": round(float(np.mean(losses[-(n // batch):])), 4), "seconds": round(time.time() - t0, 1)}
