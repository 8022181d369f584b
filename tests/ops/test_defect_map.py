import math

import pytest
import torch

from lotts_ops.defect_map import (
    auroc,
    defect_probability,
    defect_score,
    iou,
    noise_difference_map,
    normalize_maps,
    resize_maps,
    top_area_mask,
)


def test_normalize_maps_per_sample_and_constant():
    m = torch.stack([torch.tensor([[2.0, 4.0], [6.0, 10.0]]), torch.full((2, 2), 3.0)])
    out = normalize_maps(m)
    torch.testing.assert_close(out[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.equal(out[1], torch.zeros(2, 2))
    with pytest.raises(ValueError, match="m must be"):
        normalize_maps(torch.zeros(4, 4))


def test_defect_probability_combines_normalized_maps():
    diff = torch.tensor([[[0.0, 10.0], [5.0, 0.0]]])
    orig = torch.tensor([[[1.0, 1.0], [1.0, 3.0]]])
    p = defect_probability(diff, orig, lam=0.5)
    torch.testing.assert_close(p, torch.tensor([[[0.0, 1.0], [0.5, 0.5]]]))
    with pytest.raises(ValueError, match="lam"):
        defect_probability(diff, orig, lam=-1.0)
    with pytest.raises(ValueError, match="ca_orig"):
        defect_probability(diff, orig[:, :1], lam=0.5)


@pytest.mark.parametrize("area", [0.0, 0.1, 0.37, 0.5, 0.99, 1.0])
def test_top_area_mask_exact_area(area):
    p = torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(0))
    p[1] = 0.5  # all ties: the count must still be exact
    mask = top_area_mask(p, area)
    expected = round(area * 63)
    assert mask.sum(dim=(1, 2)).tolist() == [expected] * 3
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    if 0 < expected < 63:
        # every selected value is >= every unselected one
        for b in (0, 2):
            assert p[b][mask[b] == 1].min() >= p[b][mask[b] == 0].max()


def test_top_area_mask_ties_are_deterministic_and_area_validated():
    p = torch.zeros(1, 2, 3)
    torch.testing.assert_close(top_area_mask(p, 0.5), torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]]))
    with pytest.raises(ValueError, match="area"):
        top_area_mask(p, 1.5)


def test_noise_difference_map():
    low = torch.zeros(1, 2, 2, 2)
    high = torch.zeros(1, 2, 2, 2)
    high[0, 0, 0, 1] = 3.0
    high[0, 1, 0, 1] = -1.0
    out = noise_difference_map(low, high)
    torch.testing.assert_close(out, torch.tensor([[[0.0, 2.0], [0.0, 0.0]]]))
    with pytest.raises(ValueError, match="eps_high"):
        noise_difference_map(low, high[:, :1])


def test_noise_difference_map_5d_averages_channels_and_frames():
    # Qwen-Image latents are (B, C, T, H, W): one map per candidate, never mixed across the batch
    low = torch.zeros(2, 2, 1, 2, 2)
    high = torch.zeros(2, 2, 1, 2, 2)
    high[1, 0, 0, 1, 0] = 4.0
    out = noise_difference_map(low, high)
    assert out.shape == (2, 2, 2)
    torch.testing.assert_close(out[1], torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    assert float(out[0].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="eps_low"):
        noise_difference_map(low[0, 0], high[0, 0])


def test_resize_maps_up_and_down():
    m = torch.zeros(1, 8, 8)
    m[0, :, 4:] = 1.0
    down = resize_maps(m, 4, 4)
    # triangle filter over 2x-wide support: weights .25/.75/.75/.25 around each output centre
    torch.testing.assert_close(down, torch.tensor([[[0.0, 0.125, 0.875, 1.0]] * 4]))
    up = resize_maps(torch.tensor([[[0.0, 1.0]]]), 1, 4)
    torch.testing.assert_close(up, torch.tensor([[[0.0, 0.25, 0.75, 1.0]]]))
    # antialiasing averages a fine checkerboard instead of aliasing it
    checker = (torch.arange(16).reshape(4, 4) % 2 + torch.arange(4)[:, None] % 2) % 2
    torch.testing.assert_close(resize_maps(checker[None].float(), 1, 1), torch.tensor([[[0.5]]]))


def test_defect_score_inside_mask():
    p = torch.arange(8, dtype=torch.float32).reshape(2, 2, 2)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(defect_score(p, mask), torch.tensor([1.5, 0.0]))


def test_auroc_values():
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1])) == 1.0
    assert auroc(torch.tensor([0.9, 0.8, 0.2, 0.1]), torch.tensor([0, 0, 1, 1])) == 0.0
    assert auroc(torch.ones(6), torch.tensor([0, 1, 0, 1, 1, 0])) == 0.5  # all tied
    # pos {0.5, 0.7}, neg {0.5, 0.2}: pairs won 1 + 1 + 0.5 (tie) + 1 = 3.5 of 4
    assert auroc(torch.tensor([0.5, 0.7, 0.5, 0.2]), torch.tensor([1, 1, 0, 0])) == pytest.approx(0.875)
    assert math.isnan(auroc(torch.rand(5), torch.ones(5)))


def test_auroc_matches_pairwise_count_on_random_data():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 5, (40,), generator=gen).float()  # many ties
    labels = torch.randint(0, 2, (40,), generator=gen)
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None]).float() + 0.5 * (pos[:, None] == neg[None]).float()
    assert auroc(scores.reshape(5, 8), labels.reshape(5, 8)) == pytest.approx(wins.mean().item())


def test_iou():
    a = torch.zeros(3, 4, 4)
    b = torch.zeros(3, 4, 4)
    a[0, :2] = 1.0
    b[0, 1:3] = 1.0  # overlap 4, union 12
    a[1, 0, 0] = 1.0  # disjoint with empty
    torch.testing.assert_close(iou(a, b), torch.tensor([1 / 3, 0.0, 1.0]))
