"""Step/sigma bookkeeping for LoTTS in k-diffusion terms.

`sigmas` holds steps + 1 values ending in 0; step i goes sigmas[i] -> sigmas[i + 1].
"""

import re

import torch


def resolve_start_step(steps: int, start_step: int, start_fraction: float) -> int:
    """Step index t0 at which localized re-denoising resumes.

    A positive start_fraction overrides start_step with round(start_fraction * steps). The result must lie
    in [0, steps - 1] (at least one step must remain to denoise).
    """
    if steps < 1:
        raise ValueError(f"steps: must be >= 1, got {steps}")
    if start_fraction > 0:
        if start_fraction > 1:
            raise ValueError(f"start_fraction: must be in [0, 1], got {start_fraction}")
        resolved = round(start_fraction * steps)
        if not 0 <= resolved <= steps - 1:
            raise ValueError(
                f"start_fraction={start_fraction} gives step {resolved} of {steps}; "
                f"it must give a step in [0, {steps - 1}] (use a fraction below {(steps - 0.5) / steps:.3f})"
            )
        return resolved
    if start_fraction < 0:
        raise ValueError(f"start_fraction: must be in [0, 1], got {start_fraction}")
    if not 0 <= start_step <= steps - 1:
        raise ValueError(f"start_at_step: must be in [0, {steps - 1}] for {steps} steps, got {start_step}")
    return int(start_step)


def _as_float(sigma) -> float:
    if isinstance(sigma, torch.Tensor):
        if sigma.numel() != 1:
            raise ValueError(f"sigma must be a float or a 1-element tensor, got shape {tuple(sigma.shape)}")
        return float(sigma.reshape(()).item())
    return float(sigma)


def step_index(sigma, sigmas) -> int:
    """Index i of the step starting at sigma: the closest entry of sigmas[:-1].

    sigma: float, 0-d or 1-element tensor; sigmas: 1-D tensor or sequence of steps + 1 values.
    """
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)
    if sigmas.numel() < 2:
        raise ValueError(f"sigmas must hold at least 2 values (one step), got {sigmas.numel()}")
    starts = sigmas[:-1]
    return int(torch.argmin((starts - _as_float(sigma)).abs()).item())


def is_harmonization_step(sigma, sigmas, global_steps: int) -> bool:
    """True when the step starting at sigma is among the last `global_steps` steps of sigmas.

    Those final steps run without the inpainting mask so the refined region blends in.
    """
    if global_steps < 0:
        raise ValueError(f"global_steps: must be >= 0, got {global_steps}")
    steps = torch.as_tensor(sigmas).reshape(-1).numel() - 1
    return step_index(sigma, sigmas) >= steps - global_steps


def noise_level_to_schedule_percent(level: float) -> float:
    """ComfyUI sampling percent (0 = start, max noise; 1 = end) for a noise level (0 = clean, 1 = pure noise)."""
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"level must be in [0, 1] (0 = clean, 1 = pure noise), got {level}")
    return 1.0 - float(level)


def parse_float_list(text: str, name: str, low: float, high: float) -> list[float]:
    """Parse numbers separated by commas and/or whitespace, e.g. "0.2, 0.3", each within [low, high]."""
    parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    if not parts:
        raise ValueError(f"{name} must list at least one number, got {text!r}")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{name}: {part!r} is not a number") from None
        if not low <= value <= high:
            raise ValueError(f"{name}: {value} is outside [{low}, {high}]")
        values.append(value)
    return values
