"""Region masks (lotts_ops/regions.py): the defect map's strongest components instead of a fixed top-r area."""

import pytest
import torch

from lotts_ops.regions import region_masks, split_regions


def two_blobs():
    p = torch.zeros(1, 16, 16)
    p[0, 2:5, 2:5] = 1.0  # strong, 9 cells
    p[0, 10:14, 9:13] = 0.8  # weaker, 16 cells
    p[0, 8, 1] = 0.9  # a single hot cell
    return p + 0.01 * torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0))


def test_components_above_threshold_without_small_ones():
    mask = region_masks(two_blobs(), threshold=0.6, min_area=2 / 256, max_area=1.0)
    assert mask[0, 2:5, 2:5].all() and mask[0, 10:14, 9:13].all()
    assert mask[0, 8, 1] == 0 and int(mask.sum()) == 9 + 16  # the single cell is under min_area
    assert len(split_regions(mask[0])) == 2


def test_max_area_keeps_the_strongest_regions_first():
    mask = region_masks(two_blobs(), threshold=0.6, min_area=2 / 256, max_area=12 / 256)
    assert int(mask.sum()) == 9 and mask[0, 2:5, 2:5].all()


def test_flat_or_weak_maps_give_small_or_empty_masks_and_inputs_stay_untouched():
    p = two_blobs()
    before = p.clone()
    region_masks(p)
    assert torch.equal(p, before)
    empty = region_masks(torch.zeros(2, 8, 8), threshold=0.5, min_area=0.05)
    assert empty.shape == (2, 8, 8) and empty.sum() == 0  # a flat map normalises to 0 everywhere: no region


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"min_area": 0.5, "max_area": 0.2}, {"max_area": 1.5}])
def test_bad_settings_are_named(kwargs):
    with pytest.raises(ValueError, match="threshold|min_area|max_area"):
        region_masks(two_blobs(), **kwargs)
