"""Preview grid of candidates with their verifier scores; the winners framed in green."""

import math

import numpy as np
import torch
from PIL import Image, ImageDraw


def score_grid(images, scores, winners=(), labels=None, columns=None, border=3):
    """images (N, H, W, 3) in [0, 1] -> one IMAGE (1, H', W', 3) with a score label per tile."""
    n, height, width = images.shape[0], images.shape[1], images.shape[2]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    tile_h, tile_w = height + 2 * border, width + 2 * border
    canvas = Image.new("RGB", (columns * tile_w, rows * tile_h), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    pixels = (images.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    for i in range(n):
        x, y = (i % columns) * tile_w, (i // columns) * tile_h
        if i in winners:
            draw.rectangle([x, y, x + tile_w - 1, y + tile_h - 1], fill=(40, 200, 60))
        canvas.paste(Image.fromarray(pixels[i]), (x + border, y + border))
        text = (labels[i] + " " if labels else "") + f"{float(scores[i]):.3f}"
        draw.rectangle([x + border, y + border, x + border + 6 * len(text) + 4, y + border + 11], fill=(0, 0, 0))
        draw.text((x + border + 2, y + border), text, fill=(255, 255, 255))
    return torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0).unsqueeze(0)
