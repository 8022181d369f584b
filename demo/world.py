"""A synthetic "quality world" for LoTTS (version 2): flat shapes on two kinds of background, with several
independent local defect sites per image.

Pure numpy + PIL (no ComfyUI, no torch). Every image is a deterministic function of (split, index, variant):
the generator is seeded with (WORLD_VERSION, split id, index, stream), so the splits never share a seed.

Why version 2 (see shared/research/world_v1_forensics.md): a local re-draw can only pay where a defect is a
local accident that the rest of the image does not predict. So each image has SITES_PER_IMAGE = 4-6 sites at
random places (on objects or on the background); each is defective on its own with SITE_DEFECT_PROBABILITY.
A defect covers 2x2 to 3x3 latent cells (16-24 px) and looks like content: a bite out of a shape, a spur of
its colour, a wrong-colour patch, a stain, a stray blob. The vocabulary is small enough for a CPU-trained
generator to follow prompts: 1-2 objects, 4 silhouette-distinct shapes, 6 colours, a plain (3 colours) or a
striped background.

`variant="correlated"` is the ablation: an image-level flag (p = CORRELATED_IMAGE_PROBABILITY) decides, and a
flagged image makes each site defective with CORRELATED_SITE_PROBABILITY, so the per-site rate is the same
but defects predict each other, as in world v1.

Captions follow web habits: the quality word follows the number of defects with label noise
(`quality_caption`), some captions carry no quality word, and the LoTTS templates themselves
("A high-quality image of {p}." / "A low-quality image of {p}.") are among the caption forms.
"""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WORLD_VERSION = 2
RESOLUTION = 128  # pixels; the 8x autoencoder gives 16x16 latents, one cell = 8x8 px
_SS = 2  # supersampling factor for antialiased rendering
SPLITS = {"train": 1, "calib": 2, "test": 3}
VARIANTS = ("independent", "correlated")

SITES_PER_IMAGE = (4, 5, 6)
SITE_DEFECT_PROBABILITY = 0.28
SITE_SIZES = (16, 20, 24)  # pixels: 2, 2.5 and 3 latent cells
ON_OBJECT_PROBABILITY = 0.4
CORRELATED_IMAGE_PROBABILITY = 0.5
CORRELATED_SITE_PROBABILITY = 0.56  # x 0.5 = the independent variant's per-site rate
# caption: P(low-quality word | n defects) = min(LOW_WORD_CAP, LOW_WORD_BASE + LOW_WORD_PER_DEFECT * n)
LOW_WORD_BASE, LOW_WORD_PER_DEFECT, LOW_WORD_CAP = 0.1, 0.3, 0.95
CAPTION_NEUTRAL = 0.15

COLOURS = {
    "red": (220, 30, 30), "green": (30, 165, 50), "blue": (30, 70, 220), "yellow": (245, 210, 20),
    "purple": (150, 40, 175), "black": (20, 20, 20),
}
BACKGROUND_COLOURS = {"light grey": (205, 205, 205), "beige": (230, 210, 165), "sky blue": (155, 200, 240)}
STRIPE_COLOURS = ((205, 205, 205), (245, 245, 245))
SHAPES = ("circle", "square", "triangle", "cross")
BACKGROUNDS = ("plain", "striped")
DEFECT_KINDS = ("bite", "spur", "wrong_colour", "stain", "stray_blob")
STAIN_TINT = (95, 65, 30)

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

MASK_THRESHOLD = 14  # a pixel is defective when some channel differs from the clean image by more than this (0-255)
MIN_DEFECT_PIXELS = 40  # at output resolution; a site whose defect changes fewer pixels is redrawn


def _rng(split, index, stream=0, version=WORLD_VERSION):
    """The generator of one (world version, split, index, stream): splits and versions never share a seed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    return np.random.default_rng([version, SPLITS[split], int(index), stream])


# -- scene ------------------------------------------------------------------------------------------
def _background(rng, size):
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    if kind == "plain":
        name = list(BACKGROUND_COLOURS)[rng.integers(len(BACKGROUND_COLOURS))]
        img = np.broadcast_to(np.array(BACKGROUND_COLOURS[name], np.float32), (size, size, 3)).copy()
        return img, f"a plain {name} background"
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / _SS
    angle = rng.choice([0.0, 45.0, 90.0, 135.0]) * math.pi / 180
    period = rng.uniform(14, 20)
    t = (xx * math.cos(angle) + yy * math.sin(angle)) / period + rng.uniform()
    c1, c2 = (np.array(c, np.float32) for c in STRIPE_COLOURS)
    return np.where((t % 1.0 < 0.5)[..., None], c1, c2).astype(np.float32), "a striped background"


def _polygon(cx, cy, radius, sides, rotation):
    return [(cx + radius * math.cos(rotation + 2 * math.pi * k / sides),
             cy + radius * math.sin(rotation + 2 * math.pi * k / sides)) for k in range(sides)]


def shape_mask(shape, cx, cy, r, rotation, size):
    """Float mask (size x size) of one shape of radius r centred at (cx, cy); also the shape checker's templates."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, r * 1.15, 4, rotation + math.pi / 4), fill=255)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy + r * 0.15, r * 1.25, 3, rotation - math.pi / 2), fill=255)
    elif shape == "cross":
        w = r * 0.4
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=255)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(mask, np.float32) / 255.0


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def _scene(rng):
    size = RESOLUTION * _SS
    img, bg_phrase = _background(rng, size)
    background = img.copy()
    n = 1 if rng.uniform() < 0.5 else 2
    colours = list(rng.choice(len(COLOURS), size=n, replace=False))  # two objects never share a colour
    objects, placed = [], []
    for k in range(n):
        for _attempt in range(50):
            r = rng.uniform(18, 26) * _SS
            cx, cy = rng.uniform(r + 6 * _SS, size - r - 6 * _SS, 2)
            if all(math.hypot(cx - px, cy - py) > r + pr + 6 * _SS for px, py, pr in placed):
                break
        placed.append((cx, cy, r))
        shape = SHAPES[rng.integers(len(SHAPES))]
        colour = list(COLOURS)[colours[k]]
        mask = shape_mask(shape, cx, cy, r, rng.uniform(-0.2, 0.2), size)
        img += (np.array(COLOURS[colour], np.float32) - img) * mask[..., None]
        objects.append({"shape": shape, "colour": colour, "mask": mask, "centre": (cx / _SS, cy / _SS),
                        "radius": r / _SS})
    phrases = [f"{_article(o['colour'])} {o['colour']} {o['shape']}" for o in objects]
    return img, background, objects, f"{' and '.join(phrases)} on {bg_phrase}"


# -- defect sites -----------------------------------------------------------------------------------
def _blob(rng, cx, cy, radius, size, soft=0.0, spread=(0.75, 1.05)):
    """Irregular polygon mask (float, supersampled) around (cx, cy); vertex radii vary by `spread`."""
    sides = int(rng.integers(6, 11))
    angles = np.sort(rng.uniform(0, 2 * math.pi, sides))
    radii = radius * rng.uniform(*spread, sides)
    pts = [(cx + rr * math.cos(a), cy + rr * math.sin(a)) for a, rr in zip(angles, radii, strict=True)]
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon(pts, fill=255)
    if soft > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(soft))
    return np.asarray(mask, np.float32) / 255.0


def _place_sites(rng, count, objects):
    """Site boxes (x0, y0, size) in output pixels, apart from each other: each at a random place, or with
    probability ON_OBJECT_PROBABILITY around a point of a random object (objects are a small part of the area)."""
    sites = []
    for _ in range(count):
        for _attempt in range(60):
            s = int(SITE_SIZES[rng.integers(len(SITE_SIZES))])
            if rng.uniform() < ON_OBJECT_PROBABILITY:
                obj = objects[rng.integers(len(objects))]
                angle, dist = rng.uniform(0, 2 * math.pi), obj["radius"] * rng.uniform(0, 1.1)
                x0 = int(np.clip(obj["centre"][0] + dist * math.cos(angle) - s / 2, 2, RESOLUTION - s - 2))
                y0 = int(np.clip(obj["centre"][1] + dist * math.sin(angle) - s / 2, 2, RESOLUTION - s - 2))
            else:
                x0, y0 = (int(v) for v in rng.integers(2, RESOLUTION - s - 2, 2))
            if all(abs(x0 + s / 2 - (a + b / 2)) > (s + b) / 2 + 4 or abs(y0 + s / 2 - (c + b / 2)) > (s + b) / 2 + 4
                   for a, c, b in sites):
                sites.append((x0, y0, s))
                break
    return sites


def _site_kinds(objects, box):
    """Defect kinds that make sense at a site: by how much of an object the site covers."""
    x0, y0, s = (v * _SS for v in box)
    cover = [float(o["mask"][y0:y0 + s, x0:x0 + s].mean()) for o in objects]
    best = int(np.argmax(cover))
    if cover[best] > 0.85:
        return ("wrong_colour", "stain", "bite"), objects[best]
    if cover[best] > 0.1:
        return ("bite", "spur", "wrong_colour", "stain"), objects[best]
    return ("stain", "stray_blob"), None


def _apply_defect(rng, kind, img, background, obj, box):
    """The image with one defect painted into the site box (supersampled float arrays)."""
    size = img.shape[0]
    x0, y0, s = (v * _SS for v in box)
    cx, cy = x0 + s / 2 + rng.uniform(-0.1, 0.1) * s, y0 + s / 2 + rng.uniform(-0.1, 0.1) * s
    region = _blob(rng, cx, cy, s / 2, size)
    names = list(COLOURS)
    if kind == "bite":  # the object is missing inside the region
        m = region * obj["mask"]
        return img + (background - img) * m[..., None]
    if kind == "spur":  # the object's colour spills out
        m = region * (1 - obj["mask"])
        return img + (np.array(COLOURS[obj["colour"]], np.float32) - img) * m[..., None]
    if kind == "wrong_colour":
        others = [n for n in names if obj is None or n != obj["colour"]]
        m = region * (obj["mask"] if obj is not None else 1.0)
        colour = np.array(COLOURS[others[rng.integers(len(others))]], np.float32)
        return img + (colour - img) * m[..., None]
    if kind == "stain":
        m = _blob(rng, cx, cy, s / 2, size, soft=1.0 * _SS) * 0.85
        return img + (np.array(STAIN_TINT, np.float32) - img) * m[..., None]
    colour = np.array(COLOURS[names[rng.integers(len(names))]], np.float32)  # stray_blob
    m = _blob(rng, cx, cy, s * 0.42, size)
    return img + (colour - img) * m[..., None]


def _downsample(img):
    out = img[0::_SS, 0::_SS].copy()
    for dy in range(_SS):
        for dx in range(_SS):
            if dy or dx:
                out += img[dy::_SS, dx::_SS]
    return out / (_SS * _SS)


def _to_uint8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _site_flags(rng, count, variant, rates=None):
    """Which sites are defective; `rates` = (site, correlated image, correlated site) probabilities (v2's default)."""
    site, image, correlated_site = rates or (SITE_DEFECT_PROBABILITY, CORRELATED_IMAGE_PROBABILITY,
                                             CORRELATED_SITE_PROBABILITY)
    if variant == "independent":
        return rng.uniform(size=count) < site
    if variant == "correlated":
        flagged = rng.uniform() < image
        draws = rng.uniform(size=count) < correlated_site
        return draws & flagged
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def quality_caption(prompt, n_defects, rng, neutral=CAPTION_NEUTRAL):
    """A web-like caption: no quality word with probability `neutral`, else the low-quality word with
    probability min(LOW_WORD_CAP, LOW_WORD_BASE + LOW_WORD_PER_DEFECT * n_defects), the high-quality one otherwise."""
    if rng.uniform() < neutral:
        forms = NEUTRAL_CAPTIONS
    elif rng.uniform() < min(LOW_WORD_CAP, LOW_WORD_BASE + LOW_WORD_PER_DEFECT * int(n_defects)):
        forms = LOW_QUALITY_CAPTIONS
    else:
        forms = HIGH_QUALITY_CAPTIONS
    return forms[rng.integers(len(forms))].replace("{p}", prompt)


def sample(index, split="train", with_defect=None, variant="independent"):
    """One world image. Deterministic in (split, index, variant); the scene and the site places do not depend on
    the variant. `with_defect` False gives the clean scene; True makes sure at least one site is defective.

    Returns dict(image uint8 HxWx3, clean uint8 HxWx3, defect_mask bool HxW, has_defect bool, n_defects int,
    sites list of dict(box (x0, y0, size) in pixels, defective bool, kind str | None, mask bool HxW),
    objects list of dict(shape, colour, centre, radius) in pixels, background str,
    prompt str (content only), caption str (with or without a quality word), defect_kinds list[str]).
    """
    rng = _rng(split, index)
    img, background, objects, prompt = _scene(rng)
    site_rng = _rng(split, index, stream=1)
    boxes = _place_sites(site_rng, int(site_rng.choice(SITES_PER_IMAGE)), objects)
    flags = _site_flags(_rng(split, index, stream=3 + VARIANTS.index(variant) if variant in VARIANTS else 3),
                        len(boxes), variant)
    if with_defect is False:
        flags = np.zeros_like(flags)
    elif with_defect and not flags.any():
        flags[0] = True
    clean = _to_uint8(_downsample(img))
    current, before = img, clean.astype(np.int16)
    sites, kinds = [], []
    for box, defective in zip(boxes, flags, strict=True):
        site = {"box": box, "defective": False, "kind": None, "mask": np.zeros(clean.shape[:2], bool)}
        if defective:
            allowed, obj = _site_kinds(objects, box)
            for _attempt in range(6):
                kind = allowed[site_rng.integers(len(allowed))]
                candidate = _apply_defect(site_rng, kind, current, background, obj, box)
                after = _to_uint8(_downsample(candidate)).astype(np.int16)
                changed = np.abs(after - before).max(axis=-1) > MASK_THRESHOLD
                if changed.sum() >= MIN_DEFECT_PIXELS:
                    current, before = candidate, after
                    site.update(defective=True, kind=kind, mask=changed)
                    kinds.append(kind)
                    break
        sites.append(site)
    image = _to_uint8(_downsample(current))
    mask = np.abs(image.astype(np.int16) - clean.astype(np.int16)).max(axis=-1) > MASK_THRESHOLD
    n_defects = sum(s["defective"] for s in sites)
    caption = quality_caption(prompt, n_defects, _rng(split, index, stream=2))
    return {"image": image, "clean": clean, "defect_mask": mask, "has_defect": bool(mask.any()),
            "n_defects": n_defects, "sites": sites, "defect_kinds": kinds, "prompt": prompt, "caption": caption,
            "objects": [{k: o[k] for k in ("shape", "colour", "centre", "radius")} for o in objects],
            "background": prompt.split(" on ", 1)[1]}


def prompts(split="test", n=16):
    """Content prompts (no quality words) of the first n scenes of a split, for evaluation."""
    return [sample(i, split)["prompt"] for i in range(n)]


def parse_prompt(prompt):
    """(objects [(colour, shape)], background phrase) of a content prompt as `sample` writes it."""
    content, background = prompt.split(" on ", 1)
    objects = []
    for phrase in content.split(" and "):
        words = phrase.split()
        objects.append((words[1], words[2]))
    return objects, background
