"""The state of a LoTTS search: one lineage per seed, each holding its best latent so far, and one refinement
round on any subset of lineages (capture, mask, k local re-draws, verifier; a child replaces its parent only if
the verifier prefers it). Shared by the fixed-round search and the budgeted best-first search."""

import torch

from ..lotts_ops import defect_map, regions
from . import _capture, _crop, _local, _preview, _region_inputs, _sampling_capture
from .defect_mask import defect_probability_from_capture


class Lineages:
    def __init__(self, counted, counter, vae, verifier, settings, local, prompt, latents, images, scores, labels,
                 decode, within=None):
        self.counted, self.counter, self.vae, self.verifier = counted, counter, vae, verifier
        self.settings, self.local, self.prompt = settings, local, prompt
        self.decode = decode
        self.current = latents.clone()  # winners are written into it; sampling's output stays untouched
        self.images = images.clone()
        self.scores = scores.clone()
        self.masks = torch.zeros(latents.shape[0], *latents.shape[-2:])
        self.labels = labels
        self.index = list(range(latents.shape[0]))  # pool index of each lineage's current best
        self.rounds_done = [0] * latents.shape[0]
        self.pool_images, self.pool_scores = [images], [scores]
        self.within = within  # the seeds' capture made while sampling them (None: re-noised captures only)
        self.nfe_capture = within["model_evaluations"] if within else 0
        self.nfe_refinement_area_weighted = 0.0

    def has_capture(self, lineage):
        """Whether the lineage still holds the seed captured within sampling (its first round needs no capture)."""
        return self.within is not None and self.rounds_done[lineage] == 0

    def round(self, which, seed, progress=None):
        """One refinement round on lineages `which`. Returns the lineages that had something to re-denoise."""
        local, settings, counter = self.local, self.settings, self.counter
        before = counter.count
        if all(self.has_capture(lineage) for lineage in which):
            attention = _sampling_capture.rows(self.within, which)
        else:
            attention = _capture.capture(self.counted, local.conds, local.token_weights,
                                         {"samples": self.current[which]}, local.noise_levels, local.noise_draws, seed,
                                         local.selection, attention=local.signal != "noise difference")
        self.nfe_capture += counter.count - before
        p = defect_map.normalize_maps(defect_probability_from_capture(attention, local.signal,
                                                                      local.foreground_weight, True))
        masks = _region_inputs.masks_for(p, local)
        for lineage in which:
            self.rounds_done[lineage] += 1
        # a lineage whose mask is empty has nothing to re-denoise: it spends no refinement compute
        active = [slot for slot in range(len(which)) if bool(masks[slot].any())]
        if progress:
            progress.advance(_preview.mask_overlay(self.images[which], masks))
        if not active:
            if progress:
                progress.advance()
            return []
        chosen = [which[slot] for slot in active]
        before = counter.count
        if local.crop_padding >= 0:
            refined, weighted = _crop.refine_in_crops(
                self.counted, settings.positive, settings.negative, {"samples": self.current[chosen]}, masks[active],
                seed, settings.steps, settings.cfg, settings.sampler_name, settings.scheduler, local.start_step,
                local.refinements, local.global_steps, local.crop_padding, counter)
        else:
            refined, _ = _local.localized_refine(self.counted, settings.positive, settings.negative,
                                                 {"samples": self.current[chosen]}, masks[active], seed,
                                                 settings.steps, settings.cfg, settings.sampler_name,
                                                 settings.scheduler, local.start_step, local.refinements,
                                                 local.global_steps, show_progress=False)
            weighted = counter.count - before
        self.nfe_refinement_area_weighted += weighted
        refined_images = self.decode(self.vae, refined["samples"])
        k = local.refinements
        children = []  # per refined lineage: (latents, images, labels) of its candidates
        for slot, lineage in enumerate(chosen):
            base = f"{self.labels[self.index[lineage]]}r{self.rounds_done[lineage]}"
            kids = [refined["samples"][slot * k:(slot + 1) * k], refined_images[slot * k:(slot + 1) * k],
                    [f"{base}.{j}" for j in range(k)]]
            if local.region_selection:
                composite = self._best_per_region(lineage, masks[active[slot]], kids[0], kids[1])
                if composite is not None:
                    kids = [torch.cat([kids[0], composite[0]]), torch.cat([kids[1], composite[1]]), kids[2] + [f"{base}.regions"]]
            children.append(kids)
        # parents and children in ONE scoring call: batch-relative verifiers (rank ensembles) only compare within
        # a batch
        child_images = torch.cat([kid[1] for kid in children])
        batch = torch.cat([self.images[which], child_images])
        batch_scores = self.verifier.score(batch, [self.prompt] * batch.shape[0])
        self.scores[which] = batch_scores[:len(which)].clone()
        child_scores = batch_scores[len(which):]
        offset = sum(len(s) for s in self.pool_scores)
        self.pool_images.append(child_images)
        self.pool_scores.append(child_scores)
        start = 0
        for slot, (lineage, (latents, images, labels)) in enumerate(zip(chosen, children, strict=True)):
            self.labels.extend(labels)
            block = child_scores[start:start + len(labels)]
            best = int(block.argmax())
            if float(block[best]) > float(self.scores[lineage]):  # a refinement must beat its parent
                self.current[lineage] = latents[best]
                self.images[lineage] = images[best]
                self.scores[lineage] = block[best]
                self.masks[lineage] = masks[active[slot]]
                self.index[lineage] = offset + start + best
            start += len(labels)
        if progress:
            progress.advance(child_images)
        return chosen

    def _best_per_region(self, lineage, mask, latents, images):
        """With m >= 2 separate regions in the mask: each region takes the refinement the verifier likes best when
        only that region is swapped into the parent (or keeps the parent's), so k re-draws offer k^m combinations
        for m x k verifier calls and no model evaluation. Returns (latent (1, C, h, w), image (1, H, W, 3)) or None."""
        parts = regions.split_regions(mask)
        if len(parts) < 2:
            return None
        parent = self.current[lineage:lineage + 1]
        swaps = torch.cat([parent * (1 - part) + latents * part for part in parts])  # (m * k, C, h, w)
        swap_images = self.decode(self.vae, swaps)
        scores = self.verifier.score(torch.cat([self.images[lineage:lineage + 1], swap_images]),
                                     [self.prompt] * (1 + swaps.shape[0]))
        parent_score, swap_scores = scores[0], scores[1:].reshape(len(parts), latents.shape[0])
        composite = parent.clone()
        for r, part in enumerate(parts):
            j = int(swap_scores[r].argmax())
            if float(swap_scores[r, j]) > float(parent_score):
                composite = composite * (1 - part) + latents[j:j + 1] * part
        return composite, self.decode(self.vae, composite)
