"""Trivial image cues as defect localizers: the baseline every localization table shows (world v3 gate).

A localization signal is only worth something where simple image statistics cannot find the defects. Per latent
cell (8 x 8 px) of an RGB image:
- `sobel`: mean Sobel gradient magnitude (edge density);
- `variance`: mean per-channel colour variance;
- `palette`: mean distance of each pixel from the nearest colour of the world's whole palette;
- `prompt_colours`: the same against the image's own colours (its objects' and its background's two tones);
- `combined`: a logistic regression on all four (standardised, with squares), cross-validated over images
  (fitted on one half, scored on the other, and the reverse), so it never scores an image it was fitted on.
A single cue's AUROC is read sign-free (max(a, 1 - a)): a cue that ranks defects last finds them too.

    .host/venv/bin/python bench/trivial_cues.py --images 200      # planted renders of world v3, calib split
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))

CELL = 8
CUES = ("sobel", "variance", "palette", "prompt_colours")
LABEL_FRACTION = 0.2  # a cell is defective when more than this share of its pixels is


def _cells(values, cell=CELL):
    h, w = values.shape[:2]
    return values[: h // cell * cell, : w // cell * cell].reshape(h // cell, cell, w // cell, cell, *values.shape[2:])


def _sobel(gray):
    p = np.pad(gray, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return np.hypot(gx, gy)


def _palette_distance(image, palette):
    colours = np.asarray(palette, np.float32)
    d = np.linalg.norm(image[:, :, None, :] - colours[None, None], axis=-1)
    return d.min(axis=-1)


def cue_maps(image, world_palette, own_palette):
    """{cue: (h/8, w/8) float map} for one uint8 HxWx3 image."""
    img = image.astype(np.float32)
    gray = img.mean(axis=-1)
    return {
        "sobel": _cells(_sobel(gray)).mean(axis=(1, 3)),
        "variance": _cells(img).var(axis=(1, 3)).mean(axis=-1),
        "palette": _cells(_palette_distance(img, world_palette)).mean(axis=(1, 3)),
        "prompt_colours": _cells(_palette_distance(img, own_palette)).mean(axis=(1, 3)),
    }


def cell_labels(mask, fraction=LABEL_FRACTION):
    return _cells(mask.astype(np.float32)).mean(axis=(1, 3)) > fraction


def auroc(scores, labels):
    """Mann-Whitney AUROC with tied ranks averaged; nan for a single class."""
    s, y = np.asarray(scores, np.float64).ravel(), np.asarray(labels, bool).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _features(maps):
    x = np.stack([maps[c].ravel() for c in CUES], axis=1)
    return np.concatenate([x, x ** 2], axis=1)


def _fit_logistic(x, y, steps=400, lr=0.5, l2=1e-3):
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = p - y
        w -= lr * (x.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return w, b


def combined_scores(cue_list, label_list):
    """Cross-validated logistic combination: per image a score map from a model fitted on the other half."""
    n = len(cue_list)
    halves = (np.arange(n) % 2 == 0, np.arange(n) % 2 == 1)
    feats = [_features(m) for m in cue_list]
    out = [None] * n
    for fit_half, score_half in (halves, halves[::-1]):
        x = np.concatenate([feats[i] for i in np.nonzero(fit_half)[0]])
        y = np.concatenate([label_list[i].ravel() for i in np.nonzero(fit_half)[0]]).astype(np.float64)
        mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-8
        w, b = _fit_logistic((x - mu) / sd, y)
        for i in np.nonzero(score_half)[0]:
            out[i] = (((feats[i] - mu) / sd) @ w + b).reshape(label_list[i].shape)
    return out


def per_image_aurocs(score_maps, label_maps):
    vals = [auroc(s, y) for s, y in zip(score_maps, label_maps, strict=True)]
    return [v for v in vals if not math.isnan(v)]


def bootstrap_mean(values, rng, n_boot=1000):
    values = np.asarray(values, np.float64)
    means = [values[rng.integers(len(values), size=len(values))].mean() for _ in range(n_boot)]
    return [round(float(values.mean()), 4), round(float(np.percentile(means, 2.5)), 4),
            round(float(np.percentile(means, 97.5)), 4)]


def evaluate(images, masks, own_palettes, world_palette, seed=0):
    """Per-image AUROC (mean and bootstrap interval over images) of every cue and their combination, over the
    images that have defective and clean cells. `images` uint8 (N, H, W, 3), `masks` bool (N, H, W)."""
    labels = [cell_labels(m) for m in masks]
    keep = [i for i, y in enumerate(labels) if y.any() and not y.all()]
    maps = [cue_maps(images[i], world_palette, own_palettes[i]) for i in keep]
    labels = [labels[i] for i in keep]
    rng = np.random.default_rng(seed)
    out = {"images": len(keep)}
    if len(keep) < 2:  # the combination is fitted on one half and scored on the other: nothing to report
        for cue in (*CUES, "combined"):
            out[cue] = {"auroc": [None, None, None], "sign": None}
        out["best"] = {"cue": None, "auroc": [None, None, None]}
        return out
    for cue in CUES:
        raw = per_image_aurocs([m[cue] for m in maps], labels)
        mean = float(np.mean(raw))
        signed = raw if mean >= 0.5 else [1 - v for v in raw]
        out[cue] = {"auroc": bootstrap_mean(signed, rng), "sign": "+" if mean >= 0.5 else "-"}
    out["combined"] = {"auroc": bootstrap_mean(per_image_aurocs(combined_scores(maps, labels), labels), rng),
                       "sign": "+"}
    best = max((*CUES, "combined"), key=lambda c: out[c]["auroc"][0])
    out["best"] = {"cue": best, "auroc": out[best]["auroc"]}
    return out


def world_palette(world):
    return [*world.COLOURS.values(), *(t for pair in world.BACKGROUND_TONES.values() for t in pair)]


def planted(world, split, count, n_objects=None):
    """Defective planted renders of a world (v3 API) with their own palettes."""
    images, masks, palettes, complexity = [], [], [], []
    i = 0
    while len(images) < count:
        s = world.sample(i, split, n_objects=n_objects, with_defect=True)
        images.append(s["image"])
        masks.append(s["defect_mask"])
        palettes.append(s["palette"])
        complexity.append(s["n_objects"])
        i += 1
    return np.stack(images), np.stack(masks), palettes, complexity


def main(argv=None):
    from demo import world3

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--split", default="calib")
    parser.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    opts = parser.parse_args(argv)
    images, masks, palettes, complexity = planted(world3, opts.split, opts.images)
    result = {"world_version": world3.WORLD_VERSION, "split": opts.split,
              "planted": evaluate(images, masks, palettes, world_palette(world3))}
    for n in world3.OBJECT_COUNTS:
        idx = [i for i, c in enumerate(complexity) if c == n]
        if len(idx) >= 8:
            result[f"planted_objects_{n}"] = evaluate(images[idx], masks[idx], [palettes[i] for i in idx],
                                                      world_palette(world3))["best"]
    text = json.dumps(result, indent=1)
    print(text)
    if opts.out:
        Path(opts.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
