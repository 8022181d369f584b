import time

import numpy as np
import pytest
import torch
from scipy import ndimage

from lotts_ops.mask_ops import (
    connected_components,
    feather,
    fill_holes,
    grow,
    mask_area,
    refine_mask,
    remove_small_components,
    resize_mask,
    threshold,
)


def _random_blobs(seed, batch=2, size=24):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, size, size, generator=gen) > 0.55).float()


@pytest.mark.parametrize("connectivity", [4, 8])
def test_connected_components_match_scipy(connectivity):
    masks = _random_blobs(0)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels = connected_components(masks, connectivity=connectivity)
    assert labels.dtype == torch.long
    for b in range(masks.shape[0]):
        expected, count = ndimage.label(masks[b].numpy(), structure=structure)
        assert count > 5  # the random field really has several components
        # same raster numbering as scipy
        np.testing.assert_array_equal(labels[b].numpy(), expected)


def test_connected_components_spiral_and_speed():
    # A long snake is the slow case for label propagation; big blobs on 128 x 128 must be fast.
    snake = np.zeros((31, 31), dtype=np.float32)
    for row in range(1, 30, 2):
        snake[row, 1:30] = 1
        if row + 2 < 30:
            snake[row + 1, 29 if (row // 2) % 2 == 0 else 1] = 1  # turn alternately right and left
    expected, count = ndimage.label(snake, structure=np.ones((3, 3)))
    assert count == 1
    np.testing.assert_array_equal(connected_components(torch.from_numpy(snake)[None])[0].numpy(), expected)

    big = torch.zeros(1, 128, 128)
    big[0, 5:60, 5:60] = 1
    big[0, 70:120, 10:40] = 1
    big[0, 20:110, 80:120] = 1
    start = time.perf_counter()
    labels = connected_components(big)
    assert time.perf_counter() - start < 1.0
    assert labels.max().item() == 3
    assert labels[0, 30, 30] == 1 and labels[0, 30, 100] == 2 and labels[0, 100, 20] == 3


def test_connected_components_empty_and_does_not_modify_input():
    masks = _random_blobs(1)
    before = masks.clone()
    connected_components(masks)
    assert torch.equal(masks, before)
    assert connected_components(torch.zeros(1, 5, 5)).abs().sum() == 0


def test_remove_small_components_keeps_soft_values():
    mask = torch.zeros(1, 12, 12)
    mask[0, 1:5, 1:5] = 0.8  # 16 px, kept
    mask[0, 8:10, 8:10] = 0.9  # 4 px, removed
    mask[0, 0, 11] = 0.3  # background-level value, untouched
    before = mask.clone()
    out = remove_small_components(mask, min_area=5)
    assert torch.equal(mask, before)
    expected = before.clone()
    expected[0, 8:10, 8:10] = 0
    assert torch.equal(out, expected)


def test_fill_holes_matches_scipy():
    mask = torch.zeros(1, 10, 10)
    mask[0, 2:8, 2:8] = 1
    mask[0, 4:6, 4:6] = 0  # enclosed hole
    mask[0, 0:3, 9] = 0  # border background stays
    mask[0, 8:10, 0] = 1
    mask[0, 9, 1] = 0
    before = mask.clone()
    out = fill_holes(mask)
    assert torch.equal(mask, before)
    expected = ndimage.binary_fill_holes(mask[0].numpy() > 0.5)
    np.testing.assert_array_equal(out[0].numpy() > 0.5, expected)
    assert out[0, 4:6, 4:6].eq(1).all()
    # random fields: same as scipy
    fields = _random_blobs(2, batch=3)
    filled = fill_holes(fields)
    for b in range(3):
        np.testing.assert_array_equal(filled[b].numpy() > 0.5, ndimage.binary_fill_holes(fields[b].numpy() > 0.5))


def test_grow_is_disk_and_erode_inverts():
    mask = torch.zeros(1, 21, 21)
    mask[0, 10, 10] = 1
    before = mask.clone()
    grown = grow(mask, 3)
    assert torch.equal(mask, before)
    yy, xx = torch.meshgrid(torch.arange(21), torch.arange(21), indexing="ij")
    disk = (((yy - 10) ** 2 + (xx - 10) ** 2) <= 9).float()
    assert torch.equal(grown[0], disk)
    assert torch.equal(grow(grown, -3), mask)  # the disk erodes back to its centre
    assert torch.equal(grow(mask, 0), mask)
    # near the border the disk is clipped, not shifted
    corner = torch.zeros(1, 6, 6)
    corner[0, 0, 0] = 1
    assert grow(corner, 2)[0].sum() == 6  # quarter disk of radius 2: (0,0..2), (1,0..1), (2,0)


def test_erode_shrinks_square():
    mask = torch.zeros(1, 12, 12)
    mask[0, 2:10, 2:10] = 1
    expected = torch.zeros(1, 12, 12)
    expected[0, 4:8, 4:8] = 1
    assert torch.equal(grow(mask, -2), expected)


def test_feather_blurs_and_preserves_mass():
    mask = torch.zeros(1, 16, 16)
    mask[0, 4:12, 4:12] = 1
    out = feather(mask, 3)
    assert torch.equal(feather(mask, 0), mask) and feather(mask, 0) is not mask
    assert 0 < out[0, 4, 8] < 1 and 0 < out[0, 3, 8] < 0.5
    assert out[0, 8, 8] == pytest.approx(1.0, abs=1e-4)
    torch.testing.assert_close(out.sum(), mask.sum(), rtol=1e-4, atol=0)  # interior blob: no leakage
    # radius larger than the image falls back to edge padding instead of failing
    assert feather(torch.ones(1, 3, 3), 5).allclose(torch.ones(1, 3, 3))


def test_threshold_resize_and_area():
    mask = torch.tensor([[[0.2, 0.6], [0.5, 0.9]]])
    assert torch.equal(threshold(mask, 0.5), torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]))
    big = resize_mask(mask, 4, 4, mode="nearest")
    assert big.shape == (1, 4, 4) and big[0, 3, 3] == pytest.approx(0.9)
    torch.testing.assert_close(resize_mask(torch.ones(1, 8, 8), 3, 5, mode="bicubic"), torch.ones(1, 3, 5))
    step = torch.zeros(1, 4, 4)
    step[0, :, 2:] = 1
    sharp = resize_mask(step, 16, 16, mode="bicubic")  # bicubic overshoots a step: must be clamped
    assert sharp.min() == 0 and sharp.max() == 1 and 0 < sharp[0, 0, 8] < 1
    torch.testing.assert_close(mask_area(mask), torch.tensor([0.55]))
    with pytest.raises(ValueError, match="mode"):
        resize_mask(mask, 4, 4, mode="linear")


def test_refine_mask_order():
    mask = torch.zeros(1, 20, 20)
    mask[0, 3:13, 3:13] = 0.7
    mask[0, 6:9, 6:9] = 0.1  # hole, filled before growing
    mask[0, 17, 17] = 0.9  # speck, removed
    before = mask.clone()
    out = refine_mask(mask, threshold_value=0.5, min_area=4, fill=True, grow_pixels=1)
    assert torch.equal(mask, before)
    expected = torch.zeros(1, 20, 20)
    expected[0, 3:13, 3:13] = 1
    expected = grow(expected, 1)
    assert torch.equal(out, expected)
    soft = refine_mask(mask, feather_radius=2)
    assert 0 < soft[0, 2, 8] < 1
