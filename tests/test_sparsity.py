"""Normalised gradient sparsity: its range, invariances and preference for sharp images."""

from __future__ import annotations

import pytest
import torch

import kfops
from kfops.sparsity import normalized_sparsity


def _steps() -> torch.Tensor:
    """(1, 1, 48, 48): a piecewise-constant image (two rectangles on a background)."""
    x = torch.zeros(1, 1, 48, 48, dtype=torch.float64)
    x[..., 8:30, 10:40] = 1.0
    x[..., 20:44, 4:20] = -0.5
    return x


def test_range_bounds_are_reached():
    x = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    x[..., 4, 4] = 1.0  # four equal differences out of n = 2·9·8
    n = 2 * 9 * 8
    assert float(normalized_sparsity(x)) == pytest.approx(4 / (2 * n**0.5))
    ramp = torch.arange(9, dtype=torch.float64).view(1, 1, 1, 9).expand(1, 1, 9, 9)
    # a ramp: equal horizontal differences, zero vertical ones: half the differences
    assert float(normalized_sparsity(ramp + ramp.transpose(-1, -2))) == pytest.approx(1.0)


def test_invariant_to_contrast_and_offset_and_averaged_over_the_batch():
    x = _steps()
    value = normalized_sparsity(x)
    assert torch.allclose(normalized_sparsity(3.0 * x - 0.2), value)
    ramp = torch.linspace(-1, 1, 48, dtype=torch.float64).view(1, 1, 1, 48).expand_as(x)
    pair = torch.cat([x, ramp])
    expected = (value + normalized_sparsity(ramp)) / 2
    assert torch.allclose(normalized_sparsity(pair), expected)


def test_blur_raises_it_on_sharp_edges_so_minimising_it_sharpens():
    x = _steps()
    k = kfops.kernels.anisotropic_gaussian(9, 1.5, 1.5, 0.0)
    blurred = kfops.degrade(x, k, 1, "reflect")
    assert float(normalized_sparsity(blurred)) > float(normalized_sparsity(x)) + 0.05
    y = blurred.clone().requires_grad_(True)
    normalized_sparsity(y).backward()
    with torch.no_grad():  # a small gradient step lowers it
        assert float(normalized_sparsity(y - 1e-1 * y.grad)) < float(normalized_sparsity(y))


def test_gradient_is_exact_and_bad_shapes_are_refused():
    x = (_steps() + 0.01 * torch.randn(1, 1, 48, 48, dtype=torch.float64))[..., :12, :12]
    assert torch.autograd.gradcheck(normalized_sparsity, (x.clone().requires_grad_(True),))
    with pytest.raises(ValueError, match="B, C, H, W"):
        normalized_sparsity(torch.zeros(4, 4))


def test_kernel_sqrt_sparsity_orders_kernels_by_how_few_taps_carry_them():
    from kfops.kernels import gaussian
    from kfops.sparsity import kernel_sqrt_sparsity

    flat = torch.full((24, 24), 1 / 576, dtype=torch.float64)
    delta = torch.zeros(24, 24, dtype=torch.float64)
    delta[12, 12] = 1
    narrow, wide = (gaussian(24, s, torch.float64) for s in (1.0, 4.0))
    values = [float(kernel_sqrt_sparsity(k, eps=0.0)) for k in (delta, narrow, wide, flat)]
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(24.0)
    assert values == sorted(values)
    batch = torch.stack([delta, flat]).requires_grad_()
    out = kernel_sqrt_sparsity(batch)
    assert float(out.detach()) == pytest.approx((1 + 24) / 2, abs=0.05)  # eps lifts the zero taps
    out.backward()
    assert torch.isfinite(batch.grad).all()
