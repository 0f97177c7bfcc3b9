"""kfops.Degradation (deepinv-style operator) and back-projection."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import kfops
from kfops import Degradation, GaussianNoise, KernelError, ScaleError


def _op(gen, padding="reflect", channels=False, learnable=False):
    shape = (3, 7, 7) if channels else (7, 7)
    k = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.1
    return Degradation(k / k.sum(dim=(-2, -1), keepdim=True), 3, padding, learnable=learnable)


@pytest.mark.parametrize("padding", ["reflect", "replicate", "circular", "zeros", "valid"])
def test_adjointness_test_is_tiny(padding, gen):
    op = _op(gen, padding)
    u = torch.zeros(2, 3, 30, 31, dtype=torch.float64)
    assert abs(float(op.adjointness_test(u, generator=gen))) < 1e-10 * u.numel()


def test_filter_is_buffer_or_parameter(gen):
    op = _op(gen)
    assert "filter" in dict(op.named_buffers()) and not list(op.parameters())
    op2 = _op(gen, learnable=True)
    assert isinstance(op2.filter, nn.Parameter)
    x = torch.rand(1, 3, 24, 24, dtype=torch.float64)
    op2(x).square().sum().backward()
    assert op2.filter.grad is not None and op2.filter.grad.abs().sum() > 0
    op3 = Degradation(nn.Parameter(torch.ones(4, 4) / 16), 2)
    assert isinstance(op3.filter, nn.Parameter)


def test_composites_and_update(gen):
    op = _op(gen, channels=True)
    x = torch.rand(1, 3, 27, 30, generator=gen, dtype=torch.float64)
    y = op.A(x)
    assert y.shape == (1, 3, 9, 10)
    assert op.A_adjoint(y).shape == (1, 3, 27, 30)
    torch.testing.assert_close(op.A_adjoint_A(x), op.A_adjoint(op.A(x), hr_size=(27, 30)))
    torch.testing.assert_close(op.A_A_adjoint(y), op.A(op.A_adjoint(y)))
    op.update_parameters(filter=torch.ones(2, 2, dtype=torch.float64) / 4, factor=2)
    torch.testing.assert_close(
        op(x[..., :26, :30]), torch.nn.functional.avg_pool2d(x[..., :26, :30], 2)
    )
    with pytest.raises(KernelError):
        op.update_parameters(filter=torch.full((3, 3), float("nan")))
    with pytest.raises(ScaleError):
        op.update_parameters(factor=0)


def test_forward_is_the_noisy_measurement(gen):
    op = _op(gen)
    x = torch.rand(2, 3, 24, 27, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(op(x), op.A(x))  # noise-free by default
    op.set_noise_model(GaussianNoise(0.05, generator=torch.Generator().manual_seed(3)))
    n = op(x) - op.A(x)
    assert abs(float(n.std()) - 0.05) < 0.01 and abs(float(n.mean())) < 0.01
    again = Degradation(
        op.filter, 3, noise_model=GaussianNoise(0.05, torch.Generator().manual_seed(3))
    )
    torch.testing.assert_close(again(x), op.A(x) + n)  # same seed, same draws
    seen = {}

    def noise_model(y, **kwargs):  # any deepinv-style callable
        seen.update(kwargs)
        return y + 1

    op.set_noise_model(noise_model)
    torch.testing.assert_close(op(x, sigma=0.3), op.A(x) + 1)
    assert seen == {"sigma": 0.3}


def test_update_reaches_the_noise_model(gen):
    op = Degradation(torch.ones(3, 3) / 9, 3, noise_model=GaussianNoise(0.01))
    op.update(filter=torch.ones(2, 2) / 4, factor=2, sigma=0.2)
    assert op.factor == 2 and op.filter.shape == (2, 2) and op.noise_model.sigma == 0.2
    with pytest.raises(ValueError):
        GaussianNoise(-1.0)


def test_A_vjp_is_the_jacobian_transpose(gen):
    op = _op(gen, padding="valid")
    x = torch.rand(1, 3, 25, 28, generator=gen, dtype=torch.float64, requires_grad=True)
    y = op.A(x)
    v = torch.rand(y.shape, generator=gen, dtype=torch.float64)
    (expected,) = torch.autograd.grad(y, x, v)
    torch.testing.assert_close(op.A_vjp(x, v), expected)


def test_A_dagger_is_a_right_inverse(gen):
    op = _op(gen)
    y = torch.rand(2, 3, 10, 11, generator=gen, dtype=torch.float64)
    x = op.A_dagger(y, max_iter=200, tol=1e-12)
    assert x.shape == (2, 3, 30, 33)
    torch.testing.assert_close(op.A(x), y, rtol=1e-6, atol=1e-6)
    # minimum norm: x lies in the range of A^T, so it has no null-space component
    x_other = x + (torch.randn_like(x) - op.A_dagger(op.A(torch.randn_like(x)), max_iter=200))
    assert x.norm() <= x_other.norm() + 1e-9


def test_prox_l2_solves_its_normal_equations(gen):
    op = _op(gen)
    z = torch.rand(1, 3, 21, 24, generator=gen, dtype=torch.float64)
    y = torch.rand(1, 3, 7, 8, generator=gen, dtype=torch.float64)
    x = op.prox_l2(z, y, gamma=0.5, max_iter=200, tol=1e-12)
    grad = op.A_adjoint(op.A(x) - y, hr_size=(21, 24)) + (x - z) / 0.5
    assert grad.abs().max() < 1e-8


def test_compute_sqnorm_matches_dense_operator(gen):
    op = Degradation(torch.rand(4, 4, generator=gen, dtype=torch.float64) + 0.1, 2, "circular")
    x0 = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    dense = torch.stack(
        [op.A(e.reshape(1, 1, 8, 8)).flatten() for e in torch.eye(64, dtype=torch.float64)], dim=1
    )
    expected = torch.linalg.matrix_norm(dense, ord=2) ** 2
    got = op.compute_sqnorm(x0, max_iter=500, tol=1e-10, generator=gen)
    assert abs(float(got - expected)) < 1e-6 * float(expected)


def test_backproject_beats_bicubic_and_is_consistent(gen):
    img = kfops.io.load_image("examples/butterfly.png").pixels[..., :128, :128].double()
    k = kfops.kernels.l_shape(24)
    lr = kfops.degrade(img, k, 4)
    bic = kfops.bicubic_upsample(lr, 4).clamp(0, 1)
    sr = kfops.backproject(lr, k, 4, max_iter=30, eps=1e-4)
    assert sr.shape == img.shape

    def mse(a, b):
        return float(((a - b)[..., 12:-12, 12:-12] ** 2).mean())

    assert mse(sr, img) < 0.7 * mse(bic, img)
    assert float((kfops.degrade(sr, k, 4) - lr).abs().mean()) < 0.25 * float(
        (kfops.degrade(bic, k, 4) - lr).abs().mean()
    )
    assert kfops.backproject(lr[0], k, 4).shape == img.shape[1:]
