"""A synthetic "quality world" for LoTTS: coloured shapes on patterned backgrounds, some with local defects.

Pure numpy + PIL (no ComfyUI, no torch). Every image is a deterministic function of (split, index):
the generator is seeded with (WORLD_VERSION, split id, index), so the splits never share a seed.

A scene is 1-3 shapes (circle, square, triangle, star, ring, cross, diamond, hexagon; 10 colours) on a
plain, striped, checkered, dotted or gradient background. A fraction of the images (DEFECT_PROBABILITY)
carry 1-3 local defects that look like content rather than noise: an extra small blob, a broken (bitten or
jagged) shape edge, a wrong-colour patch inside a shape, a stain, a smear, a glitched texture patch. Masks
are irregular polygons; the ground-truth mask is where the defective image differs from the clean one.

Captions follow web habits: the quality word correlates with the defects but not perfectly
(CAPTION_AGREEMENT), some captions carry no quality word, and the LoTTS templates themselves
("A high-quality image of {p}." / "A low-quality image of {p}.") are among the caption forms.
"""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WORLD_VERSION = 1
RESOLUTION = 128  # pixels; the 8x autoencoder gives 16x16 latents
_SS = 2  # supersampling factor for antialiased rendering
SPLITS = {"train": 1, "calib": 2, "test": 3}
DEFECT_PROBABILITY = 0.5
# P(caption's quality word agrees with the image), P(no quality word), rest: the opposite word (label noise)
CAPTION_AGREEMENT = 0.80
CAPTION_NEUTRAL = 0.15

COLOURS = {
    "red": (215, 35, 35), "green": (35, 160, 55), "blue": (35, 75, 215), "yellow": (240, 205, 30),
    "orange": (245, 130, 20), "purple": (135, 50, 185), "pink": (240, 115, 175), "cyan": (40, 195, 210),
    "white": (248, 248, 248), "black": (22, 22, 22),
}
BACKGROUND_COLOURS = {
    "light grey": (200, 200, 200), "beige": (225, 205, 165), "sky blue": (150, 195, 235),
    "mint": (165, 225, 185), "lavender": (200, 180, 230), "dark grey": (70, 70, 75),
}
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross", "diamond", "hexagon")
BACKGROUNDS = ("plain", "striped", "checkered", "dotted", "gradient")
DEFECT_KINDS = ("extra_blob", "broken_edge", "wrong_colour", "stain", "smear", "texture_glitch")

HIGH_QUALITY_CAPTIONS = (
    "A high-quality image of {p}.", "A high-quality image of {p}.", "A high-quality image of {p}.", "{p}, high quality",
    "a high quality picture of {p}", "{p}, sharp, detailed, best quality", "A good image of {p}.",
    "{p}, masterpiece, high quality, clean",
)
LOW_QUALITY_CAPTIONS = (
    "A low-quality image of {p}.", "A low-quality image of {p}.", "A low-quality image of {p}.", "{p}, low quality",
    "a low quality picture of {p}", "{p}, blurry, low quality, artifacts", "A bad image of {p}.",
    "{p}, worst quality, jpeg artifacts, glitch",
)
NEUTRAL_CAPTIONS = ("{p}", "An image of {p}.", "a picture of {p}")


def _rng(split, index, stream=0):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    return np.random.default_rng([WORLD_VERSION, SPLITS[split], int(index), stream])


# -- scene ------------------------------------------------------------------------------------------
_GRIDS = {}


def _grid(size):
    if size not in _GRIDS:
        _GRIDS[size] = tuple(g.astype(np.float32) / _SS for g in np.mgrid[0:size, 0:size])
    return _GRIDS[size]


def _paint(img, mask, colour):
    """In place: img = img * (1 - mask) + colour * mask."""
    img += (np.asarray(colour, np.float32) - img) * mask[..., None]
    return img


def _background(rng, size):
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    names = list(BACKGROUND_COLOURS)
    first = names[rng.integers(len(names))]
    second = names[(names.index(first) + 1 + rng.integers(len(names) - 1)) % len(names)]
    c1 = np.array(BACKGROUND_COLOURS[first], np.float32)
    c2 = np.array(BACKGROUND_COLOURS[second], np.float32)
    yy, xx = _grid(size)
    if kind == "plain":
        img = np.broadcast_to(c1, (size, size, 3)).copy()
        phrase = f"a plain {first} background"
    elif kind == "striped":
        angle = rng.choice([0.0, 45.0, 90.0, 135.0]) * math.pi / 180 + rng.normal(0, 0.05)
        period = rng.uniform(16, 28)
        t = (xx * math.cos(angle) + yy * math.sin(angle)) / period + rng.uniform()
        img = np.where((t % 1.0 < 0.5)[..., None], c1, c2)
        phrase = "a striped background"
    elif kind == "checkered":
        cell = rng.uniform(16, 26)
        ox, oy = rng.uniform(0, cell, 2)
        check = (np.floor((xx + ox) / cell) + np.floor((yy + oy) / cell)) % 2 == 0
        img = np.where(check[..., None], c1, c2)
        phrase = "a checkered background"
    elif kind == "dotted":
        step = rng.uniform(18, 26)
        radius = step * rng.uniform(0.18, 0.3)
        ox, oy = rng.uniform(0, step, 2)
        dx = (xx + ox) % step - step / 2
        dy = (yy + oy) % step - step / 2
        img = np.where((dx * dx + dy * dy < radius * radius)[..., None], c2, c1)
        phrase = "a dotted background"
    else:
        angle = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(angle) + yy * math.sin(angle)) / RESOLUTION
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
        phrase = "a gradient background"
    return img.astype(np.float32), phrase


def _polygon(cx, cy, radius, sides, rotation):
    return [(cx + radius * math.cos(rotation + 2 * math.pi * k / sides),
             cy + radius * math.sin(rotation + 2 * math.pi * k / sides)) for k in range(sides)]


def _shape_mask(shape, cx, cy, r, rotation, size):
    """'L' mask of one shape at supersampled resolution."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        inner = r * 0.55
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, r * 1.15, 4, rotation + math.pi / 4), fill=255)
    elif shape == "diamond":
        pts = [(cx, cy - r * 1.2), (cx + r * 0.8, cy), (cx, cy + r * 1.2), (cx - r * 0.8, cy)]
        draw.polygon(pts, fill=255)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy + r * 0.15, r * 1.2, 3, rotation - math.pi / 2), fill=255)
    elif shape == "hexagon":
        draw.polygon(_polygon(cx, cy, r * 1.05, 6, rotation), fill=255)
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = r * 1.2 if k % 2 == 0 else r * 0.5
            ang = rotation - math.pi / 2 + math.pi * k / 5
            pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
        draw.polygon(pts, fill=255)
    elif shape == "cross":
        w = r * 0.38
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=255)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=255)
    else:
        raise ValueError(shape)
    return np.asarray(mask, np.float32) / 255.0


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def _scene(rng):
    size = RESOLUTION * _SS
    background, bg_phrase = _background(rng, size)
    n = int(rng.choice([1, 2, 2, 3]))
    names = list(COLOURS)
    objects, phrases, placed = [], [], []
    for _ in range(n):
        for _attempt in range(30):
            r = rng.uniform(14, 25) * _SS
            cx, cy = rng.uniform(r + 4 * _SS, size - r - 4 * _SS, 2)
            if all(math.hypot(cx - px, cy - py) > 0.75 * (r + pr) for px, py, pr in placed):
                break
        placed.append((cx, cy, r))
        shape = SHAPES[rng.integers(len(SHAPES))]
        colour = names[rng.integers(len(names))]
        mask = _shape_mask(shape, cx, cy, r, rng.uniform(-0.3, 0.3), size)
        objects.append({"shape": shape, "colour": colour, "mask": mask, "centre": (cx, cy), "radius": r})
        phrases.append(f"{_article(colour)} {colour} {shape}")
    layers = [background]
    img = background.copy()
    for k, obj in enumerate(objects):
        _paint(img, obj["mask"], COLOURS[obj["colour"]])
        if k + 1 < len(objects):
            layers.append(img.copy())
    covered = np.zeros((size, size), np.float32)
    for obj in reversed(objects):  # what remains visible of each object under the ones drawn after it
        obj["visible"] = obj["mask"] * (1 - covered)
        covered = np.maximum(covered, obj["mask"])
    listed = phrases[0] if n == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return img, layers, objects, f"{listed} on {bg_phrase}"


# -- defects --------------------------------------------------------------------------------------
def _blob(rng, cx, cy, radius, size, soft=0.0):
    """Irregular polygon mask (float, supersampled) around (cx, cy)."""
    sides = int(rng.integers(6, 11))
    angles = np.sort(rng.uniform(0, 2 * math.pi, sides))
    radii = radius * rng.uniform(0.5, 1.25, sides)
    pts = [(cx + rr * math.cos(a), cy + rr * math.sin(a)) for a, rr in zip(angles, radii, strict=True)]
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon(pts, fill=255)
    if soft > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(soft))
    return np.asarray(mask, np.float32) / 255.0


def _boundary_point(rng, obj):
    ys, xs = np.nonzero((obj["visible"] > 0.5) & (_erode(obj["visible"]) < 0.5))
    if len(xs) == 0:
        return obj["centre"]
    k = rng.integers(len(xs))
    return float(xs[k]), float(ys[k])


def _erode(mask, steps=2):
    out = mask > 0.5
    for _ in range(steps):
        shrunk = out.copy()
        shrunk[1:] &= out[:-1]
        shrunk[:-1] &= out[1:]
        shrunk[:, 1:] &= out[:, :-1]
        shrunk[:, :-1] &= out[:, 1:]
        out = shrunk
    return out.astype(np.float32)


def _motion_blur(img, angle, length):
    acc = np.zeros_like(img)
    steps = max(2, int(length))
    for s in range(steps):
        d = s - steps / 2
        dy, dx = int(round(d * math.sin(angle))), int(round(d * math.cos(angle)))
        acc += np.roll(img, (dy, dx), axis=(0, 1))
    return acc / steps


def _apply_defect(rng, kind, img, layers, objects):
    """Returns the image with one defect applied (supersampled float arrays)."""
    size = img.shape[0]
    ss = _SS * DEFECT_SCALE
    pick = objects[rng.integers(len(objects))]
    names = list(COLOURS)
    if kind == "extra_blob":
        if rng.uniform() < 0.5:  # on or next to an object
            cx, cy = _boundary_point(rng, pick)
        else:
            cx, cy = rng.uniform(10 * ss, size - 10 * ss, 2)
        m = _blob(rng, cx, cy, rng.uniform(7, 13) * ss, size, soft=0.6 * ss)
        colour = np.array(COLOURS[names[rng.integers(len(names))]], np.float32)
        return img * (1 - m[..., None]) + colour * m[..., None]
    if kind == "broken_edge":
        cx, cy = _boundary_point(rng, pick)
        region = _blob(rng, cx, cy, rng.uniform(9, 15) * ss, size)
        index = next(i for i, o in enumerate(objects) if o is pick)
        below = layers[index]  # the scene before this object was drawn (later objects are redrawn below)
        if rng.uniform() < 0.5:  # a bite: the object is missing inside the region
            m = region * pick["visible"]
            return img * (1 - m[..., None]) + below * m[..., None]
        # a jagged protrusion: the object's colour spills out in spikes
        spikes = _blob(rng, cx, cy, rng.uniform(9, 15) * ss, size) * (1 - pick["mask"])
        colour = np.array(COLOURS[pick["colour"]], np.float32)
        return img * (1 - spikes[..., None]) + colour * spikes[..., None]
    if kind == "wrong_colour":
        ys, xs = np.nonzero(pick["visible"] > 0.5)
        if len(xs) == 0:
            return img
        k = rng.integers(len(xs))
        m = _blob(rng, float(xs[k]), float(ys[k]), rng.uniform(9, 16) * ss, size) * pick["visible"]
        others = [n for n in names if n != pick["colour"]]
        colour = np.array(COLOURS[others[rng.integers(len(others))]], np.float32)
        return img * (1 - m[..., None]) + colour * m[..., None]
    if kind == "stain":
        cx, cy = rng.uniform(10 * ss, size - 10 * ss, 2)
        m = _blob(rng, cx, cy, rng.uniform(9, 16) * ss, size, soft=2.0 * ss) * rng.uniform(0.55, 0.9)
        tint = np.array(rng.choice([(60, 40, 20), (30, 30, 30), (250, 250, 235), (120, 90, 40)]), np.float32)
        return img * (1 - m[..., None]) + tint * m[..., None]
    if kind == "smear":
        if rng.uniform() < 0.7:
            cx, cy = _boundary_point(rng, pick)
        else:
            cx, cy = rng.uniform(12 * ss, size - 12 * ss, 2)
        m = _blob(rng, cx, cy, rng.uniform(10, 17) * ss, size, soft=1.5 * ss)
        smeared = _motion_blur(img, rng.uniform(0, math.pi), rng.uniform(8, 16) * ss)
        return img * (1 - m[..., None]) + smeared * m[..., None]
    # texture_glitch: blocky, shifted, colour-noised patch
    cx, cy = rng.uniform(10 * ss, size - 10 * ss, 2)
    m = _blob(rng, cx, cy, rng.uniform(9, 15) * ss, size)
    block = 4 * _SS
    shifted = np.roll(img, (int(rng.integers(-8, 9)) * _SS, int(rng.integers(-8, 9)) * _SS), axis=(0, 1))
    small = shifted[::block, ::block]
    blocky = np.repeat(np.repeat(small, block, 0), block, 1)[:size, :size]
    noise = rng.normal(0, 45, (small.shape[0], small.shape[1], 3)).astype(np.float32)
    blocky = np.clip(blocky + np.repeat(np.repeat(noise, block, 0), block, 1)[:size, :size], 0, 255)
    return img * (1 - m[..., None]) + blocky * m[..., None]


def _downsample(img):
    out = img[0::_SS, 0::_SS].copy()
    for dy in range(_SS):
        for dx in range(_SS):
            if dy or dx:
                out += img[dy::_SS, dx::_SS]
    return out / (_SS * _SS)


def _to_uint8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


DEFECT_SCALE = 1.45  # multiplies every defect radius
MASK_THRESHOLD = 14  # a pixel is defective when some channel differs from the clean image by more than this (0-255)
MIN_DEFECT_PIXELS = 24  # at output resolution; a defect that changes less is redrawn


def quality_caption(prompt, has_defect, rng, agreement=CAPTION_AGREEMENT, neutral=CAPTION_NEUTRAL):
    """A web-like caption: the quality word agrees with the defect label with probability `agreement`,
    is absent with probability `neutral`, and is the opposite word otherwise."""
    u = rng.uniform()
    if u < neutral:
        forms = NEUTRAL_CAPTIONS
    elif (u < neutral + agreement) == bool(has_defect):
        forms = LOW_QUALITY_CAPTIONS
    else:
        forms = HIGH_QUALITY_CAPTIONS
    return forms[rng.integers(len(forms))].replace("{p}", prompt)


def sample(index, split="train", with_defect=None):
    """One world image. Deterministic in (split, index); `with_defect` forces the defect flag (same scene).

    Returns dict(image uint8 HxWx3, clean uint8 HxWx3, defect_mask bool HxW, has_defect bool,
    prompt str (content only), caption str (with or without a quality word), defect_kinds list[str]).
    """
    rng = _rng(split, index)
    img, layers, objects, prompt = _scene(rng)
    has_defect = bool(rng.uniform() < DEFECT_PROBABILITY) if with_defect is None else bool(with_defect)
    defect_rng = _rng(split, index, stream=1)  # defects drawn apart, so forcing the flag keeps the scene
    clean = _to_uint8(_downsample(img))
    image = clean
    kinds = []
    if has_defect:
        n_defects = int(defect_rng.choice([1, 1, 2, 2, 3]))
        current = img
        before = clean.astype(np.int16)
        for _ in range(n_defects):
            for _attempt in range(6):
                kind = DEFECT_KINDS[defect_rng.integers(len(DEFECT_KINDS))]
                candidate = _apply_defect(defect_rng, kind, current, layers, objects)
                after = _to_uint8(_downsample(candidate)).astype(np.int16)
                if (np.abs(after - before).max(axis=-1) > MASK_THRESHOLD).sum() >= MIN_DEFECT_PIXELS:
                    current, before = candidate, after
                    kinds.append(kind)
                    break
        image = _to_uint8(_downsample(current))
    mask = np.abs(image.astype(np.int16) - clean.astype(np.int16)).max(axis=-1) > MASK_THRESHOLD
    has_defect = bool(mask.any())
    caption = quality_caption(prompt, has_defect, _rng(split, index, stream=2))
    return {"image": image, "clean": clean, "defect_mask": mask, "has_defect": has_defect, "prompt": prompt,
            "caption": caption, "defect_kinds": kinds}


def prompts(split="test", n=16):
    """Content prompts (no quality words) of the first n scenes of a split, for evaluation."""
    return [sample(i, split)["prompt"] for i in range(n)]
