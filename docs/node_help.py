"""Write the node-docs pages ComfyUI's front end shows for every LoTTS node (web/docs/<NodeId>.md).

Each page is a hand-written part (what the node is for, recommended settings per family, notes) followed by
its inputs and outputs, read from the node's own definition (INPUT_TYPES tooltips, output tooltips), so the
pages never disagree with the tooltips. Needs the node classes, so it runs inside the test host:

    .host/venv/bin/python docs/node_help.py            # rewrite web/docs/
    .host/venv/bin/python docs/node_help.py --check    # exit 1 if a page is out of date

tests/comfy/test_node_docs.py runs the same check.
"""

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "web" / "docs"

FAMILY_T0 = ("| family | steps | cfg | t0 (start step) |\n|---|---|---|---|\n"
             "| SD1.5 | 50 | 7 | start_fraction 0.5 |\n| SD2.1 | 50 | 7 | step 25 of 50 (paper's best) |\n"
             "| SDXL | 50 | 6 | step 15 of 50 (paper's best) |\n| FLUX.1-dev | 28 | 1 (FluxGuidance 3.5) | step 1 |\n"
             "| FLUX.2 Dev | 20 | 1 (FluxGuidance 4) | step 1 (not yet measured) |\n"
             "| Qwen-Image | 20 | 2.5 (shift 3.1) | step 2 (not yet measured) |\n"
             "| Z-Image Turbo | 8 | 1 (shift 3) | step 1 (not yet measured) |\n")
FAMILIES_NOTE = ("**Model families.** Signal `noise difference` works on every text-to-image family ComfyUI samples "
                 "(FLUX.2, Qwen-Image, Z-Image, SD3 / 3.5, Chroma, ...); `attention` is read on SD1.x, SD2.x, SDXL, "
                 "SD3 / 3.5, FLUX.1, FLUX.2, Chroma, Qwen-Image, LongCat-Image, HiDream, HunyuanImage 2.1 and (ComfyUI "
                 "0.33+) Z-Image, Mage-Flow, Krea 2 and JoyImage, and other families refuse it with a message that "
                 "names the family.")
VERIFIER_NOTE = ("Every verifier returns higher-is-better scores (`LOTTS_VERIFIER`). Reward models are loaded from "
                 "files you place under `models/lotts_verifiers/`; nothing is ever downloaded.")

INTROS = {
    "LoTTSQualityAttentionCapture": (
        "Stage 1 of LoTTS: finds where a finished image is likely defective. Each candidate is re-noised to the "
        "given noise level(s) and the frozen model runs once under your prompt, `A high-quality image of {p}.` and "
        "`A low-quality image of {p}.`. The node records cross-attention over the prompt's own words and its "
        "self-attention propagation, and the difference of the predicted noise under the two quality prompts. "
        "It patches a clone of the MODEL; your model and other graphs are untouched.\n\n"
        "**Settings.** `noise_levels` 0.2, 0.3 by default (early read-outs localise best); the shipped attention "
        "workflows (SD1.5, SD2.1, SDXL, FLUX.1) capture at 0.2 alone, at half the cost, which localised no "
        "measurably worse on the demo world (README, Choices). `layers` auto: "
        "UNet blocks at half resolution or below, all FLUX double blocks (single ones where a model has no others). "
        "Cost: 3 model evaluations per candidate "
        "and level (two conditionings per batch at most, as a CFG step), far less than one sampling run.\n\nFeed "
        "`attention` to **LoTTS Defect Mask**.\n\nOn families without an attention hook (PixArt, HunyuanDiT, "
        "...) only the noise difference is captured, from the two quality prompts (2 evaluations), and the heatmap "
        "shows it. " + FAMILIES_NOTE),
    "LoTTSDefectMask": (
        "Stage 2: turns the captured attention into a defect map P and a binary mask M (the top `area_ratio` of "
        "P). P = norm(SA@(CA_low - CA_high)) + lambda x norm(SA@CA_orig), or the predicted-noise difference "
        "(`signal`), or both.\n\n**Settings.** area_ratio 0.5 (the paper); lambda 0.3; signal `attention` on "
        "SD/SDXL/FLUX (what the paper measured); `noise difference` is what worked on the demo model. An empty or "
        "full mask is valid: the candidate passes through, or is re-sampled globally."),
    "LoTTSRefineMask": (
        "Cleans up a MASK before re-denoising: threshold, drop islands smaller than `min_component_area`, fill "
        "holes, grow or shrink, feather, and resize to the latent or image size. An empty result passes the "
        "candidate through unchanged (with a warning in the log)."),
    "LoTTSLocalRefine": (
        "Stage 3 in one node: k refinements per candidate. Fresh noise is injected inside the mask at the noise "
        "level of step t0; outside the mask the candidate stays on its own trajectory at the same level (re-imposed "
        "every step, so no seam); the last g steps run without the mask (harmonization).\n\n**Settings per family "
        "(t0):**\n\n" + FAMILY_T0 + "\nk = 2, g = 2. t0 = 0 (pure noise) was the worst setting for every model in the "
        "paper."),
    "LoTTSPerturbLatent": (
        "The first half of Localized Refine for use with the standard samplers: repeats every candidate k times "
        "and attaches the mask as `noise_mask`. Wire the output into **KSamplerAdvanced** (add_noise enable, "
        "start_at_step = t0, return_with_leftover_noise disable), with the model from **LoTTS Harmonization Patch**."),
    "LoTTSHarmonizationPatch": (
        "Returns a clone of the MODEL whose inpainting mask is lifted for the last g steps, so the re-denoised "
        "region and its surroundings are harmonised (the paper's global steps). Use it with **LoTTS Perturb "
        "Latent** and KSamplerAdvanced; together they give the same latents as Localized Refine."),
    "LoTTSSelectBest": (
        "Scores a batch of images with a verifier and returns the top_k images, with the latents and masks at the "
        "same indices, the scores, and a preview grid with each score. Score originals and refinements in one "
        "batch (the ensemble verifier only compares within a batch)."),
    "LoTTSSearch": (
        "LoTTS in one node: s seeds, then per round: capture, defect mask, k local refinements per lineage; a "
        "refinement replaces its parent only if the verifier prefers it. The report counts every model evaluation "
        "(NFE) and the paper's samples per prompt, s x (1 + k x rounds).\n\n**Settings per family (t0):**\n\n"
        + FAMILY_T0 + "\nseeds 3, k 2, one round = 9 samples per prompt, which the paper found to match Best-of-N "
        "at 25-36 on real models. Options beyond the paper (region masks, crops, per-region choice, an NFE "
        "budget, early pruning) come from one **LoTTS Search Options** node on the `options` input; unconnected, "
        "the search is the paper's.\n\n" + FAMILIES_NOTE),
    "LoTTSBestOfN": (
        "The baseline LoTTS is measured against: N whole samples from N noises of one seed, keep the verifier's "
        "best, with the same NFE accounting. Its first s candidates are exactly LoTTS Search's s seeds. Optional "
        "early pruning (TTSnap-style) from a **LoTTS Search Options** node: after `prune_at_step` steps each "
        "candidate's predicted clean image is scored and only the best `prune_keep` fraction finishes."),
    "LoTTSSearchOptions": (
        "The search's options beyond the paper, in one node wired to the `options` input of **LoTTS Search** (all "
        "of them) or **LoTTS Best-of-N** (pruning only); one node may feed both, so the two are compared with the "
        "same help. Without it both nodes run the paper's method.\n\n**Settings.** `mask_mode` *defect regions* "
        "re-denoises only the map's strongest connected regions (a candidate without one is not refined and costs "
        "nothing); `crop_padding` re-denoises only a crop around each mask (NFE also reported area-weighted); "
        "`region_selection` composites, per separate region, the re-draw the verifier prefers there; `nfe_budget` "
        "searches best-first within that many model evaluations per image, stopping at `stop_score`; "
        "`prune_at_step` / `prune_keep` prune candidates early by their predicted clean image; `capture_mode` "
        "*within sampling* takes the seeds' first capture while they are sampled (the two quality prompts at the "
        "steps nearest the capture levels; the original prompt's attention from the sampler's own pass), so it "
        "costs 2 evaluations per level instead of 3 with attention (with the noise difference both modes cost 2); "
        "on the demo world it localizes as well as the paper's re-noised capture (within the intervals), which "
        "stays the default.\n\nAPI graphs "
        "saved before this node set these inputs on the search node itself; they still run, with a warning."),
    "LoTTSNIQEVerifier": (
        "No-reference image quality (NIQE), no download: returns -NIQE, higher is better. It judges noise, blur and "
        "artifacts, not prompt adherence. " + VERIFIER_NOTE),
    "LoTTSBRISQUEVerifier": (
        "No-reference image quality (BRISQUE), no download: returns -BRISQUE, higher is better; matches the "
        "`brisque` package. " + VERIFIER_NOTE),
    "LoTTSCLIPScoreVerifierLoader": (
        "CLIPScore (100 x cosine of image and prompt) from a CLIP model folder or file you provide, e.g. "
        "`models/lotts_verifiers/clip-vit-large-patch14/`. " + VERIFIER_NOTE),
    "LoTTSPickScoreVerifierLoader": (
        "PickScore from `models/lotts_verifiers/PickScore_v1/` (a transformers folder). " + VERIFIER_NOTE),
    "LoTTSHPSv2VerifierLoader": (
        "HPSv2 from `models/lotts_verifiers/HPS_v2.1_compressed.pt` (open_clip ViT-H-14). " + VERIFIER_NOTE),
    "LoTTSImageRewardVerifierLoader": (
        "ImageReward, the paper's selection verifier, from `models/lotts_verifiers/ImageReward/ImageReward.pt` with "
        "`med_config.json` and bert-base-uncased `vocab.txt`. " + VERIFIER_NOTE),
    "LoTTSAestheticVerifierLoader": (
        "LAION aesthetic score: `sac+logos+ava1-l14-linearMSE.pth` on top of a CLIP ViT-L/14 from Load CLIP "
        "Vision. " + VERIFIER_NOTE),
    "LoTTSVerifierEnsemble": (
        "Combines 2-4 verifiers by weighted average rank within the batch. Its scores only compare within one "
        "call, so score candidates that compete in one batch (the search does)."),
    "LoTTSDemoModelLoader": (
        "Loads the LoTTS demo model: a 4 M-parameter text-to-image model in ComfyUI's SD1.5 architecture trained "
        "on a synthetic world of shapes with planted local defects. Use 128 x 128 latents and prompts like "
        "`a red circle and a blue square on a striped background`. An instrument for demonstrations and "
        "measurements, not a general image model."),
    "LoTTSDemoWorldVerifier": (
        "The demo world's verifier: a small CNN trained to tell clean world images from ones with defects, the "
        "demo's stand-in for ImageReward. Use it with the demo model only."),
}


def _inputs_table(cls):
    spec = cls.INPUT_TYPES()
    rows = []
    for group in ("required", "optional"):
        for name, value in spec.get(group, {}).items():
            kind = value[0] if isinstance(value[0], str) else "choice"
            options = value[1] if len(value) > 1 else {}
            default = options.get("default")
            tip = " ".join(str(options.get("tooltip", "")).split())
            extra = f" (default `{default}`)" if default not in (None, "") else ""
            rows.append(f"| `{name}`{'' if group == 'required' else ' (optional)'} | {kind} | {tip}{extra} |")
    if not rows:
        return "This node has no inputs.\n"
    return "| input | type | what it does |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def _outputs_table(cls):
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    tips = getattr(cls, "OUTPUT_TOOLTIPS", None) or [""] * len(cls.RETURN_TYPES)
    rows = [f"| `{n}` | {t} | {' '.join(str(tip).split())} |" for n, t, tip in zip(names, cls.RETURN_TYPES, tips,
                                                                                   strict=True)]
    return "| output | type | what it is |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def page(node_id, cls, display_name):
    return (f"# {display_name}\n\n{INTROS[node_id]}\n\n## Inputs\n\n{_inputs_table(cls)}\n## Outputs\n\n"
            f"{_outputs_table(cls)}")


def pages(nodes_module):
    out = {}
    for node_id, cls in sorted(nodes_module.NODE_CLASS_MAPPINGS.items()):
        if node_id.startswith("LoTTS") and not node_id.startswith("LoTTSTest"):
            out[node_id] = page(node_id, cls, nodes_module.NODE_DISPLAY_NAME_MAPPINGS.get(node_id, node_id))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    opts = parser.parse_args(argv)
    sys.path.append(str(REPO / "tests"))
    import harness

    env = harness.start_in_process(tempfile.mkdtemp(prefix="lotts-docs-"))
    written = pages(env.nodes)
    stale = [n for n, text in written.items() if not (OUT / f"{n}.md").is_file() or (OUT / f"{n}.md").read_text() != text]
    if opts.check:
        print("stale:", stale or "none")
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in written.items():
        (OUT / f"{name}.md").write_text(text)
    print(f"wrote {len(written)} pages to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
