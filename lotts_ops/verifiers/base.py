"""The verifier contract shared by every scorer in the pack (socket type ``LOTTS_VERIFIER``).

A verifier is a small object with a ``name`` and ``score(images, prompts) -> torch.Tensor``:

* ``images``: a ComfyUI IMAGE tensor, (B, H, W, C) float in [0, 1], C = 3 (an alpha channel is dropped);
* ``prompts``: a list of B strings (a single string, or a one-element list, is repeated for the batch;
  ``None`` means empty prompts). No-reference scorers ignore it;
* the result is a float32 CPU tensor of shape (B,), and HIGHER IS BETTER for every verifier (scores whose
  native direction is "lower is better", like NIQE and BRISQUE, are negated).

Scoring never mutates its inputs, is deterministic for the same inputs, and is batched where the
model allows. No ``comfy`` import here: the ComfyUI side only wraps these objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

LOTTS_VERIFIER = "LOTTS_VERIFIER"


class Verifier:
    """Base class. Subclasses implement ``_score(images, prompts)`` on validated inputs."""

    name: str = "verifier"
    #: True when the score depends on the prompt (CLIPScore, PickScore, ...); False for NIQE/BRISQUE.
    uses_prompt: bool = False
    #: True when an image's score depends on the rest of the batch (the rank ensemble): such scores may be
    #: compared only within one ``score`` call; score candidates that must be compared in one batch.
    batch_relative: bool = False

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        images = check_images(images)
        prompts = normalize_prompts(prompts, images.shape[0])
        if images.shape[0] == 0:
            return torch.zeros(0, dtype=torch.float32)
        with torch.inference_mode():
            scores = self._score(images, prompts)
        scores = torch.as_tensor(scores).detach().to(device="cpu", dtype=torch.float32).reshape(-1)
        if scores.shape[0] != images.shape[0]:
            raise RuntimeError(f"verifier {self.name!r} returned {scores.shape[0]} scores for {images.shape[0]} images")
        return scores.clone()

    def _score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, images, prompts=None):
        return self.score(images, prompts)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


def check_images(images) -> torch.Tensor:
    """Validate a ComfyUI IMAGE batch; return a (B, H, W, 3) tensor (a view when possible, never a mutated input)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor (ComfyUI IMAGE), got {type(images).__name__}")
    if images.ndim == 3:  # a single HWC image
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be (B, H, W, 3) like a ComfyUI IMAGE, got shape {tuple(images.shape)}")
    if images.shape[-1] == 4:
        images = images[..., :3]
    elif images.shape[-1] == 1:
        images = images.expand(*images.shape[:-1], 3)
    return images


def normalize_prompts(prompts, batch: int) -> list[str]:
    """A list of ``batch`` strings from a list, a single string or None (one prompt is repeated)."""
    if prompts is None:
        return [""] * batch
    if isinstance(prompts, str):
        return [prompts] * batch
    prompts = [str(p) if p is not None else "" for p in prompts]
    if len(prompts) == 1 and batch != 1:
        return prompts * batch
    if len(prompts) != batch:
        raise ValueError(f"got {len(prompts)} prompts for {batch} images; give one prompt or one per image")
    return prompts


def images_to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, H, W, 3) float [0, 1] -> (B, H, W, 3) uint8 numpy, rounded the way a saved PNG would store it."""
    arr = images.detach().to("cpu", torch.float64).numpy()
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)


def chunks(n: int, size: int):
    size = max(1, int(size))
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))
