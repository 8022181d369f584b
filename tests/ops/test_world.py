"""The synthetic quality world v2 (demo/world.py): determinism, split disjointness, sites, masks, variants, captions."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from demo import world

QUALITY_WORDS = ("quality", "good", "bad", "blurry", "artifact", "masterpiece", "glitch", "sharp", "worst", "best")


def digest(s):
    return hashlib.sha256(s["image"].tobytes()).hexdigest()


def test_sample_is_deterministic_and_well_formed():
    a, b = world.sample(7, "train"), world.sample(7, "train")
    for key in ("image", "clean", "defect_mask"):
        assert np.array_equal(a[key], b[key])
    assert (a["prompt"], a["caption"], a["has_defect"]) == (b["prompt"], b["caption"], b["has_defect"])
    size = world.RESOLUTION
    assert a["image"].shape == a["clean"].shape == (size, size, 3) and a["image"].dtype == np.uint8
    assert a["defect_mask"].shape == (size, size) and a["defect_mask"].dtype == bool


def test_splits_never_overlap():
    seen = {split: {digest(world.sample(i, split)) for i in range(40)} for split in world.SPLITS}
    assert all(len(v) == 40 for v in seen.values())
    assert not seen["train"] & seen["calib"] and not seen["train"] & seen["test"] and not seen["calib"] & seen["test"]
    with pytest.raises(ValueError, match="split"):
        world.sample(0, "validation")


def test_masks_mark_exactly_the_changed_pixels():
    n_defect = 0
    for i in range(30):
        s = world.sample(i, "calib")
        diff = np.abs(s["image"].astype(int) - s["clean"].astype(int)).max(axis=-1)
        assert np.array_equal(s["defect_mask"], diff > world.MASK_THRESHOLD)
        assert s["has_defect"] == bool(s["defect_mask"].any()) == (s["n_defects"] > 0)
        union = np.zeros_like(s["defect_mask"])
        for site in s["sites"]:
            x0, y0, size = site["box"]
            assert size in world.SITE_SIZES and 0 <= x0 and x0 + size <= world.RESOLUTION
            if site["defective"]:
                assert site["kind"] in world.DEFECT_KINDS and site["mask"].sum() >= world.MIN_DEFECT_PIXELS
                ys, xs = np.nonzero(site["mask"])  # a defect stays at its site (box grown by a quarter)
                assert xs.min() >= x0 - size // 4 and xs.max() < x0 + size + size // 4
                assert ys.min() >= y0 - size // 4 and ys.max() < y0 + size + size // 4
            else:
                assert not site["mask"].any() and site["kind"] is None
            union |= site["mask"]
        assert (union & ~s["defect_mask"]).sum() <= 0.05 * max(union.sum(), 1)  # a later site may paint over
        if s["has_defect"]:
            n_defect += 1
            assert 0.001 < s["defect_mask"].mean() < 0.3  # local, not global
            assert len(s["defect_kinds"]) == s["n_defects"]
        else:
            assert np.array_equal(s["image"], s["clean"])
    assert 15 < n_defect < 30  # P(clean) = 0.72^5 = 0.19 per image


def test_sites_are_independent_in_the_independent_variant_and_correlated_otherwise():
    def site_rate_and_pair_correlation(variant):
        flags = [[site["defective"] for site in world.sample(i, "train", variant=variant)["sites"]] for i in range(400)]
        first = np.array([f[0] for f in flags], float)
        second = np.array([f[1] for f in flags], float)
        return np.mean(np.concatenate([np.array(f, float) for f in flags])), np.corrcoef(first, second)[0, 1]

    rate, corr = site_rate_and_pair_correlation("independent")
    assert abs(rate - world.SITE_DEFECT_PROBABILITY) < 0.05 and abs(corr) < 0.12
    rate_c, corr_c = site_rate_and_pair_correlation("correlated")
    assert abs(rate_c - world.SITE_DEFECT_PROBABILITY) < 0.06 and corr_c > 0.3
    a, b = world.sample(5, "test"), world.sample(5, "test", variant="correlated")
    assert np.array_equal(a["clean"], b["clean"]) and [s["box"] for s in a["sites"]] == [s["box"] for s in b["sites"]]
    with pytest.raises(ValueError, match="variant"):
        world.sample(0, "test", variant="v1")


def test_forcing_the_defect_flag_keeps_the_scene():
    for i in range(12):
        plain = world.sample(i, "test", with_defect=False)
        broken = world.sample(i, "test", with_defect=True)
        assert not plain["has_defect"] and broken["has_defect"] and broken["n_defects"] >= 1
        assert np.array_equal(plain["image"], broken["clean"]) and plain["prompt"] == broken["prompt"]


def test_prompts_name_what_is_drawn():
    for i in range(40):
        s = world.sample(i, "train")
        objects, background = world.parse_prompt(s["prompt"])
        assert objects == [(o["colour"], o["shape"]) for o in s["objects"]] and 1 <= len(objects) <= 2
        assert background == s["background"]
        for colour, shape in objects:
            assert colour in world.COLOURS and shape in world.SHAPES
            assert (np.abs(s["clean"].astype(int) - world.COLOURS[colour]).max(axis=-1) < 8).mean() > 0.02


def test_captions_follow_the_defect_count():
    counts = {}
    lotts_templates = 0
    for i in range(300):
        s = world.sample(i, "train")
        assert not any(w in s["prompt"].lower() for w in QUALITY_WORDS)
        assert s["prompt"] in s["caption"]
        words = s["caption"].replace(s["prompt"], "")  # 'yellow' holds 'low'
        kind = ("low" if any(w in words for w in ("low", "bad", "worst")) else
                "high" if any(w in words for w in ("high", "good", "best")) else "none")
        row = counts.setdefault(min(s["n_defects"], 2), {"low": 0, "high": 0, "none": 0})
        row[kind] += 1
        lotts_templates += s["caption"] in (f"A high-quality image of {s['prompt']}.",
                                            f"A low-quality image of {s['prompt']}.")

    def low_share(row):
        return row["low"] / (row["low"] + row["high"])

    assert low_share(counts[0]) < 0.3 < low_share(counts[1]) < low_share(counts[2])  # noisy, but follows the count
    assert all(row["none"] > 0 for row in counts.values()) and counts[0]["low"] > 0  # neutral and wrong captions
    assert lotts_templates > 20


def test_prompts_helper():
    p = world.prompts("test", 5)
    assert p == [world.sample(i, "test")["prompt"] for i in range(5)]
    assert all(" on " in x and "background" in x for x in p)


def test_demo_package_imports_without_comfyui():
    repo = Path(__file__).resolve().parents[2]
    code = "import demo, demo.world; assert demo.NODE_CLASS_MAPPINGS == {}; print(demo.world.RESOLUTION)"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(world.RESOLUTION)
