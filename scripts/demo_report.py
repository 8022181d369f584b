"""A self-contained HTML report of one demo run (output/demo/report.html): what was found and what was fixed.

Reads the files the demo workflow saved (originals, the Defect Mask node's defect maps, masks, the scored candidate grid, the chosen
image, the select node's scores) and the benchmark's measured LoTTS-versus-Best-of-N figures
(bench/results/summary.json). Images are embedded as data URIs, so the file can be mailed or opened offline.

    python scripts/demo_report.py output/demo
"""

import base64
import html
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREFIXES = (("original", "1. Candidates from three seeds", "A plain KSampler, 20 euler steps, cfg 5."),
            ("defectmap", "2. The defect map the mask is made from",
             "The Defect Mask node's own map P (white = more defect evidence), {signal}; the mask below is its "
             "top {area} of the area, refined."),
            ("mask", "3. Where LoTTS re-denoises", "The defect mask (white) after refinement."),
            ("candidates", "4. Originals and refinements, scored by the verifier",
             "Each candidate's score (higher is better); the chosen one is framed."),
            ("chosen", "5. Chosen", "The verifier's best of originals and refinements."))


def _data_uri(path):
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _images(folder, kind):
    return sorted(folder.glob(f"demo_pipeline_{kind}_*.png"))


def _scores(folder):
    for path in sorted(folder.glob("node*_report.json")):
        text = path.read_text()
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return None


def _compute_section(summary):
    if not summary:
        return "<p>No benchmark summary found (bench/results/summary.json): run <code>bash bench/run_all.sh</code>.</p>"
    ratio, ci = summary.get("bon_over_lotts_nfe_ratio"), summary.get("bon_over_lotts_nfe_ratio_ci")
    if ratio is None:
        return ("<p>LoTTS against Best-of-N has not been measured on this world yet "
                f"({html.escape(str(summary.get('not_measured', {})))}).</p>")
    def bound(value):
        return "never" if value is None else f"{value:.2f}"

    verdict = "fewer" if ratio > 1 else "more"
    text = (f"<p>On the benchmark (bench/results/quality_vs_compute.md), Best-of-N needs <b>{ratio:.2f}x</b> "
            f"LoTTS's model evaluations to reach LoTTS's verifier score (95 % interval {bound(ci[0])}-{bound(ci[1])}): "
            f"by the verifier, LoTTS spends {verdict} evaluations than Best-of-N for the same quality on this world.")
    area = summary.get("bon_over_lotts_nfe_ratio_defect_area")
    area_bound = summary.get("bon_over_lotts_nfe_ratio_defect_area_lower_bound")
    if area is not None:
        text += f" On the held-out defect measure the ratio is <b>{area:.2f}x</b>."
    elif area_bound is not None:
        text += (f" On the held-out defect measure Best-of-N never reached LoTTS within its largest N: the ratio is "
                 f"<b>above {area_bound:.1f}x</b>.")
    return text + "</p>"


def _ratio_text(triple):
    ratio, lo, hi = (triple + [None, None, None])[:3]
    fmt = lambda v: "never" if v is None else f"{v:.2f}x"  # noqa: E731 - None: Best-of-N's pool never matched
    return f"{fmt(ratio)} [{fmt(lo)}, {fmt(hi)}]"


def _complexity_section(summary):
    """Where LoTTS pays along world v3's complexity axis (1-6 objects), as bench/world3_report.py measured it."""
    by_objects = (summary or {}).get("success_ratio_by_complexity")
    if not by_objects:
        return ("<p>World v3 (1-6 objects, where localized scaling should pay most) has not been benchmarked yet: "
                "<code>bash bench/run_all.sh</code> writes it.</p>")
    measures = [("success_ratio_by_complexity", "success (NFE)"),
                ("cost_ratio_real_size_by_complexity", "success (cost at real size)"),
                ("verifier_ratio_by_complexity", "verifier score (NFE)"),
                ("defect_area_ratio_by_complexity", "held-out defect area (NFE)")]
    measures = [(key, label) for key, label in measures if summary.get(key)]
    rows = "".join(f"<tr><td>{html.escape(n)}</td>" + "".join(
        f"<td>{_ratio_text(summary[key].get(n) or [])}</td>" for key, _ in measures) + "</tr>" for n in by_objects)
    # the goal's unit: success at real-size cost; pays where the interval's lower end is above 1x, or "never"
    # (Best-of-N's pool never reached LoTTS's success)
    verdict_key = ("cost_ratio_real_size_by_complexity" if summary.get("cost_ratio_real_size_by_complexity")
                   else "success_ratio_by_complexity")
    pays = [n for n, (_, lo, _) in summary[verdict_key].items() if lo is None or lo > 1]
    verdict = (f"LoTTS pays on success (interval above 1x) at {', '.join(pays)} object(s)" if pays else
               "LoTTS does not pay on success at any complexity (no interval lies above 1x)")
    pool = summary.get("pool_success_rate_by_complexity") or {}
    nobody = [n for n, rate in pool.items() if rate < 0.01]
    if nobody:  # there a ratio only says that one sample fails as often as LoTTS does
        verdict += (f"; at {', '.join(nobody)} object(s) under 1 % of samples succeed at all, so success cannot "
                    "tell the methods apart there")
    warning = ""
    if summary.get("instrument_valid_v3") is False:
        warning = ("<p><b>World v3 misses some of its validity gates (bench/results/world3.md): these figures describe "
                   "that yardstick, not a proven property of LoTTS.</b></p>")
    return (warning + f"<p>Best-of-N's cost to match paper-mode LoTTS, over LoTTS's cost, per number of objects "
            f"(95 % interval over prompts; 'never': the pool of {summary.get('bon_pool_size', '?')} never matched): "
            f"{verdict}.</p><table border='1' cellpadding='4'><tr><th>objects</th>"
            + "".join(f"<th>{html.escape(label)}</th>" for _, label in measures) + "</tr>" + rows + "</table>")


SIGNAL_WORDS = {
    "noise difference": "signal 'noise difference': |eps_low - eps_high|, where the model's predicted noise under the "
                        "low- and high-quality prompts differs",
    "attention": "signal 'attention': the paper's cross-attention contrast, low- minus high-quality prompt",
    "attention + noise difference": "signal 'attention + noise difference': the mean of both maps",
}


def mask_settings(graph):
    """(signal, area ratio) of the graph's LoTTS Defect Mask node, for the report's captions."""
    for node in (graph or {}).values():
        if node.get("class_type") == "LoTTSDefectMask":
            return node["inputs"].get("signal", "attention"), node["inputs"].get("area_ratio", 0.5)
    return None, None


def build(folder, graph=None):
    """The report of the outputs in `folder`; `graph` (the API graph that made them) names the mask's signal."""
    folder = Path(folder)
    signal, area = mask_settings(graph)
    summary_path = REPO / "bench" / "results" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>LoTTS demo report</title><style>",
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "img{image-rendering:pixelated;margin:4px;border:1px solid #ccc}"
             ".row img{width:256px}.wide img{max-width:100%}h2{margin-top:1.6em}.note{color:#555}"
             "</style></head><body>",
             "<h1>LoTTS demo: localized test-time scaling on the synthetic quality world</h1>",
             "<p class='note'>The demo model is a 4 M-parameter text-to-image model in ComfyUI's SD1.5 architecture "
             "trained on a synthetic world of shapes with planted local defects; it is an instrument, not a general "
             "image model.</p>"]
    for kind, title, note in PREFIXES:
        files = _images(folder, kind)
        if not files:
            continue
        css = "wide" if kind == "candidates" else "row"
        note = note.format(signal=SIGNAL_WORDS.get(signal, f"signal {signal!r}" if signal else "signal as set"),
                           area="r" if area is None else f"{area:.0%}")
        parts.append(f"<h2>{html.escape(title)}</h2><p class='note'>{html.escape(note)}</p><div class='{css}'>")
        parts += [f"<img src='{_data_uri(f)}' alt='{html.escape(f.name)}'>" for f in files]
        parts.append("</div>")
    scores = _scores(folder)
    if scores is not None:
        parts.append("<h2>Scores</h2><pre>" + html.escape(json.dumps(scores, indent=1)
                                                          if not isinstance(scores, str) else scores) + "</pre>")
    parts.append("<h2>Compute against Best-of-N</h2>" + _compute_section(summary))
    parts.append("<h2>Where LoTTS pays: world v3, 1 to 6 objects</h2>" + _complexity_section(summary))
    parts.append("</body></html>")
    out = folder / "report.html"
    out.write_text("\n".join(parts))
    return out


if __name__ == "__main__":
    graph_path = REPO / "workflows" / "api" / "lotts_demo_pipeline.json"
    print(build(sys.argv[1] if len(sys.argv) > 1 else REPO / "output" / "demo", json.loads(graph_path.read_text())))
