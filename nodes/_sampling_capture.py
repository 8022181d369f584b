"""Capture within sampling: while the search samples its candidates, the quality prompts are evaluated at the
sampling steps whose noise level is nearest each capture level, on the sampler's own x_t; the original prompt's
attention is read from the sampler's conditional pass, so only the two quality prompts cost extra. The paper's
capture re-noises the finished image instead (the separate capture node always does)."""

import comfy.model_management
import comfy.samplers
import torch

from ..lotts_ops import defect_map
from . import _capture, _model_family

CAPTURE_MODES = ("re-noised (paper)", "within sampling")


def capture_steps(sigmas, model_sampling, noise_levels):
    """The sampling steps (indices into sigmas) nearest each capture level, one per level, distinct."""
    steps = []
    for level in noise_levels:
        target = float(model_sampling.percent_to_sigma(1.0 - level))
        index = int(torch.argmin((sigmas[:-1].float() - target).abs()))
        if index not in steps:
            steps.append(index)
    return sorted(steps)


class CapturingGuider(comfy.samplers.CFGGuider):
    """A CFG guider (the KSampler's) that, at the capture steps, also evaluates the two quality prompts on the same
    x_t and, with a recorder, reads attention from its own conditional pass and the quality passes."""

    def __init__(self, model_patcher, capture_sigmas, recorder, counter):
        super().__init__(model_patcher)
        self.capture_sigmas, self.recorder, self.counter = list(capture_sigmas), recorder, counter
        self.noise_difference, self.passes, self.nfe, self.done = 0, 0, 0, set()
        self.totals = {name: {"ca": 0, "ca_prop": 0} for name in _capture.COND_NAMES}

    def set_all_conds(self, positive, negative, high, low):
        self.inner_set_conds({"positive": positive, "negative": negative, "high": high, "low": low})

    def _capture_hit(self, timestep):
        sigma = float(timestep.flatten()[0])
        for target in self.capture_sigmas:  # once per step: multi-evaluation samplers revisit sigmas
            if target not in self.done and abs(target - sigma) <= 1e-4 * max(1.0, abs(target)):
                return target
        return None

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        model_options = {} if model_options is None else model_options
        hit = self._capture_hit(timestep)
        if self.recorder is not None:
            self.recorder.reset_pass()
            self.recorder.active = hit is not None
            self.recorder.cond_indices = [0, None]  # the sampler's positive is the original prompt; skip uncond
        out = super().predict_noise(x, timestep, model_options, seed)
        if hit is None:
            return out
        self.done.add(hit)
        if self.recorder is not None:
            self.recorder.cond_indices = [1, 2]
        before = self.counter.count
        high, low = comfy.samplers.calc_cond_batch(self.inner_model, [self.conds["high"], self.conds["low"]], x,
                                                   timestep, model_options)
        self.nfe += self.counter.count - before
        self.noise_difference = self.noise_difference + defect_map.noise_difference_map(
            _capture.predicted_noise(x, timestep, low).float(), _capture.predicted_noise(x, timestep, high).float()).cpu()
        if self.recorder is not None:
            self.recorder.active = False
            _capture.add_pass_maps(self.recorder, self.totals)
        self.passes += 1
        return out


def sample_with_capture(model, noise, latent_image, settings, quality_conds, token_weights, noise_levels, selection,
                        attention, counter, seed, start_step=0):
    """KSampler-equivalent sampling of `latent_image` that captures along the way. Returns (samples, capture dict
    in the capture node's format, with "capture_mode" and "capture_steps"). From `start_step` on (with noise of
    zeros, as KSampler Advanced continues a partial sample): early pruning finishes only its survivors so."""
    arch = _model_family.require_attention(model) if attention else _model_family.architecture(model)
    _model_family.refuse_multi_gpu(model)
    ksampler = comfy.samplers.KSampler(model, steps=settings.steps, device=model.load_device,
                                       sampler=settings.sampler_name, scheduler=settings.scheduler, denoise=1.0,
                                       model_options=model.model_options)
    sigmas = ksampler.sigmas  # the KSampler's own schedule (penultimate-discarding samplers included)
    steps = capture_steps(sigmas, model.get_model_object("model_sampling"), noise_levels)
    if steps and steps[0] < start_step:
        raise ValueError(f"noise_levels: capture within sampling reads step {steps[0]} of {settings.steps}, before "
                         f"prune_at_step {start_step} where the survivors resume; use lower capture levels, prune "
                         "earlier or capture_mode 're-noised (paper)'")
    recorder = None
    if attention:
        recorder = _capture.recorder_for(model, tuple(latent_image.shape[-2:]), token_weights, selection, arch)
        recorder.active = False
        model = _capture.patched_clone(model, recorder)
    guider = CapturingGuider(model, [float(sigmas[i]) for i in steps], recorder, counter)
    _, high, low = quality_conds
    guider.set_all_conds(settings.positive, settings.negative, high, low)
    guider.set_cfg(settings.cfg)
    samples = guider.sample(noise, latent_image, comfy.samplers.sampler_object(settings.sampler_name),
                            sigmas[start_step:], denoise_mask=None, disable_pbar=True, seed=seed)
    if guider.passes != len(steps):
        raise RuntimeError(f"capture_mode 'within sampling': {guider.passes} of {len(steps)} capture steps were "
                           f"evaluated by sampler '{settings.sampler_name}'; use capture_mode 're-noised (paper)'")
    n = guider.passes
    result = _capture.capture_result(model, latent_image.shape, guider.totals if attention else None,
                                     guider.noise_difference, n, recorder, noise_levels, 1, arch, guider.nfe,
                                     ["high", "low"], capture_mode=CAPTURE_MODES[1], capture_steps=steps)
    return samples.to(comfy.model_management.intermediate_device()), result


def rows(capture, which):
    """The capture of the candidates `which` (row indices) only."""
    out = dict(capture)
    out["noise_difference"] = capture["noise_difference"][which]
    if capture["maps"] is not None:
        out["maps"] = {name: {k: v[which] for k, v in entry.items()} for name, entry in capture["maps"].items()}
    out["latent_shape"] = (len(which), *capture["latent_shape"][1:])
    return out
