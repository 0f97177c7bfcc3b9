"""LR crop selection (kfops.crops): where Phase 2 estimates the kernel and where the kernel
checks score it."""

from __future__ import annotations

import pytest
import torch

from kfops.crops import CV_CROP, cv_luma, phase2_crops, phase2_pixels, select_crop, select_crops
from kfops.metrics import rgb_to_y


def _stripes_and_texture() -> torch.Tensor:
    """(1, 3, 64, 96): strong vertical stripes on the left third, weaker random texture
    (edges in every direction) on the right third, flat in between."""
    g = torch.Generator().manual_seed(0)
    img = torch.full((1, 3, 64, 96), 0.5)
    img[..., :, :32] = (torch.arange(32) % 4 < 2).float().expand(1, 3, 64, 32)
    img[..., :, 64:] = 0.5 + 0.3 * (torch.rand(1, 1, 64, 32, generator=g) - 0.5)
    return img


def test_crop_rule_structure_prefers_edges_in_every_direction():
    img = _stripes_and_texture()
    # the stripes carry the most gradient energy, but only across one direction
    assert select_crop(img, 24, "energy")[1] < 32 - 12
    y, x = select_crop(img, 24, "structure")
    assert x >= 64 - 12 and 0 <= y <= 64 - 24 and x <= 96 - 24
    assert select_crop(img, 24) == select_crop(img, 24, "energy")  # the default rule
    assert select_crop(img, 200) == (0, 0)
    with pytest.raises(ValueError, match="crop rule"):
        select_crop(img, 24, "random")


def test_select_crops_are_disjoint_and_best_first():
    img = _stripes_and_texture()
    corners = select_crops(img, 24, 5)
    assert corners[0] == select_crop(img, 24)
    assert 2 <= len(corners) <= 5
    for i, (y, x) in enumerate(corners):
        assert 0 <= y <= 64 - 24 and 0 <= x <= 96 - 24
        for v, u in corners[:i]:
            assert abs(y - v) >= 24 or abs(x - u) >= 24
    assert select_crops(img, 200, 3) == [(0, 0)]


def test_crop_fill_gives_a_small_image_one_crop_with_the_pixels_of_all():
    g = torch.Generator().manual_seed(0)
    small = torch.rand(1, 3, 64, 64, generator=g)
    assert phase2_crops(small, 40, 2) == (40, select_crops(small, 40, 2))
    side, corners = phase2_crops(small, 40, 2, fill=True)
    assert side == 57 and side * side >= 2 * 40 * 40 and len(corners) == 1
    y, x = corners[0]
    assert 0 <= y <= 64 - 57 and 0 <= x <= 64 - 57
    # where the crops fit, fill changes nothing
    wide = _stripes_and_texture()
    assert phase2_crops(wide, 24, 2, fill=True) == (24, select_crops(wide, 24, 2))


@pytest.mark.parametrize("fill", [False, True])
def test_phase2_pixels_bounds_the_crops_for_any_image_size(fill):
    g = torch.Generator().manual_seed(1)
    for h, w in [(30, 30), (57, 90), (64, 64), (79, 81), (80, 40), (100, 64), (130, 130)]:
        img = torch.rand(1, 3, h, w, generator=g)
        side, corners = phase2_crops(img, 40, 2, fill=fill)
        used = sum(min(h - y, side) * min(w - x, side) for y, x in corners)
        assert used <= phase2_pixels(h, w, 40, 2, fill), (h, w)


def test_cv_luma_is_the_most_textured_crop_of_a_large_image():
    img = torch.rand(1, 3, CV_CROP + 40, CV_CROP + 8, generator=torch.Generator().manual_seed(0))
    img[..., 100:, :] = 0.5  # flat bottom: the crop sits at the top
    y = cv_luma(img)
    assert y.shape == (1, 1, CV_CROP, CV_CROP)
    top, left = select_crop(rgb_to_y(img), CV_CROP)
    assert top == 0
    full = rgb_to_y(img)
    assert torch.equal(y, full[..., top : top + CV_CROP, left : left + CV_CROP].float())
