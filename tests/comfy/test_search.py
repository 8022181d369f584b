"""Search nodes on every tiny family: NFE matches an independent count, selection stays aligned."""

import json

import pytest
import torch
from graphs import STEPS, search_graph, with_options


def test_search_nfe_matches_independent_count(comfy_env, family):
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    result = comfy_env.run(search_graph(family))
    bon = json.loads(result.outputs("20")[4])
    lotts = json.loads(result.outputs("21")[4])
    assert bon["nfe"] == counts[f"bon-{family}"] == result.outputs("20")[5]
    assert lotts["nfe"] == counts[f"lotts-{family}"] == result.outputs("21")[5]
    passes = 2  # cfg 3.0: conditional + unconditional, euler: one evaluation per step
    assert bon["nfe"] == 3 * STEPS * passes
    # 1 seed: full sampling + 1 capture level x 3 prompts + 2 refinements from step 2 of 4
    assert lotts["nfe_sampling"] == STEPS * passes
    assert lotts["nfe_capture"] == 3
    assert lotts["nfe_refinement"] == 2 * (STEPS - 2) * passes
    assert lotts["samples_per_prompt"] == 3 == bon["samples_per_prompt"]
    assert lotts["equivalent_full_samples"] < bon["equivalent_full_samples"]
    assert len(lotts["scores"]) == 3 and len(lotts["labels"]) == 3
    for node in ("20", "21"):
        image, latent, mask = result.outputs(node)[:3]
        assert image.shape == (1, 64, 64, 3) and mask.shape == (1, 64, 64)
        assert latent["samples"].shape[0] == 1


def test_search_is_deterministic_batch_aware_and_best_is_scored_max(comfy_env):
    graph = search_graph("sd15", n=2, seeds=2, refinements=1, rounds=2, batch=2)
    first, second = comfy_env.run(graph), comfy_env.run(graph)
    for node in ("20", "21"):
        assert torch.equal(first.outputs(node)[0], second.outputs(node)[0])
        assert first.outputs(node)[4] == second.outputs(node)[4]
    lotts = json.loads(first.outputs("21")[4])
    assert lotts["samples_per_prompt"] == 2 * (1 + 1 * 2)
    assert len(lotts["winners"]) == 2 and first.outputs("21")[0].shape[0] == 2
    scores = torch.tensor(lotts["scores"])
    assert len(scores) == 2 * 2 + 2 * 2 * 1 * 2  # items x seeds + items x seeds x k x rounds
    # Best-of-N's first candidates are LoTTS's seeds: same noise indices of the same seed
    bon = json.loads(first.outputs("20")[4])
    assert bon["scores"][:2] == lotts["scores"][:2]


def test_select_best_keeps_images_latents_masks_aligned(comfy_env):
    # distinct latents: noise of increasing scale per batch item, so contrast ranks them
    noise = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [0.5, 3.0, 1.0, 2.0]).reshape(4, 1, 1, 1)
    latent = {"samples": noise}
    _, _, vae = comfy_env.test_pack.tiny_models.tiny_family("sd15")
    with torch.inference_mode():
        images = vae.decode(noise)
    masks = torch.arange(4).float().reshape(4, 1, 1).expand(4, 64, 64) / 4
    node = comfy_env.pack.nodes.select_best.LoTTSSelectBest()
    out = node.select(images, comfy_env.test_pack._ContrastVerifier(), "p", 2, latent=latent, mask=masks)
    chosen = json.loads(out["result"][3])["chosen"]
    expected = torch.argsort(images.flatten(1).std(1), descending=True)[:2].tolist()
    assert chosen == expected
    assert torch.equal(out["result"][0], images[chosen])
    assert torch.equal(out["result"][1]["samples"], noise[chosen])
    assert torch.equal(out["result"][2], masks[chosen])
    assert torch.equal(latent["samples"], noise), "input latent must not be modified"
    with pytest.raises(ValueError, match="latent: batch size 3"):
        node.select(images, comfy_env.test_pack._ContrastVerifier(), "p", 1, latent={"samples": noise[:3]})


def test_defect_regions_mode_refines_only_candidates_with_a_region_and_counts_it(comfy_env):
    """mask_mode 'defect regions': a region threshold no map reaches (none above 1.0 after normalising except
    the peak, and min_area above the peak's size) leaves every lineage unrefined: no refinement NFE; a loose
    one refines every candidate, with exactly the paper's refinement cost."""
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    graph = search_graph("sd15", seeds=2)
    strict = {"mask_mode": "defect regions", "region_threshold": 1.0, "region_min_area": 0.5, "region_max_area": 1.0}
    loose = {**strict, "region_threshold": 0.01, "region_min_area": 0.0}
    result = comfy_env.run(with_options(graph, **strict))
    report = json.loads(result.outputs("21")[4])
    assert report["mask_mode"] == "defect regions" and report["nfe_refinement"] == 0
    assert report["nfe"] == counts["lotts-sd15"] == 2 * STEPS * 2 + 2 * 3
    assert all("r" not in w for w in report["winners"]) and result.outputs("21")[2].sum() == 0
    result = comfy_env.run(with_options(graph, **loose))
    report = json.loads(result.outputs("21")[4])
    assert report["nfe_refinement"] == 2 * 2 * (STEPS - 2) * 2 == counts["lotts-sd15"] - 2 * STEPS * 2 - 2 * 3
    assert len(report["scores"]) == 2 + 2 * 2


def test_bad_region_settings_fail_before_sampling(comfy_env):
    graph = with_options(search_graph("sd15"), mask_mode="defect regions", region_min_area=0.5, region_max_area=0.2)
    with pytest.raises(Exception, match="min_area"):
        comfy_env.run(graph)


def pruning_graph(n, prune_at_step, prune_keep, seeds=2):
    return with_options(search_graph("sd15", n=n, seeds=seeds), ("20", "21"), prune_at_step=prune_at_step,
                        prune_keep=prune_keep)


def test_early_pruning_keeping_everything_reproduces_the_plain_search(comfy_env):
    plain = comfy_env.run(search_graph("sd15", n=3))
    kept = comfy_env.run(pruning_graph(3, 2, 1.0, seeds=1))
    for node in ("20", "21"):
        a, b = json.loads(plain.outputs(node)[4]), json.loads(kept.outputs(node)[4])
        assert a["nfe"] == b["nfe"] and b["pruning"]["finished"] == b["pruning"]["sampled"]
        assert torch.allclose(torch.tensor(a["scores"]), torch.tensor(b["scores"]), atol=1e-4)


def test_early_pruning_finishes_only_the_best_and_counts_what_ran(comfy_env):
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    result = comfy_env.run(pruning_graph(4, 2, 0.5))
    bon = json.loads(result.outputs("20")[4])
    passes = 2
    assert bon["nfe"] == counts["bon-sd15"] == (4 * 2 + 2 * (STEPS - 2)) * passes  # 4 started, 2 finished
    early = torch.tensor(bon["pruning"]["early_scores"])
    survivors = sorted(f"s{int(j)}" for j in early.argsort(descending=True)[:2])
    assert sorted(bon["labels"]) == survivors and sorted(bon["pruning"]["pruned"]) == sorted(
        f"s{j}" for j in range(4) if f"s{j}" not in survivors)
    assert bon["nfe_per_full_sample"] == STEPS * passes
    lotts = json.loads(result.outputs("21")[4])  # 2 seeds, 1 survives: one lineage is refined
    assert lotts["pruning"]["finished"] == 1 and lotts["nfe"] == counts["lotts-sd15"]
    assert lotts["nfe_refinement"] == 2 * (STEPS - 2) * passes and len(lotts["scores"]) == 1 + 2


@pytest.mark.parametrize("prune_at_step", [STEPS, 99])
def test_pruning_step_outside_the_schedule_is_refused(comfy_env, prune_at_step):
    with pytest.raises(Exception, match="prune_at_step"):
        comfy_env.run(pruning_graph(3, prune_at_step, 0.5))


def budget_graph(nfe_budget, stop_score=1e6, rounds=3):
    graph = search_graph("sd15", seeds=2, rounds=rounds)
    graph["21"]["inputs"]["area_ratio"] = 0.25
    return with_options(graph, nfe_budget=nfe_budget, stop_score=stop_score)


def test_budgeted_search_spends_at_most_its_budget_best_first(comfy_env):
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    sampling = 2 * STEPS * 2
    round_cost = 3 + 2 * (STEPS - 2) * 2  # one capture level x 3 prompts + k = 2 re-draws from step 2 of 4
    result = comfy_env.run(budget_graph(sampling + 2 * round_cost + round_cost - 1))  # room for two rounds only
    report = json.loads(result.outputs("21")[4])
    assert report["nfe"] == counts["lotts-sd15"] == sampling + 2 * round_cost
    assert len(report["best_first_steps"]) == 2 and report["nfe_budget"] == sampling + 3 * round_cost - 1
    first = report["best_first_steps"][0]
    assert first == ("s0" if report["scores"][0] >= report["scores"][1] else "s1")  # the best seed goes first


def test_budgeted_search_stops_once_the_score_is_reached(comfy_env):
    result = comfy_env.run(budget_graph(10_000, stop_score=-1e6))
    report = json.loads(result.outputs("21")[4])
    assert report["best_first_steps"] == [] and report["nfe_refinement"] == 0 and report["nfe_capture"] == 0
    with pytest.raises(Exception, match="nfe_budget"):
        comfy_env.run(budget_graph(5))


def test_region_selection_costs_no_model_evaluations(comfy_env):
    graph = search_graph("sd15", seeds=2)
    base = {"mask_mode": "defect regions", "region_threshold": 0.3, "region_min_area": 0.0, "region_max_area": 1.0}
    plain = json.loads(comfy_env.run(with_options(graph, **base)).outputs("21")[4])
    chosen = json.loads(comfy_env.run(with_options(graph, **base, region_selection=True)).outputs("21")[4])
    assert chosen["region_selection"] and chosen["nfe"] == plain["nfe"]
    assert len(chosen["scores"]) >= len(plain["scores"])  # plus one composite per multi-region lineage


def test_every_option_beyond_the_paper_counts_exactly_on_every_family(comfy_env, family):
    """Region masks, per-region selection, crops, seed pruning and the NFE budget together: the reported NFE is
    the independent counter's, on every family."""
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    graph = search_graph(family, seeds=2, rounds=2)
    graph = with_options(graph, mask_mode="defect regions", region_threshold=0.3, region_min_area=0.0,
                         region_max_area=0.6, region_selection=True, crop_padding=1, prune_at_step=2, prune_keep=0.5,
                         nfe_budget=200)
    report = json.loads(comfy_env.run(graph).outputs("21")[4])
    assert report["nfe"] == counts[f"lotts-{family}"] <= 200 and report["pruning"]["finished"] == 1
    assert report["nfe_refinement_area_weighted"] <= report["nfe_refinement"]


def test_options_set_on_the_search_node_by_an_older_graph_still_run(comfy_env):
    """API graphs from before LoTTS Search Options set the options on the search nodes themselves: they run with
    those values (pruning on both nodes here); together with an options node, or fed by a link, they fail with a
    message that names the options node."""
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    graph = search_graph("sd15", n=4, seeds=2)
    for node in ("20", "21"):
        graph[node]["inputs"] = {**graph[node]["inputs"], "prune_at_step": 2, "prune_keep": 0.5}
    result = comfy_env.run(graph)
    bon, lotts = json.loads(result.outputs("20")[4]), json.loads(result.outputs("21")[4])
    assert bon["pruning"]["finished"] == 2 and bon["nfe"] == counts["bon-sd15"] == (4 * 2 + 2 * (STEPS - 2)) * 2
    assert lotts["pruning"]["finished"] == 1 and lotts["nfe"] == counts["lotts-sd15"]
    with pytest.raises(Exception, match="options: this node also sets \\['prune_at_step', 'prune_keep'\\]"):
        comfy_env.run(with_options(graph, ("21",)))
    graph["21"]["inputs"]["nfe_budget"] = ["99", 0]
    graph["99"] = {"class_type": "PrimitiveInt", "inputs": {"value": 500}}
    with pytest.raises(Exception, match="nfe_budget: moved to the LoTTS Search Options node"):
        comfy_env.run(graph)


@pytest.mark.parametrize("signal", ["attention", "noise difference"])
def test_capture_within_sampling_keeps_the_seeds_and_pays_only_the_quality_prompts(comfy_env, family, signal):
    """capture_mode 'within sampling': the seeds are the same samples as without it (the extra passes do not touch
    the trajectory), the capture costs the two quality prompts per level and seed (attention's original prompt is
    the sampler's own pass), and the independent counter agrees."""
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    graph = search_graph(family, seeds=2, signal=signal)
    plain = json.loads(comfy_env.run(graph).outputs("21")[4])
    within = json.loads(comfy_env.run(with_options(graph, capture_mode="within sampling")).outputs("21")[4])
    assert within["nfe"] == counts[f"lotts-{family}"] and within["capture_mode"] == "within sampling"
    assert within["nfe_capture"] == 2 * 1 * 2  # seeds x levels x (high, low)
    assert plain["nfe_capture"] == 2 * 1 * (3 if signal == "attention" else 2)
    assert within["nfe_sampling"] == plain["nfe_sampling"] == 2 * STEPS * 2
    assert within["nfe_refinement"] in (0, plain["nfe_refinement"])
    torch.testing.assert_close(torch.tensor(within["scores"][:2]), torch.tensor(plain["scores"][:2]), rtol=0,
                               atol=1e-4)


def test_capture_within_sampling_under_a_budget(comfy_env):
    counts = comfy_env.test_pack.EVALUATION_COUNTS
    sampling, capture = 2 * STEPS * 2, 2 * 3
    redraws = 2 * (STEPS - 2) * 2
    graph = budget_graph(sampling + 2 * 2 + 2 * redraws, rounds=1)  # the seeds' capture and two re-draw sets fit
    report = json.loads(comfy_env.run(with_options(graph, nfe_budget=sampling + 2 * 2 + 2 * redraws,
                                                   capture_mode="within sampling")).outputs("21")[4])
    assert report["nfe"] == counts["lotts-sd15"] <= report["nfe_budget"] and len(report["best_first_steps"]) == 2
    assert report["nfe_capture"] == 2 * 2 < capture


def test_capture_within_sampling_with_early_pruning_captures_only_the_survivors(comfy_env):
    """Early pruning, then capture within sampling: the survivors finish from prune_at_step with the two quality
    prompts read on their way; what is sampled, scored early and pruned is what the re-noised search does."""
    counts = comfy_env.test_pack.EVALUATION_COUNTS

    def report(mode):
        graph = with_options(search_graph("sd15", seeds=4), prune_at_step=1, prune_keep=0.5, capture_mode=mode)
        return json.loads(comfy_env.run(graph).outputs("21")[4])

    plain, within = report("re-noised (paper)"), report("within sampling")
    assert within["nfe"] == counts["lotts-sd15"] and within["capture_mode"] == "within sampling"
    assert within["pruning"]["finished"] == plain["pruning"]["finished"] == 2
    assert within["pruning"]["pruned"] == plain["pruning"]["pruned"]
    assert within["nfe_sampling"] == plain["nfe_sampling"] == (4 * 1 + 2 * (STEPS - 1)) * 2
    assert within["nfe_capture"] == 2 * 1 * 2 and plain["nfe_capture"] == 2 * 1 * 3  # survivors x level x prompts
    torch.testing.assert_close(torch.tensor(within["scores"][:2]), torch.tensor(plain["scores"][:2]), rtol=0,
                               atol=1e-4)
    with pytest.raises(Exception, match="noise_levels: capture within sampling reads step"):  # before the pruning
        comfy_env.run(with_options(search_graph("sd15", seeds=2), prune_at_step=STEPS - 1, capture_mode="within sampling"))
