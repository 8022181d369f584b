"""bench/results/summary.json: one flat object of headline figures, read from the benchmark JSONs that
bench/run_all.sh writes. A figure whose benchmark has not been run on the current world (its JSON is
missing, or was measured on another world version) is null and listed under "not_measured" with the reason;
nothing is carried over from an older world. An interval bound of null means "never": Best-of-N did not match
within its largest N (a `_lower_bound` key then gives the ratio that is exceeded).

    .host/venv/bin/python bench/summary.py
"""

import json
import sys

from common import RESULTS, write_json

WORLD_VERSION = 2
INSTRUMENT_KEYS = ("prompt_colour_present", "prompt_shape_correct", "vae_psnr_db", "segmenter_fp_clean_roundtrip",
                   "redraw_diversity_ratio", "oracle_clear_rate", "fresh_clear_rate", "oracle_over_fresh_clear",
                   "auroc_noise_difference", "auroc_attention", "auroc_neutral_control",
                   "auroc_attention_neutral_control")
RATIO_SOURCES = {  # summary key: (results file, matching entry)
    "bon_over_lotts_nfe_ratio": ("quality_vs_compute.json", "score_by_nfe"),
    "bon_over_lotts_nfe_ratio_correlated": ("quality_vs_compute_correlated.json", "score_by_nfe"),
}


def _load(name):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def world_version_of(result):
    return (result or {}).get("world_version")


def build():
    out, missing = {"world_version": WORLD_VERSION}, {}
    instrument = _load("instrument.json")
    if instrument is None or world_version_of(instrument) != WORLD_VERSION:
        missing["instrument"] = "bench/results/instrument.json absent or not measured on world v2"
        instrument = {"summary": {}}
    s = instrument["summary"]
    for key in INSTRUMENT_KEYS:
        out[key] = s.get(key)
        if key + "_ci" in s:
            out[key + "_ci"] = s[key + "_ci"]
    if "redraw_t0_step" in s:
        out["redraw_t0_step"] = s["redraw_t0_step"]
    correlated = _load("instrument_correlated.json")
    if correlated is not None and world_version_of(correlated) == WORLD_VERSION:
        for key in ("redraw_diversity_ratio", "oracle_clear_rate", "fresh_clear_rate", "oracle_over_fresh_clear"):
            if key in correlated["summary"]:
                out[key + "_correlated"] = correlated["summary"][key]
                out[key + "_correlated_ci"] = correlated["summary"][key + "_ci"]
    for key, (name, entry) in RATIO_SOURCES.items():
        result = _load(name)
        if result is None or world_version_of(result) != WORLD_VERSION:
            out[key], out[key + "_ci"] = None, None
            missing[key] = f"bench/results/{name} absent or not measured on world v2"
            continue
        for suffix, name_in_result in (("", entry), ("_defect_area", entry.replace("score", "area")),
                                       ("_two_rounds", entry + "_rounds2")):
            match = result["analysis"]["matching"].get(name_in_result)
            if match is None:
                continue
            out[key + suffix], out[key + suffix + "_ci"] = match["ratio"], match["ci"]
            if match["ratio"] is None:  # Best-of-N never matched within its largest N: the ratio exceeds this
                largest = max(b["nfe"] for b in result["entries"][0]["bon"])
                out[key + suffix + "_lower_bound"] = largest / match["lotts_budget"]
    variants = _load("search_variants.json")
    for key in ("bon_over_best_lotts_nfe_ratio", "pruned_bon_over_best_lotts_nfe_ratio"):
        if variants is None or world_version_of(variants) != WORLD_VERSION:
            out[key], out[key + "_ci"] = None, None
            missing[key] = "bench/results/search_variants.json absent or not measured on world v2"
        else:
            out[key], out[key + "_ci"] = variants["analysis"][key], variants["analysis"][key + "_ci"]
    out["not_measured"] = missing
    return out


def _finite(value):
    """JSON has no infinity: an interval bound of 'never' (Best-of-N did not match within its largest N) is null."""
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def main():
    summary = _finite(build())
    path = write_json("summary.json", summary)
    print(json.dumps(summary, indent=1))
    return path


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
