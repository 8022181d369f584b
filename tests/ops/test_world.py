"""The synthetic quality world (demo/world.py): determinism, split disjointness, masks, captions."""

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
        assert s["has_defect"] == bool(s["defect_mask"].any())
        if s["has_defect"]:
            n_defect += 1
            assert 0.001 < s["defect_mask"].mean() < 0.3  # local, not global
            assert s["defect_kinds"] and set(s["defect_kinds"]) <= set(world.DEFECT_KINDS)
        else:
            assert np.array_equal(s["image"], s["clean"])
    assert 6 < n_defect < 24


def test_forcing_the_defect_flag_keeps_the_scene():
    plain = world.sample(3, "test", with_defect=False)
    broken = world.sample(3, "test", with_defect=True)
    assert not plain["has_defect"] and broken["has_defect"]
    assert np.array_equal(plain["image"], broken["clean"]) and plain["prompt"] == broken["prompt"]


def test_captions_correlate_quality_words_with_defects():
    counts = {True: {"low": 0, "high": 0, "none": 0}, False: {"low": 0, "high": 0, "none": 0}}
    lotts_templates = 0
    for i in range(200):
        s = world.sample(i, "train")
        assert not any(w in s["prompt"].lower() for w in QUALITY_WORDS)
        assert s["prompt"] in s["caption"]
        words = s["caption"].replace(s["prompt"], "")  # 'yellow' holds 'low'
        kind = ("low" if any(w in words for w in ("low", "bad", "worst")) else
                "high" if any(w in words for w in ("high", "good", "best")) else "none")
        counts[s["has_defect"]][kind] += 1
        lotts_templates += s["caption"] in (f"A high-quality image of {s['prompt']}.",
                                            f"A low-quality image of {s['prompt']}.")
    defect, clean = counts[True], counts[False]
    assert defect["low"] > 0.6 * sum(defect.values()) and clean["high"] > 0.6 * sum(clean.values())
    assert defect["none"] > 0 and clean["none"] > 0 and defect["high"] > 0  # web-like: neutral and noisy captions
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
