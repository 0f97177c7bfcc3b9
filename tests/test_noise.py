"""kfops.noise: the noise level of a single image, on images whose noise is known."""

import pytest
import torch
import torch.nn.functional as F

from kfops.kernels import gaussian
from kfops.noise import noise_sigma


def _scene(h: int = 96, w: int = 96, seed: int = 0) -> torch.Tensor:
    """A noise-free (3, h, w) image in [0, 1]: smooth shading plus blurred blocks (edges)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    shading = 0.3 + 0.4 * xx * yy
    blocks = ((torch.arange(h)[:, None] // 24 + torch.arange(w)[None, :] // 24) % 2).float()
    img = torch.stack([shading + 0.2 * blocks * c for c in torch.rand(3, generator=g)])
    k = gaussian(9, 1.5).float()
    return F.conv2d(F.pad(img[:, None], (4,) * 4, mode="reflect"), k[None, None])[:, 0]


@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.05])
def test_white_noise_on_a_smooth_image_is_measured(sigma):
    x = _scene()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    assert noise_sigma(x + sigma * noise) == pytest.approx(sigma, rel=0.1)


def test_a_noise_free_image_scores_near_zero_and_the_score_grows_with_the_noise():
    x = _scene()
    assert noise_sigma(x) < 0.002
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    scores = [noise_sigma(x + s * noise) for s in (0.0, 0.01, 0.02, 0.04)]
    assert scores == sorted(scores)


def test_sharp_edges_barely_move_the_estimate():
    """Unit steps every 12 pixels answer the mask 100× more than the noise does, on a
    third of the pixels; the median (and leaving out the strongest gradients) ignores them."""
    i = torch.arange(96)
    blocks = ((i[:, None] // 12 + i[None, :] // 12) % 2).double()
    g = torch.Generator().manual_seed(3)
    noisy = blocks + 0.01 * torch.randn(96, 96, generator=g, dtype=torch.float64)
    for fraction in (0.0, 0.3):
        assert noise_sigma(noisy, edge_fraction=fraction) == pytest.approx(0.01, rel=0.1)


def test_shapes_and_degenerate_inputs():
    x = _scene(40, 50) + 0.01 * torch.randn(3, 40, 50, generator=torch.Generator().manual_seed(4))
    assert noise_sigma(x[None]) == pytest.approx(noise_sigma(x), abs=1e-12)
    assert noise_sigma(x[1]) == pytest.approx(noise_sigma(x[1:2]), abs=1e-12)
    assert noise_sigma(torch.full((20, 20), 0.5)) == 0.0
    assert noise_sigma(torch.rand(2, 2)) == 0.0
    with pytest.raises(ValueError, match="batch"):
        noise_sigma(torch.rand(2, 3, 20, 20))
    with pytest.raises(ValueError, match="edge_fraction"):
        noise_sigma(x, edge_fraction=1.0)
