"""Quality-prompt attention capture on a clone of a MODEL.

The candidates are re-noised to a chosen level and the frozen model is evaluated once per level under
three conditionings (original, high-quality, low-quality prompt), or only the two quality prompts when no
attention is read (the noise difference needs nothing else). At most two conditionings go through one
ComfyUI cond batch, as in a CFG step, so the capture's peak memory is a sampling step's, and ComfyUI still
splits a batch when memory is short. While it runs, patches on the clone
record, per conditioning, the cross-attention image->prompt-content tokens (CA) and that map propagated
by the same layer's self-attention (SA @ CA, computed as an attention call with CA as the values).
The model's outputs are left exactly as without capture.
"""

import logging
import math

import comfy.model_management
import comfy.model_patcher
import comfy.sample
import comfy.samplers
import comfy.utils
import torch
from comfy.ldm.modules.attention import optimized_attention

from ..lotts_ops import attention_maps, defect_map
from . import _counting, _model_family, _preview

COND_NAMES = ("orig", "high", "low")
NOISE_DIFFERENCE_NAMES = ("high", "low")  # the original prompt's pass serves only the attention signal


def cond_names(attention):
    """The conditionings a capture evaluates: all three with attention, the two quality prompts without."""
    return COND_NAMES if attention else NOISE_DIFFERENCE_NAMES


def core_attention(q, k, v, extra_options):
    """The attention the block would run without our patch. `extra_options` holds the block's
    transformer_options, so another node's attention override (SageAttention, FlashAttention,
    set_model_optimized_attention) still applies through ComfyUI's wrap_attn."""
    return optimized_attention(q, k, v, extra_options["n_heads"], attn_precision=extra_options.get("attn_precision"),
                               transformer_options=extra_options)


class AttentionRecorder:
    """Accumulates per-conditioning maps at latent resolution, averaged over layers and passes."""

    def __init__(self, latent_hw, token_weights, selection, arch, patch=2, text_prefix=0, text_multiple=1,
                 layout="text first", blocks_in_call_order=None, weights_cover_text=False, auto_blocks="double"):
        self.latent_hw = latent_hw
        self.patch = patch  # latent cells per FLUX-layout image token along each side
        self.text_prefix = text_prefix  # learned tokens before the text in the joint attention (SD3 registers)
        self.text_multiple = text_multiple  # the text is padded to a multiple of this before the image (Z-Image)
        self.layout = layout  # "text first" (FLUX.1's) or another _model_family.joint_token_order
        self.weights_cover_text = weights_cover_text  # image-first/last: the text is exactly the weights' length
        self.blocks_in_call_order = blocks_in_call_order  # (double, single) for hosts that tag no block (HiDream)
        self.calls = 0  # attention calls seen in the current model evaluation
        self.auto_blocks = auto_blocks  # the joint-attention block type 'auto' reads
        self.token_weights = token_weights  # cond index -> (Nk,) weights over that conditioning's tokens
        self.selection = selection
        self.arch = arch
        self.pending_self_attention = {}
        self.sums = {}
        self.counts = {}
        self.layers_seen = set()
        self.n_txt = None
        self.skipped_layers = set()
        self.cond_indices = list(range(len(COND_NAMES)))  # cond batch position -> index in COND_NAMES (None: skip)
        self.active = True  # capture within sampling records only at its capture steps

    # -- layer selection --------------------------------------------------------------------------
    def wants(self, layer, n_image_tokens):
        if self.selection == "all":
            return True
        if self.selection is None:  # auto: see README "Choices" (downsampled UNet levels, all FLUX double blocks)
            if self.arch == _model_family.FLUX:
                return layer[0] == self.auto_blocks
            return n_image_tokens * 4 <= self.latent_hw[0] * self.latent_hw[1]
        return layer in self.selection

    # -- recording --------------------------------------------------------------------------------
    def _weights_for_rows(self, cond_or_uncond, rows_per_chunk, n_keys, device, pad_front=0):
        rows = []
        for cond_index in cond_or_uncond:
            w = self.token_weights[cond_index]
            if w.shape[0] + pad_front < n_keys:
                w = torch.nn.functional.pad(w, (pad_front, n_keys - w.shape[0] - pad_front))
            elif pad_front:
                w = torch.nn.functional.pad(w, (pad_front, 0))[:n_keys]
            rows.append(w[:n_keys].to(device).expand(rows_per_chunk, -1))
        return torch.cat(rows, dim=0)

    @staticmethod
    def rows_read(cond_or_uncond, *batched):
        """Only the rows of conditionings the capture reads: within sampling the sampler's unconditional pass
        shares the batch, and its read-out would be computed only to be dropped."""
        if None not in cond_or_uncond:
            return cond_or_uncond, batched
        rows = batched[0].shape[0] // len(cond_or_uncond)
        kept = [i for i, c in enumerate(cond_or_uncond) if c is not None]
        if not kept:
            return [], batched
        if kept == list(range(kept[0], kept[-1] + 1)):  # one run of rows: views, no copies
            return [cond_or_uncond[i] for i in kept], tuple(t[kept[0] * rows:(kept[-1] + 1) * rows] for t in batched)
        index = torch.cat([torch.arange(i * rows, (i + 1) * rows) for i in kept])
        return [cond_or_uncond[i] for i in kept], tuple(t[index.to(t.device)] for t in batched)

    def record(self, layer, q_img, k_img, ca, cond_or_uncond, grid_hw):
        """ca: (B_total, N) cross-attention per image token; q_img/k_img: (B_total, h, N, d) self-attention."""
        propagated = attention_maps.propagate_with_self_attention(q_img, k_img, ca.unsqueeze(-1))[..., 0]
        h, w = grid_hw
        maps = torch.stack([ca, propagated], dim=1).reshape(ca.shape[0] * 2, h, w)
        maps = defect_map.resize_maps(maps.float(), *self.latent_hw).reshape(ca.shape[0], 2, *self.latent_hw)
        rows = ca.shape[0] // len(cond_or_uncond)
        for chunk, cond_index in enumerate(cond_or_uncond):
            part = maps[chunk * rows:(chunk + 1) * rows].cpu()
            self.sums[cond_index] = self.sums.get(cond_index, 0) + part
            self.counts[cond_index] = self.counts.get(cond_index, 0) + 1
        self.layers_seen.add(layer)

    def averaged(self, cond_index):
        if cond_index not in self.sums:
            return None
        return self.sums[cond_index] / self.counts[cond_index]

    def reset_pass(self):
        self.sums, self.counts = {}, {}

    # -- UNet patches -----------------------------------------------------------------------------
    def unet_attn1(self, previous):
        def attn1(q, k, v, extra_options):
            out = previous(q, k, v, extra_options) if previous else core_attention(q, k, v, extra_options)
            layer = (extra_options["block"][0], extra_options["block"][1])
            if self.active and self.wants(layer, q.shape[1]):
                heads = extra_options["n_heads"]
                key = layer + (extra_options.get("block_index", 0),)
                self.pending_self_attention[key] = (attention_maps.split_heads(q, heads),
                                                    attention_maps.split_heads(k, heads))
            return out
        return attn1

    def unet_attn2(self, previous):
        def attn2(q, k, v, extra_options):
            out = previous(q, k, v, extra_options) if previous else core_attention(q, k, v, extra_options)
            layer = (extra_options["block"][0], extra_options["block"][1])
            key = layer + (extra_options.get("block_index", 0),)
            pending = self.pending_self_attention.pop(key, None)
            if not self.active or pending is None or q.shape[0] != pending[0].shape[0]:
                return out
            heads = extra_options["n_heads"]
            cond_or_uncond = [self.cond_indices[c] for c in extra_options["cond_or_uncond"]]
            cond_or_uncond, (q_read, k_read, *pending) = self.rows_read(
                cond_or_uncond, attention_maps.split_heads(q, heads), attention_maps.split_heads(k, heads), *pending)
            if not cond_or_uncond:
                return out
            weights = self._weights_for_rows(cond_or_uncond, q_read.shape[0] // len(cond_or_uncond), k.shape[1],
                                             q.device)
            ca = attention_maps.attention_to_tokens(q_read, k_read, weights)
            shape = extra_options.get("activations_shape")
            grid = (shape[-2], shape[-1]) if shape is not None else attention_maps.grid_shape(q.shape[1],
                                                                                               *self.latent_hw)
            self.record(key, *pending, ca, cond_or_uncond, grid)
            return out
        return attn2

    # -- FLUX joint attention ---------------------------------------------------------------------
    def flux_override(self, previous):
        """The attention override that records FLUX joint attention, chained to any override already there. When
        that one has a `container_function` (a backend that consumes ComfyUI's AttentionTensorContainer, e.g. int8
        attention), ours has one too, so the host keeps handing containers to that backend: we only peek."""
        def override(func, q, k, v, heads, *args, transformer_options=None, **kwargs):
            call = previous if previous else (lambda f, *a, **kw: f(*a, **kw))
            out = call(func, q, k, v, heads, *args, transformer_options=transformer_options, **kwargs)
            self.observe_joint(q, k, transformer_options, kwargs, heads)
            return out

        if previous is not None and getattr(previous, "container_function", None) is not None:
            def container_function(q, k, v, *args, transformer_options=None, **kwargs):
                # record first, from a peek, and keep no reference: the backend takes (and may free or reuse) them
                self.observe_joint(q.peek(), k.peek(), transformer_options, kwargs,
                                   args[0] if args else kwargs.get("heads"))
                return previous.container_function(q, k, v, *args, transformer_options=transformer_options, **kwargs)

            override.container_function = container_function
        return override

    def observe_joint(self, q, k, transformer_options, kwargs, heads=None):
        opts = transformer_options or {}
        layer = self.joint_layer(opts)
        if not self.active or layer is None:
            return
        if q.ndim == 3 and not kwargs.get("skip_reshape") and heads:  # SD3, HiDream: (B, N, heads*d)
            q, k = attention_maps.split_heads(q, heads), attention_maps.split_heads(k, heads)
        elif not kwargs.get("skip_reshape") or q.ndim != 4:
            return
        cond_or_uncond = [self.cond_indices[c] for c in opts.get("cond_or_uncond", [0])]
        cond_or_uncond, (q, k) = self.rows_read(cond_or_uncond, q, k)
        if not cond_or_uncond:  # e.g. a batch of the sampler's unconditional pass alone: not read, nothing to warn
            return
        located = self.joint_tokens(q.shape[2], opts, layer, cond_or_uncond)
        if located is None or not self.wants(layer, located[1]):
            return
        img_start, n_img, text_start = located
        weights = self._weights_for_rows(cond_or_uncond, q.shape[0] // len(cond_or_uncond), q.shape[2], q.device,
                                         pad_front=text_start)
        q_img, k_img = q[:, :, img_start:img_start + n_img], k[:, :, img_start:img_start + n_img]
        ca = attention_maps.attention_to_tokens(q_img, k, weights)  # joint softmax, text keys weighted
        grid = attention_maps.grid_shape(n_img, *self.latent_hw)
        self.record(layer, q_img, k_img, ca, cond_or_uncond, grid)

    def joint_layer(self, opts):
        """(block_type, block_index) of this attention call: the host's tags, else (HiDream) counted in call order
        since the model evaluation began; None for a call that belongs to no block."""
        if opts.get("block_type") is not None:
            return opts["block_type"], opts.get("block_index")
        if self.blocks_in_call_order is None:
            return None
        index, self.calls = self.calls, self.calls + 1
        n_double, n_single = self.blocks_in_call_order
        if index >= n_double + n_single:  # more calls than blocks: not the model this was laid out for
            return None
        return ("double", index) if index < n_double else ("single", index - n_double)

    def joint_tokens(self, n_tokens, opts, layer, cond_or_uncond):
        """(first image token, image tokens, first text token) of one joint attention call, or None to skip it."""
        expected = math.ceil(self.latent_hw[0] / self.patch) * math.ceil(self.latent_hw[1] / self.patch)
        if self.layout == "image first, text last":  # the text is the last tokens, exactly the weights' length
            n_text = self.text_length(cond_or_uncond)
            if n_text is None or n_tokens - n_text < expected:
                self.skip_once(layer, n_tokens, expected)
                return None
            return 0, expected, n_tokens - n_text
        if self.layout in ("image first", "image last"):
            if not self.text_fits(n_tokens - expected, cond_or_uncond):
                self.skip_once(layer, n_tokens, expected)
                return None
            return (0, expected, expected) if self.layout == "image first" else (n_tokens - expected, expected, 0)
        # newer hosts say where the image tokens start ("img_slice"); else the text (after any registers) first
        prefix, n_txt = 0, self.n_txt
        if opts.get("img_slice"):
            n_txt = opts["img_slice"][0]
        elif n_txt is not None:
            prefix, n_txt = self.text_prefix, self.text_prefix + -(-n_txt // self.text_multiple) * self.text_multiple
        if n_txt is None or n_tokens <= n_txt:  # SD3.5's image-only second attention has no text in front
            return None
        n_img = self.flux_image_tokens(n_tokens - n_txt, layer)
        return None if n_img is None else (n_txt, n_img, prefix)

    def text_length(self, cond_or_uncond):
        """The prompt weights' length, shared by every conditioning in the call (None where they differ or none)."""
        lengths = {self.token_weights[c].shape[0] for c in cond_or_uncond}
        return lengths.pop() if len(lengths) == 1 else None

    def text_fits(self, n_text, cond_or_uncond):
        """Whether `n_text` tokens beside the image hold the prompt weights of every conditioning in the call."""
        lengths = [self.token_weights[c].shape[0] for c in cond_or_uncond]
        return n_text > 0 and all(n_text == n if self.weights_cover_text else n_text >= n for n in lengths)

    def flux_image_tokens(self, n_after_text, layer):
        """The candidate's own image tokens among those after the text: (H/p) x (W/p) of the latent. Reference
        images (Kontext-style) append their tokens after them; anything else is skipped, once logged."""
        expected = math.ceil(self.latent_hw[0] / self.patch) * math.ceil(self.latent_hw[1] / self.patch)
        if self.text_multiple > 1:  # Z-Image pads the image tokens too, and appends nothing: exactly that many
            if n_after_text == -(-expected // self.text_multiple) * self.text_multiple:
                return expected
        elif n_after_text >= expected:
            return expected
        self.skip_once(layer, n_after_text, expected)
        return None

    def skip_once(self, layer, n_tokens, expected):
        if layer not in self.skipped_layers:
            self.skipped_layers.add(layer)
            logging.warning("[LoTTS] capture skips joint-attention layer %s: %d tokens beside the text, expected %d "
                            "image tokens", layer, n_tokens, expected)

    def flux_apply_model_wrapper(self, executor, x, t, c_concat=None, c_crossattn=None, *args, **kwargs):
        self.n_txt, self.calls = c_crossattn.shape[1], 0
        return executor(x, t, c_concat, c_crossattn, *args, **kwargs)

    def flux_wrapper(self, previous):  # hosts without APPLY_MODEL wrappers: the single model-function slot
        def wrapper(apply_model, args):
            self.n_txt, self.calls = args["c"]["c_crossattn"].shape[1], 0
            if previous:
                return previous(apply_model, args)
            return apply_model(args["input"], args["timestep"], **args["c"])
        return wrapper


def tag_block(index, previous):
    """A "dit" block patch that tags the block's attention calls as ("double", index), chained to `previous`."""
    def block(args, extra):
        args = {**args, "transformer_options": {**args["transformer_options"], "block_type": "double",
                                                "block_index": index}}
        return previous(args, extra) if previous else extra["original_block"](args)
    return block


def patched_clone(model, recorder):
    """A clone of `model` whose attention feeds `recorder`; existing patches are wrapped, not dropped."""
    patched = model.clone()
    options = patched.model_options
    transformer_options = options.setdefault("transformer_options", {})
    if recorder.arch == _model_family.UNET:
        # read the input model's patches (never the clone's, which we are about to write)
        replace = model.model_options.get("transformer_options", {}).get("patches_replace", {})
        setters = {"attn1": (patched.set_model_attn1_replace, recorder.unet_attn1),
                   "attn2": (patched.set_model_attn2_replace, recorder.unet_attn2)}
        for block_name, block_id in _model_family.unet_transformer_blocks(model):
            for kind, (setter, make_patch) in setters.items():
                existing = replace.get(kind, {})
                setter(make_patch(existing.get((block_name, block_id))), block_name, block_id)
                # ComfyUI prefers a per-transformer-index key (name, id, index) over (name, id): another node's
                # per-index patch would hide ours there, so wrap those too, chaining to them
                for key, previous in existing.items():
                    if len(key) == 3 and key[:2] == (block_name, block_id):
                        setter(make_patch(previous), block_name, block_id, key[2])
    else:
        transformer_options["optimized_attention_override"] = recorder.flux_override(
            transformer_options.get("optimized_attention_override"))
        replace = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
        for index in range(_model_family.untagged_joint_blocks(model)):
            patched.set_model_patch_replace(tag_block(index, replace.get(("double_block", index))), "dit",
                                            "double_block", index)
        if not _counting.add_apply_model_wrapper(patched, "lotts_capture", recorder.flux_apply_model_wrapper):
            patched.set_model_unet_function_wrapper(recorder.flux_wrapper(options.get("model_function_wrapper")))
    return patched


class QualityPromptGuider(comfy.samplers.CFGGuider):
    """Evaluates the denoiser under the capture's conditionings (no CFG mixing), at most two per cond batch as a CFG
    step does: the original prompt alone, then the two quality prompts together."""

    def __init__(self, model_patcher, on_predictions, names=COND_NAMES, recorder=None):
        super().__init__(model_patcher)
        self.on_predictions = on_predictions
        self.names = names
        self.recorder = recorder

    def set_quality_conds(self, conds):
        """`conds` in COND_NAMES order; only those of `names` are evaluated."""
        self.inner_set_conds({name: c for name, c in zip(COND_NAMES, conds, strict=True) if name in self.names})

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        model_options = {} if model_options is None else model_options
        groups = [tuple(n for n in self.names if n not in NOISE_DIFFERENCE_NAMES), NOISE_DIFFERENCE_NAMES]
        predictions = {}
        for group in [g for g in groups if g]:
            if self.recorder is not None:
                self.recorder.cond_indices = [COND_NAMES.index(name) for name in group]
            out = comfy.samplers.calc_cond_batch(self.inner_model, [self.conds[n] for n in group], x, timestep,
                                                 model_options)
            predictions.update(zip(group, out, strict=True))
        ordered = [predictions[name] for name in self.names]
        self.on_predictions(x, timestep, ordered)
        return ordered[0]


def recorder_for(model, latent_hw, token_weights, selection, arch):
    """An AttentionRecorder laid out for the model's family (patch size, registers, text padding, token order)."""
    return AttentionRecorder(latent_hw, token_weights, selection, arch, _model_family.patch_size(model),
                             _model_family.joint_text_prefix(model), _model_family.joint_text_multiple(model),
                             _model_family.joint_token_order(model), _model_family.blocks_in_call_order(model),
                             _model_family.weights_cover_all_text(model), _model_family.auto_block_type(model))


def add_pass_maps(recorder, totals):
    """Add one pass's averaged maps, per conditioning, into `totals` ({name: {"ca", "ca_prop"}})."""
    for index, name in enumerate(COND_NAMES):
        maps = recorder.averaged(index)
        if maps is None:
            raise RuntimeError(f"no attention was recorded for the '{name}' prompt; check the layers input")
        totals[name]["ca"] = totals[name]["ca"] + maps[:, 0]
        totals[name]["ca_prop"] = totals[name]["ca_prop"] + maps[:, 1]


def predicted_noise(x, timestep, denoised):
    """(x - denoised) / sigma: eps for EPS models, velocity-like for flow; 4-D images and 5-D (B, C, T, H, W)."""
    return (x - denoised) / timestep.reshape((-1,) + (1,) * (x.ndim - 1)).to(x.dtype)


def _single_evaluation(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """A one-call 'sampler': evaluate the denoiser at sigmas[0] and leave x as it is."""
    model(x, sigmas[0] * x.new_ones([x.shape[0]]), **(extra_args or {}))
    return x


def capture(model, conds, token_weights, samples, noise_levels, noise_draws, seed, selection, attention=True):
    """Run the capture passes. Returns the LOTTS_ATTENTION dict (CPU float32 tensors). With attention=False no
    recorder is installed (the noise difference needs only the model's predictions) and "maps" is None."""
    arch = _model_family.require_attention(model) if attention else _model_family.architecture(model)
    _model_family.refuse_multi_gpu(model)
    latent = samples["samples"]
    latent_hw = tuple(latent.shape[-2:])
    recorder = recorder_for(model, latent_hw, token_weights, selection, arch) if attention else None
    patched = patched_clone(model, recorder) if attention else model  # the guider itself patches nothing
    model_sampling = model.get_model_object("model_sampling")
    names = cond_names(attention)
    totals = {name: {"ca": 0, "ca_prop": 0} for name in COND_NAMES}
    noise_difference = 0
    predictions_seen = []

    def on_predictions(x, timestep, predictions):
        predictions_seen.append([predicted_noise(x, timestep, p) for p in predictions])

    passes = [level for level in noise_levels for _ in range(noise_draws)]
    progress = _preview.StageProgress(len(passes))
    sampler = comfy.samplers.KSAMPLER(_single_evaluation)
    for pass_index, level in enumerate(passes):
        comfy.model_management.throw_exception_if_processing_interrupted()
        sigma = float(model_sampling.percent_to_sigma(1.0 - level))
        sigmas = torch.tensor([sigma, 0.0])
        guider = QualityPromptGuider(patched, on_predictions, names, recorder)
        guider.set_quality_conds(conds)
        noise = comfy.sample.prepare_noise(latent, seed + pass_index)
        predictions_seen.clear()
        if recorder is not None:
            recorder.reset_pass()
        guider.sample(noise, latent, sampler, sigmas, denoise_mask=None, disable_pbar=True, seed=seed + pass_index)
        if recorder is not None:
            add_pass_maps(recorder, totals)
        eps = dict(zip(names, predictions_seen[-1], strict=True))
        eps_high, eps_low = eps["high"], eps["low"]
        noise_difference = noise_difference + defect_map.noise_difference_map(eps_low.float(), eps_high.float()).cpu()
        progress.advance(_preview.colorize(defect_map.normalize_maps(noise_difference)))  # where it looks so far
    n = len(passes)
    return capture_result(model, latent.shape, totals if attention else None, noise_difference, n, recorder,
                          noise_levels, noise_draws, arch, n * len(names) * latent.shape[0], names)


def capture_result(model, latent_shape, totals, noise_difference, passes, recorder, noise_levels, noise_draws, arch,
                   model_evaluations, prompts_evaluated, **extra):
    """The CAPTURE dict both capture modes return: maps and noise difference averaged over the passes."""
    return {
        "maps": {name: {k: v / passes for k, v in entry.items()} for name, entry in totals.items()}
        if totals is not None else None,
        "noise_difference": noise_difference / passes,
        "latent_shape": tuple(latent_shape),
        "layers": sorted(str(layer) for layer in recorder.layers_seen) if recorder is not None else [],
        "noise_levels": list(noise_levels),
        "noise_draws": noise_draws,
        "architecture": arch,
        "latent_to_image": _model_family.latent_to_image_scale(model),
        "model_evaluations": model_evaluations,
        "prompts_evaluated": list(prompts_evaluated),
        **extra,
    }
