"""The LoTTS quality world, version 3: 1 to 6 objects on textured backgrounds, with structural defects.

Pure numpy + PIL (no ComfyUI, no torch); deterministic in (split, index, n_objects, variant).

Why version 3 (shared/LOTTS_DESIGN.md section 6): v2's defects were off-palette colour and extra edges that a
Sobel filter or a palette distance found as well as the model's quality signal did, and v2 never varied how many
places an image can fail. Here:
- **Complexity axis.** A prompt names 1-6 objects (listed left to right). Every object carries one defect site and
  the background two, each defective on its own with SITE_DEFECT_PROBABILITY, so P(clean) = (1 - p)^(n + 2):
  about 31 % at one object, 5 % at six.
- **Defects trivial cues cannot find.** Every defect is an in-palette, in-style error of structure: a cross with a
  missing, extra or bent arm, a star with a missing, extra or forked point, a cut or extra corner, a dent or a fused
  lobe; on the background a split or bent stripe, a missing, extra or fused dot, a flipped checker cell. A defect
  uses only the colours already there (the object's, the texture's two tones), on textured backgrounds whose edges
  are everywhere.
`variant="correlated"` keeps v2's ablation: an image-level flag decides and a flagged image makes each site
defective with twice the rate, so sites predict each other.
"""

import math

import numpy as np
from PIL import Image, ImageDraw

from demo import world
from demo.world import (  # noqa: F401  (the caption model is v2's: same forms, same label noise)
    CAPTION_NEUTRAL,
    HIGH_QUALITY_CAPTIONS,
    LOW_QUALITY_CAPTIONS,
    LOW_WORD_BASE,
    LOW_WORD_CAP,
    LOW_WORD_PER_DEFECT,
    NEUTRAL_CAPTIONS,
    quality_caption,
)

WORLD_VERSION = 3
RESOLUTION = 128  # pixels; the 8x autoencoder gives 16x16 latents, one cell = 8x8 px
_SS = 2  # supersampling factor for antialiased rendering
SPLITS = {"train": 1, "calib": 2, "test": 3}
VARIANTS = ("independent", "correlated")
OBJECT_COUNTS = (1, 2, 3, 4, 5, 6)
BACKGROUND_SITES = 2
SITE_DEFECT_PROBABILITY = 0.32  # P(clean) = 0.68 ** (n + 2): 0.31 at n = 1, 0.046 at n = 6
CORRELATED_IMAGE_PROBABILITY = 0.5
CORRELATED_SITE_PROBABILITY = 0.64  # x 0.5 = the independent variant's per-site rate
OBJECT_RADIUS = (12.0, 16.0)  # pixels, at every complexity: complexity is the count, not the size

COLOURS = {
    "red": (215, 35, 35), "green": (35, 160, 55), "blue": (35, 75, 215), "yellow": (240, 205, 25),
    "purple": (145, 45, 170), "black": (25, 25, 25),
}
# each background colour is a texture of two tones, both "in palette"
BACKGROUND_TONES = {
    "grey": ((215, 215, 215), (125, 125, 125)),
    "beige": ((235, 218, 178), (165, 130, 80)),
    "blue": ((180, 212, 242), (95, 135, 195)),
}
TEXTURES = ("striped", "dotted", "checkered")
SHAPES = ("circle", "square", "triangle", "cross", "star")
OBJECT_DEFECTS = {
    "circle": ("dent", "lobe"),
    "square": ("cut_corner", "extra_point", "dent"),
    "triangle": ("cut_corner", "extra_point", "dent"),
    "cross": ("missing_arm", "extra_arm", "bent_arm"),
    "star": ("missing_point", "extra_point", "forked_point"),
}
BACKGROUND_DEFECTS = {
    "striped": ("split_stripe", "bent_stripe"),
    "dotted": ("missing_dot", "extra_dot", "fused_dots"),
    "checkered": ("flipped_cell", "split_checker"),
}
DEFECT_KINDS = tuple(sorted({k for v in (*OBJECT_DEFECTS.values(), *BACKGROUND_DEFECTS.values()) for k in v}))
MASK_THRESHOLD = 14  # a pixel is defective when some channel differs from the clean image by more than this (0-255)
MIN_DEFECT_PIXELS = 30  # at output resolution; a site whose defect changes fewer pixels is redrawn


def _rng(split, index, stream=0):
    return world._rng(split, index, stream, version=WORLD_VERSION)


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


# -- textures: a texture is a function of pixel coordinates and its parameters ---------------------------------
def _texture_params(rng, kind):
    if kind == "striped":
        return {"angle": float(rng.choice([0.0, 45.0, 90.0, 135.0])), "period": float(rng.uniform(10, 13)),
                "phase": float(rng.uniform())}
    if kind == "dotted":
        return {"spacing": float(rng.uniform(11, 13)), "radius": 0.27, "offset": rng.uniform(0, 1, 2).tolist()}
    return {"cell": float(rng.uniform(9, 11)), "offset": rng.uniform(0, 1, 2).tolist()}


def _texture_fraction(kind, p, size, extra_dots=()):
    """Second-tone coverage (0..1, float) of a texture on the supersampled grid."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / _SS
    if kind == "striped":
        a = p["angle"] * math.pi / 180
        t = (xx * math.cos(a) + yy * math.sin(a)) / p["period"] + p["phase"]
        return (t % 1.0 < 0.5).astype(np.float32)
    if kind == "dotted":
        s = p["spacing"]
        u, v = xx / s + p["offset"][0], yy / s + p["offset"][1]
        d = np.hypot(u - np.round(u), v - np.round(v))
        out = (d < p["radius"]).astype(np.float32)
        for cx, cy, r in extra_dots:  # pixel centre and radius
            out = np.maximum(out, (np.hypot(xx - cx, yy - cy) < r).astype(np.float32))
        return out
    c = p["cell"]
    u, v = np.floor(xx / c + p["offset"][0]), np.floor(yy / c + p["offset"][1])
    return ((u + v) % 2).astype(np.float32)


def _blob(rng, cx, cy, radius, size, soft=0.0):
    """v2's irregular blob with a tighter radius spread (supersampled pixels)."""
    return world._blob(rng, cx, cy, radius, size, soft, spread=(0.8, 1.05))


def _background_defect(rng, kind, texture, params, fraction, centre, size):
    """The texture's second-tone coverage with one structural error near `centre` (output pixels)."""
    cx, cy = centre
    if kind in ("split_stripe", "split_checker"):  # the pattern jumps by half a period inside a region
        q = dict(params)
        if texture == "striped":
            q["phase"] = params["phase"] + 0.5
        else:
            q["offset"] = [params["offset"][0] + 0.5 * rng.choice([-1, 1]), params["offset"][1]]
        region = _blob(rng, cx * _SS, cy * _SS, rng.uniform(7, 10) * _SS, size)
        return fraction + (_texture_fraction(texture, q, size) - fraction) * region
    if kind == "bent_stripe":  # stripes turn by 25-40 degrees inside a region
        q = dict(params, angle=params["angle"] + float(rng.choice([-1, 1]) * rng.uniform(25, 40)))
        region = _blob(rng, cx * _SS, cy * _SS, rng.uniform(8, 11) * _SS, size)
        return fraction + (_texture_fraction(texture, q, size) - fraction) * region
    if kind == "flipped_cell":  # one checker cell has the wrong tone
        c, (ox, oy) = params["cell"], params["offset"]
        u, v = math.floor(cx / c + ox), math.floor(cy / c + oy)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / _SS
        cell = (np.floor(xx / c + ox) == u) & (np.floor(yy / c + oy) == v)
        return np.where(cell, 1.0 - fraction, fraction).astype(np.float32)
    # dots: the grid point nearest the centre loses its dot, gains a neighbour, or merges with one
    s, (ox, oy), r = params["spacing"], params["offset"], params["radius"] * params["spacing"]
    gx, gy = (round(cx / s + ox) - ox) * s, (round(cy / s + oy) - oy) * s
    if kind == "missing_dot":
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / _SS
        hole = np.hypot(xx - gx, yy - gy) < r + 1.0
        return np.where(hole, 0.0, fraction).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    if kind == "extra_dot":  # a dot halfway between grid points
        dots = [(gx + 0.5 * s * math.cos(angle), gy + 0.5 * s * math.sin(angle), r)]
    else:  # fused_dots: a stretched dot bridging the grid point and its neighbour
        dots = [(gx + f * s * math.cos(angle), gy + f * s * math.sin(angle), r * 0.9) for f in (0.2, 0.4, 0.6, 0.8)]
    return _texture_fraction("dotted", params, size, extra_dots=dots)


# -- objects: silhouettes as unions and differences of polygons ---------------------------------------------
def _polygon_mask(points, size):
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon([(float(x), float(y)) for x, y in points], fill=255)
    return np.asarray(mask, np.float32) / 255.0


def _disc(cx, cy, r, size):
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    return np.asarray(mask, np.float32) / 255.0


def _arm(cx, cy, angle, length, half_width, size):
    c, s = math.cos(angle), math.sin(angle)
    pts = [(cx - s * half_width, cy + c * half_width), (cx + c * length - s * half_width, cy + s * length + c * half_width),
           (cx + c * length + s * half_width, cy + s * length - c * half_width), (cx + s * half_width, cy - c * half_width)]
    return _polygon_mask(pts, size)


def _vertices(shape, cx, cy, r, rotation):
    if shape == "square":
        return [(cx + r * 1.15 * math.cos(rotation + math.pi / 4 + k * math.pi / 2),
                 cy + r * 1.15 * math.sin(rotation + math.pi / 4 + k * math.pi / 2)) for k in range(4)]
    return [(cx + r * 1.25 * math.cos(rotation - math.pi / 2 + k * 2 * math.pi / 3),
             cy + r * 0.15 + r * 1.25 * math.sin(rotation - math.pi / 2 + k * 2 * math.pi / 3)) for k in range(3)]


def _star_points(cx, cy, r, rotation, tips):
    """Star outline; `tips` maps each of the 5 point angles to a list of (angle offset, radius factor) tips."""
    outer, inner, pts = r * 1.25, r * 0.5, []
    for k in range(5):
        a = rotation - math.pi / 2 + k * 2 * math.pi / 5
        for da, f in tips[k]:
            pts.append((cx + outer * f * math.cos(a + da), cy + outer * f * math.sin(a + da)))
        b = a + math.pi / 5
        pts.append((cx + inner * math.cos(b), cy + inner * math.sin(b)))
    return pts


def object_mask(shape, cx, cy, r, rotation, size, defect=None, rng=None):
    """Float mask (size x size, supersampled pixels) of one object, clean or with a structural `defect`
    (drawn with `rng`); the adherence checkers use the clean silhouettes as templates."""
    if shape == "circle":
        mask = _disc(cx, cy, r, size)
        if defect in ("dent", "lobe"):
            a = rng.uniform(0, 2 * math.pi)
            part = _disc(cx + r * math.cos(a), cy + r * math.sin(a), r * rng.uniform(0.45, 0.55), size)
            mask = mask * (1 - part) if defect == "dent" else np.maximum(mask, part)
        return mask
    if shape in ("square", "triangle"):
        verts = _vertices(shape, cx, cy, r, rotation)
        mask = _polygon_mask(verts, size)
        if defect is None:
            return mask
        k = int(rng.integers(len(verts)))
        v, w, u = np.array(verts[k]), np.array(verts[(k + 1) % len(verts)]), np.array(verts[k - 1])
        if defect == "cut_corner":  # the corner is missing
            f = rng.uniform(0.38, 0.48)
            return mask * (1 - _polygon_mask([v, v + f * (w - v), v + f * (u - v)], size))
        mid, centre = (v + w) / 2, np.array([cx, cy + (r * 0.15 if shape == "triangle" else 0)])
        out = (mid - centre) / np.linalg.norm(mid - centre)
        if defect == "extra_point":  # a spike grows out of an edge
            along = (w - v) / np.linalg.norm(w - v)
            base = r * rng.uniform(0.35, 0.45)
            tip = mid + out * r * rng.uniform(0.6, 0.8)
            return np.maximum(mask, _polygon_mask([mid - along * base, tip, mid + along * base], size))
        return mask * (1 - _disc(*(mid + out * r * 0.15), r * rng.uniform(0.4, 0.5), size))  # dent
    if shape == "cross":
        half, arms = r * 0.2, [rotation + k * math.pi / 2 for k in range(4)]
        k = int(rng.integers(4)) if defect else -1
        if defect == "missing_arm":
            arms.pop(k)
        elif defect == "bent_arm":
            arms[k] += float(rng.choice([-1, 1]) * rng.uniform(0.6, 0.8))
        elif defect == "extra_arm":
            arms.append(arms[k] + math.pi / 4)
        mask = _disc(cx, cy, half * 1.2, size)
        for a in arms:
            mask = np.maximum(mask, _arm(cx, cy, a, r, half, size))
        return mask
    if shape == "star":
        tips = [[(0.0, 1.0)] for _ in range(5)]
        if defect is not None:
            k = int(rng.integers(5))
            if defect == "missing_point":
                tips[k] = [(0.0, 0.42)]
            elif defect == "forked_point":
                tips[k] = [(-0.22, 0.85), (0.0, 0.55), (0.22, 0.85)]
            elif defect == "extra_point":
                tips[k] = [(0.0, 1.0), (math.pi / 5 - 0.25, 0.6), (math.pi / 5, 0.95), (math.pi / 5 + 0.25, 0.6)]
        return _polygon_mask(_star_points(cx, cy, r, rotation, tips), size)
    raise ValueError(f"unknown shape {shape!r}")


def shape_mask(shape, cx, cy, r, rotation, size):
    """The clean silhouette (v2's name for the shape checkers' templates)."""
    return object_mask(shape, cx, cy, r, rotation, size)


# -- a scene ----------------------------------------------------------------------------------------------
def _layout(rng, n):
    """n objects (centre, radius, rotation, shape, colour) placed apart, listed left to right."""
    for _attempt in range(200):
        placed = []
        for _ in range(n):
            for _try in range(80):
                r = rng.uniform(*OBJECT_RADIUS)
                cx, cy = rng.uniform(r + 4, RESOLUTION - r - 4, 2)
                if all(math.hypot(cx - px, cy - py) > 1.3 * (r + pr) + 3 for px, py, pr in placed):
                    placed.append((cx, cy, r))
                    break
        if len(placed) == n:
            break
    placed.sort(key=lambda p: p[0])
    return [{"centre": (float(cx), float(cy)), "radius": float(r), "rotation": float(rng.uniform(-0.25, 0.25)),
             "shape": SHAPES[rng.integers(len(SHAPES))], "colour": list(COLOURS)[rng.integers(len(COLOURS))]}
            for cx, cy, r in placed]


def _prompt(objects, texture, tone):
    phrases = [f"{_article(o['colour'])} {o['colour']} {o['shape']}" for o in objects]
    content = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{content} on a {texture} {tone} background"


def parse_prompt(prompt):
    """(objects [(colour, shape)] left to right, background phrase) of a prompt as `sample` writes it."""
    content, background = prompt.split(" on ", 1)
    phrases = content.replace(" and ", ", ").split(", ")
    return [tuple(p.split()[1:3]) for p in phrases], background


def _compose(bg_fraction, tones, objects, object_masks):
    c1, c2 = (np.array(t, np.float32) for t in tones)
    img = c1 + (c2 - c1) * bg_fraction[..., None]
    for o, m in zip(objects, object_masks, strict=True):
        img = img + (np.array(COLOURS[o["colour"]], np.float32) - img) * m[..., None]
    return img


def _downsample(img):
    h = img.shape[0] // _SS
    return img.reshape(h, _SS, h, _SS, -1).mean(axis=(1, 3))


_to_uint8 = world._to_uint8


def _site_flags(rng, count, variant):
    return world._site_flags(rng, count, variant, (SITE_DEFECT_PROBABILITY, CORRELATED_IMAGE_PROBABILITY,
                                                   CORRELATED_SITE_PROBABILITY))


def _changed(a, b):
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > MASK_THRESHOLD


def sample(index, split="train", n_objects=None, with_defect=None, variant="independent"):
    """One world image, deterministic in (split, index, n_objects, variant). `n_objects` None draws 1-6;
    `with_defect` False gives the clean scene, True makes sure at least one site is defective.

    Returns dict(image, clean uint8 HxWx3, defect_mask bool HxW, has_defect, n_defects, n_objects,
    sites [dict(box (x0, y0, w, h) px, defective, kind, target ("object", i) or ("background", j), mask)],
    object_ids int8 HxW (the object drawn at a pixel, -1 for the background),
    objects [dict(shape, colour, centre, radius, rotation)], background, texture, prompt, caption, defect_kinds).
    """
    rng = _rng(split, index)
    n = int(rng.choice(OBJECT_COUNTS)) if n_objects is None else int(n_objects)
    if n not in OBJECT_COUNTS:
        raise ValueError(f"n_objects must be one of {OBJECT_COUNTS}, got {n_objects!r}")
    scene_rng = _rng(split, index, stream=10 + n)  # the scene depends on the count; the count on the index
    texture = TEXTURES[scene_rng.integers(len(TEXTURES))]
    tone = list(BACKGROUND_TONES)[scene_rng.integers(len(BACKGROUND_TONES))]
    params = _texture_params(scene_rng, texture)
    objects = _layout(scene_rng, n)
    size = RESOLUTION * _SS
    fraction = _texture_fraction(texture, params, size)
    clean_masks = [object_mask(o["shape"], o["centre"][0] * _SS, o["centre"][1] * _SS, o["radius"] * _SS,
                               o["rotation"], size) for o in objects]
    clean = _to_uint8(_downsample(_compose(fraction, BACKGROUND_TONES[tone], objects, clean_masks)))
    targets = [("object", i) for i in range(len(objects))] + [("background", j) for j in range(BACKGROUND_SITES)]
    flag_rng = _rng(split, index, stream=3 + VARIANTS.index(variant) if variant in VARIANTS else 3)
    flags = _site_flags(flag_rng, len(targets), variant)
    if with_defect is False:
        flags = np.zeros_like(flags)
    elif with_defect and not flags.any():
        flags[int(flag_rng.integers(len(targets)))] = True
    site_rng = _rng(split, index, stream=20 + n)
    masks, bg, before = list(clean_masks), fraction, clean
    sites, kinds = [], []
    for target, defective in zip(targets, flags, strict=True):
        site = {"target": target, "defective": False, "kind": None, "box": None,
                "mask": np.zeros(clean.shape[:2], bool)}
        if defective:
            for _attempt in range(8):
                if target[0] == "object":
                    o = objects[target[1]]
                    kind = OBJECT_DEFECTS[o["shape"]][site_rng.integers(len(OBJECT_DEFECTS[o["shape"]]))]
                    trial = list(masks)
                    trial[target[1]] = object_mask(o["shape"], o["centre"][0] * _SS, o["centre"][1] * _SS,
                                                   o["radius"] * _SS, o["rotation"], size, kind, site_rng)
                    trial_bg = bg
                else:
                    kind = BACKGROUND_DEFECTS[texture][site_rng.integers(len(BACKGROUND_DEFECTS[texture]))]
                    centre = site_rng.uniform(12, RESOLUTION - 12, 2)
                    trial, trial_bg = masks, _background_defect(site_rng, kind, texture, params, bg, centre, size)
                after = _to_uint8(_downsample(_compose(trial_bg, BACKGROUND_TONES[tone], objects, trial)))
                changed = _changed(after, before)
                if changed.sum() >= MIN_DEFECT_PIXELS and not (changed & _changed(before, clean)).any():
                    masks, bg, before = trial, trial_bg, after
                    ys, xs = np.nonzero(changed)
                    site.update(defective=True, kind=kind, mask=changed,
                                box=(int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)))
                    kinds.append(kind)
                    break
        sites.append(site)
    image = before
    mask = _changed(image, clean)
    object_ids = np.full(clean.shape[:2], -1, np.int8)  # which object covers a pixel (as drawn, defects included)
    for i, m in enumerate(masks):
        object_ids[_downsample(m[..., None])[..., 0] > 0.5] = i
    n_defects = sum(s["defective"] for s in sites)
    prompt = _prompt(objects, texture, tone)
    caption = quality_caption(prompt, n_defects, _rng(split, index, stream=2))
    return {"image": image, "clean": clean, "defect_mask": mask, "has_defect": bool(mask.any()), "n_defects": n_defects,
            "n_objects": n, "sites": sites, "object_ids": object_ids, "defect_kinds": kinds, "prompt": prompt, "caption": caption,
            "objects": objects, "texture": texture, "tone": tone, "background": f"a {texture} {tone} background",
            "palette": [BACKGROUND_TONES[tone][0], BACKGROUND_TONES[tone][1]] + [COLOURS[o["colour"]] for o in objects]}


def prompts(split="test", n=16, n_objects=None):
    """Content prompts (no quality words) of the first n scenes of a split, optionally at one complexity."""
    return [sample(i, split, n_objects=n_objects)["prompt"] for i in range(n)]
