"""The options beyond the paper that LoTTS Search and LoTTS Best-of-N take from one LoTTS Search Options node:
their inputs, defaults, and how a graph saved before the node existed (options set on the search node itself)
still runs."""

import logging

from . import _region_inputs, _sampling_capture

OPTIONS_TYPE = "LOTTS_SEARCH_OPTIONS"


def option_inputs():
    return {
        **_region_inputs.region_inputs(),
        "crop_padding": ("INT", {"default": -1, "min": -1, "max": 1024, "tooltip": (
            "-1: re-denoise on the whole latent (the paper). 0 or more: only a crop around each candidate's "
            "mask, its box grown by this many latent cells of context (x8 pixels for SD/FLUX), so a refinement "
            "costs in proportion to the crop's area (reported as nfe_refinement_area_weighted).")}),
        "region_selection": ("BOOLEAN", {"default": False, "tooltip": (
            "When a mask has several separate regions: also try, per region, the re-draw the verifier prefers "
            "there and composite them (k re-draws give k^m combinations; no extra model evaluations, m x k "
            "extra verifier calls). The composite competes with the k re-draws.")}),
        "nfe_budget": ("INT", {"default": 0, "min": 0, "max": 10 ** 9, "tooltip": (
            "0: the paper's search (every lineage refined `rounds` times). Above 0: best-first under this many "
            "model evaluations per image: after the seeds, refine the image's best lineage (at most `rounds` "
            "times each) while the next round fits in the budget and no lineage has reached stop_score.")}),
        "stop_score": ("FLOAT", {"default": 1e6, "min": -1e9, "max": 1e9, "step": 0.01, "tooltip": (
            "With nfe_budget: stop refining an image once its best verifier score reaches this (the default "
            "never stops early).")}),
        "prune_at_step": ("INT", {"default": 0, "min": 0, "max": 10000, "tooltip": (
            "Early pruning (TTSnap-style), 0 = off: after this many steps every candidate's predicted clean image is "
            "scored by the verifier and only the best prune_keep fraction finishes sampling. A pruned candidate "
            "costs these steps only. The one option Best-of-N also reads.")}),
        "prune_keep": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": (
            "Early pruning: fraction of candidates per item that finish (at least one).")}),
        "capture_mode": (list(_sampling_capture.CAPTURE_MODES), {"default": _sampling_capture.CAPTURE_MODES[0],
                                                                  "tooltip": (
            "Where the seeds' first capture happens. 're-noised (paper)': each finished seed is re-noised to the "
            "capture levels and run under the prompts the signal reads (attention: the original and the two quality "
            "prompts; noise difference: the two quality prompts). 'within sampling': the two quality prompts run at "
            "the sampling steps nearest the capture levels while the seeds are sampled, and the original prompt's "
            "attention comes from the sampler's own pass: 2 evaluations per level, not 3, with attention (the noise "
            "difference costs 2 either way). Later rounds re-noise. With early pruning the survivors are captured as "
            "they finish (the capture levels must fall after prune_at_step). On the demo world within sampling "
            "localizes as well for the noise difference; for attention the interval is too wide to say so "
            "(bench/capture_modes.py).")}),
    }


DEFAULTS = {name: spec[1]["default"] for name, spec in option_inputs().items()}


def options_input():
    """The one optional input of the search nodes, and the hidden inputs that find options an older graph set."""
    return ({"options": (OPTIONS_TYPE, {"tooltip": (
                "Options beyond the paper (region masks, crops, per-region choice, NFE budget, early pruning) from "
                "a LoTTS Search Options node; unconnected, the paper's search with none of them.")})},
            {"graph": "PROMPT", "node_id": "UNIQUE_ID"})


def _checked(name, value):
    """An option given outside the options node, where ComfyUI's own validation does not see it."""
    kind, info = option_inputs()[name]
    if isinstance(kind, list):
        ok, expected = value in kind, f"one of {kind}"
    elif kind == "BOOLEAN":
        ok, expected = isinstance(value, bool), "true or false"
    else:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = number and (kind == "FLOAT" or value == int(value)) and info["min"] <= value <= info["max"]
        expected = f"{'an integer' if kind == 'INT' else 'a number'} in {info['min']}..{info['max']}"
    if not ok:
        raise ValueError(f"{name}: {value!r} is not valid (expected {expected})")
    return int(value) if kind == "INT" else value


def resolve(options, graph=None, node_id=None, linked=None):
    """The options in force: the connected node's, else the defaults; an older API graph that still sets them on
    the search node itself runs with its values (warned once), unless an options node is connected too. `linked`:
    inputs the node does not declare that ComfyUI still passed because they are links (it drops literals)."""
    for name in linked or {}:
        if name in DEFAULTS:
            raise ValueError(f"{name}: moved to the LoTTS Search Options node; connect what feeds it there and that "
                             f"node to this node's 'options' input")
        raise ValueError(f"{name}: is not an input of this node")
    legacy = {}
    inputs = ((graph or {}).get(str(node_id)) or {}).get("inputs", {}) if node_id is not None else {}
    for name in DEFAULTS:
        if name not in inputs:
            continue
        value = inputs[name]
        if isinstance(value, list):  # a link: its value is not known here
            raise ValueError(f"{name}: moved to the LoTTS Search Options node; connect what feeds it there and that "
                             f"node to this node's 'options' input")
        legacy[name] = _checked(name, value)
    if legacy and options is not None:
        raise ValueError(f"options: this node also sets {sorted(legacy)} itself (a graph from before LoTTS Search "
                         "Options); keep them on the options node only")
    if legacy:
        logging.warning("[LoTTS] node %s sets %s on the search node; these inputs moved to LoTTS Search Options "
                        "(used this time)", node_id, ", ".join(sorted(legacy)))
    return {**DEFAULTS, **(options or {}), **legacy}
