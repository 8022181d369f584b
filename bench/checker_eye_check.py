"""Does the held-out adherence checker read generated decodes as a person would? (#16: the checker was trained on
round trips of renders, never on the generator's own decodes.)

Samples v3 test prompts with the gates' seeds (world3_gates.complexity_block: seed 1000 + 13 i + n) at the
chosen cfg, and writes grids of numbered tiles, each captioned with the prompt, what the checker saw and its
verdict, for a person to label "objects right" by eye. With --labels (a JSON {"tile": 0 or 1, ...}, tiles a person
found ambiguous listed under "ambiguous"), writes the agreement between those labels and the checker.

    .host/venv/bin/python bench/checker_eye_check.py [--objects 1,3,6] [--prompts 4] [--seeds 2]
        [--labels bench/results/checker_eye_check_labels.json]
"""

import argparse
import json
from pathlib import Path

import instrument
import numpy as np
import torch
import world3_gates
from common import RESULTS, add_run_arguments, write_json
from PIL import Image, ImageDraw

from demo import world3

TILE, CAPTION, PER_ROW, PER_GRID = 192, 44, 4, 8


def tile(number, image, prompt, seen, verdict):
    pixels = (image.clamp(0, 1).numpy() * 255).astype(np.uint8)
    out = Image.new("RGB", (TILE, TILE + CAPTION), "white")
    out.paste(Image.fromarray(pixels).resize((TILE, TILE), Image.NEAREST))
    draw = ImageDraw.Draw(out)
    draw.text((2, TILE + 1), f"#{number} {prompt.split(' on ')[0]}"[:46], fill="black")
    draw.text((2, TILE + 15), ("saw: " + ", ".join(f"{c} {s}" for c, s in seen))[:46], fill="blue")
    draw.text((2, TILE + 29), f"checker: objects right = {int(verdict)}", fill="red")
    return out


def write_grids(tiles, folder):
    paths = []
    for g in range(0, len(tiles), PER_GRID):
        chunk = tiles[g:g + PER_GRID]
        rows = (len(chunk) + PER_ROW - 1) // PER_ROW
        grid = Image.new("RGB", (PER_ROW * TILE, rows * (TILE + CAPTION)), "white")
        for q, t in enumerate(chunk):
            grid.paste(t, ((q % PER_ROW) * TILE, (q // PER_ROW) * (TILE + CAPTION)))
        path = Path(folder) / f"checker_eye_check_{g // PER_GRID:02d}.png"
        grid.save(path, optimize=True)
        paths.append(str(path))
    return paths


def agreement(rows, labels):
    ambiguous = {str(t) for t in labels.get("ambiguous", [])}
    pairs = [(int(labels[str(r["tile"])]), int(r["checker_objects_right"]), str(r["tile"]) in ambiguous)
             for r in rows if str(r["tile"]) in labels]
    agree = [a == b for a, b, _ in pairs]
    clear = [a == b for a, b, amb in pairs if not amb]
    return {"labelled": len(pairs), "agree": int(sum(agree)), "agree_without_ambiguous": int(sum(clear)),
            "unambiguous": len(clear), "person_right_rate": round(float(np.mean([a for a, _, _ in pairs])), 4),
            "checker_right_rate": round(float(np.mean([b for _, b, _ in pairs])), 4),
            "disagree_tiles": [r["tile"] for r in rows if str(r["tile"]) in labels
                               and int(labels[str(r["tile"])]) != int(r["checker_objects_right"])]}


@torch.no_grad()
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, "checker_eye_check.json")
    parser.add_argument("--objects", default="1,3,6")
    parser.add_argument("--prompts", type=int, default=4, help="test prompts per complexity")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cfg", type=float, default=None, help="default: the choice in results/world3_cfg.json")
    parser.add_argument("--labels", default=None, help="a person's labels: JSON {tile: 0/1, 'ambiguous': [tiles]}")
    opts = parser.parse_args(argv)
    opts.cfg = world3_gates.v3_cfg(opts)
    bench = world3_gates.start_v3_bench(opts)
    sampler = instrument.Sampler(bench, 20, opts.cfg)
    rows, tiles = [], []
    for n in (int(x) for x in opts.objects.split(",")):
        for i in range(opts.prompts):
            prompt = world3.sample(i, "test", n_objects=n)["prompt"]
            _, images = sampler.sample(prompt, 1000 + 13 * i + n, opts.seeds)
            parsed = bench.judges.parse(images)
            verdicts = bench.judges.adherence(images, [prompt] * opts.seeds)
            for j in range(opts.seeds):
                number = len(rows)
                rows.append({"tile": number, "objects": n, "prompt": prompt, "seed_index": j,
                             "checker_saw": parsed[j][0], "checker_objects_right": verdicts[j]["objects_right"]})
                tiles.append(tile(number, images[j], prompt, parsed[j][0], verdicts[j]["objects_right"]))
    grids = write_grids(tiles, (RESULTS / opts.out).parent)  # next to the JSON, as write_json places it
    out = {"what": "the held-out checker's objects-right verdict on generated decodes against a person's labels",
           "settings": vars(opts), "grids": grids, "tiles": rows}
    if opts.labels:
        labels = json.loads(Path(opts.labels).read_text())
        out["labels"] = labels
        out["agreement"] = agreement(rows, labels)
        print(json.dumps(out["agreement"]), flush=True)
    write_json(opts.out, out)
    return out


if __name__ == "__main__":
    main()
