"""kfops.blur_metric: the Crete et al. re-blur score, checked against scikit-image and on
images whose score is known exactly."""

import pytest
import torch
import torch.nn.functional as F
from skimage.measure import blur_effect as skimage_blur_effect

from kfops.blur_metric import blur_effect
from kfops.kernels import gaussian


def _smooth_noise(h: int, w: int, seed: int) -> torch.Tensor:
    x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return F.avg_pool2d(x, 3, 1, 1)[0, 0]


@pytest.mark.parametrize("shape", [(40, 33), (64, 64), (17, 29)])
@pytest.mark.parametrize("taps", [11, 9, 4])
def test_the_sobel_form_matches_scikit_image(shape, taps):
    x = _smooth_noise(*shape, seed=sum(shape) + taps)
    ours = blur_effect(x, taps=taps, derivative="sobel")
    theirs = skimage_blur_effect(x.numpy(), h_size=taps)
    assert ours == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("taps", [9, 5])
def test_sharp_blocks_lose_all_but_one_tap_of_each_edge(taps):
    """Blocks 16 pixels wide: a box re-blur of ``taps`` < 16 spreads every unit jump over
    ``taps`` steps of 1/taps, so Σ min(D_F, D_B) / Σ D_F = 1/taps on both axes."""
    i = torch.arange(64)
    blocks = (((i[:, None] // 16) + (i[None, :] // 16)) % 2).double()
    assert blur_effect(blocks, taps=taps) == pytest.approx(1 / taps, abs=1e-12)
    # the same in an RGB image (luma) and as a (1, C, H, W) batch of one
    rgb = blocks.expand(3, 64, 64)
    assert blur_effect(rgb[None].float(), taps=taps) == pytest.approx(1 / taps, abs=1e-6)


def test_the_score_rises_with_blur_and_a_flat_image_counts_as_blurred():
    x = _smooth_noise(96, 96, seed=3)[None, None]
    scores = []
    for sigma in (0.5, 1.0, 2.0, 3.0):
        k = gaussian(15, sigma)
        scores.append(blur_effect(F.conv2d(F.pad(x, (7,) * 4, mode="reflect"), k[None, None])))
    assert scores == sorted(scores) and scores[0] < 0.5 < scores[-1] <= 1
    assert blur_effect(torch.full((20, 20), 0.3)) == 1.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="too small"):
        blur_effect(torch.rand(8, 30))
    with pytest.raises(ValueError, match="batch"):
        blur_effect(torch.rand(2, 3, 20, 20))
    with pytest.raises(ValueError, match="derivative"):
        blur_effect(torch.rand(20, 20), derivative="laplace")
