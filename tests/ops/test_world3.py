"""World v3 (demo/world3.py): the complexity axis, structural in-palette defects, and the trivial-cue gate (smoke)."""

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from demo import world3

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))
import trivial_cues  # noqa: E402


def digest(s):
    return hashlib.sha256(s["image"].tobytes()).hexdigest()


def test_deterministic_and_splits_disjoint():
    a, b = world3.sample(5, "train", n_objects=4), world3.sample(5, "train", n_objects=4)
    assert np.array_equal(a["image"], b["image"]) and a["prompt"] == b["prompt"] and a["caption"] == b["caption"]
    seen = {split: {digest(world3.sample(i, split)) for i in range(24)} for split in world3.SPLITS}
    assert all(len(v) == 24 for v in seen.values())
    assert not (seen["train"] & seen["calib"] or seen["train"] & seen["test"] or seen["calib"] & seen["test"])
    with pytest.raises(ValueError, match="n_objects"):
        world3.sample(0, "test", n_objects=7)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_prompt_names_the_objects_left_to_right(n):
    s = world3.sample(11, "calib", n_objects=n)
    objects, background = world3.parse_prompt(s["prompt"])
    assert s["n_objects"] == n == len(objects) == len(s["objects"])
    assert objects == [(o["colour"], o["shape"]) for o in s["objects"]]
    xs = [o["centre"][0] for o in s["objects"]]
    assert xs == sorted(xs) and background == s["background"]
    assert "quality" not in s["prompt"]


def test_each_object_and_the_background_carry_sites_and_clean_rate_falls_with_complexity():
    clean = {}
    for n in (1, 6):
        flags = []
        for i in range(150):
            s = world3.sample(i, "train", n_objects=n)
            targets = [site["target"] for site in s["sites"]]
            assert targets == [("object", k) for k in range(n)] + [("background", j) for j in range(world3.BACKGROUND_SITES)]
            flags.append(not s["has_defect"])
        clean[n] = float(np.mean(flags))
    # designed 0.68 ** (n + 2): 0.31 and 0.046 (a site whose defect would be hidden is dropped, so a bit above)
    assert 0.2 < clean[1] < 0.45 and clean[6] < 0.12, clean


def test_defects_are_structural_in_palette_and_exactly_masked():
    for i in range(20):
        s = world3.sample(i, "calib", with_defect=True)
        assert s["has_defect"] and s["n_defects"] >= 1
        diff = np.abs(s["image"].astype(int) - s["clean"].astype(int)).max(axis=-1)
        assert np.array_equal(s["defect_mask"], diff > world3.MASK_THRESHOLD)
        union = np.zeros_like(s["defect_mask"])
        for site in s["sites"]:
            if site["defective"]:
                assert site["kind"] in world3.DEFECT_KINDS and site["mask"].sum() >= world3.MIN_DEFECT_PIXELS
                kinds = (world3.OBJECT_DEFECTS[s["objects"][site["target"][1]]["shape"]] if site["target"][0] == "object"
                         else world3.BACKGROUND_DEFECTS[s["texture"]])
                assert site["kind"] in kinds
            union |= site["mask"]
        assert np.array_equal(union, s["defect_mask"])  # sites never overlap
        # in palette: away from antialiased edges every defect pixel is one of the image's own colours
        palette = np.array(s["palette"], float)
        d = np.linalg.norm(s["image"][s["defect_mask"]][:, None].astype(float) - palette[None], axis=-1).min(axis=1)
        assert np.median(d) < 3.0


def test_trivial_cue_auroc_and_its_combination_are_computed_honestly():
    # a cue equal to the labels scores 1, its negation also 1 sign-free; random scores near 0.5
    y = np.zeros((16, 16), bool)
    y[3:6, 4:7] = True
    assert trivial_cues.auroc(y.astype(float), y) == 1.0 and trivial_cues.auroc(-y.astype(float), y) == 0.0
    images, masks, palettes, _ = trivial_cues.planted(world3, "calib", 24)
    out = trivial_cues.evaluate(images, masks, palettes, trivial_cues.world_palette(world3))
    assert out["images"] > 20
    for cue in (*trivial_cues.CUES, "combined"):
        mean, lo, hi = out[cue]["auroc"]
        assert 0.4 < lo <= mean <= hi < 1.0
