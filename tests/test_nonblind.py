"""TV-refined non-blind SR (kfops.nonblind): better than back-projection with the true
kernel on a natural crop, consistent with the LR image, deterministic, deadline-aware, and
its hand-written gradient step equal to the autograd one."""

from __future__ import annotations

import math
import time

import pytest
import torch

import kfops
from kfops.errors import ShapeError
from kfops.nonblind import charbonnier_tv, charbonnier_tv_grad, tv_refine


def _problem(kernel: torch.Tensor):
    hr = kfops.io.load_image("examples/butterfly.png").pixels[..., :128, :128]
    return hr, kfops.degrade(hr, kernel.float(), 4).clamp(0, 1)


def _mse(a, b):
    return float(((a - b)[..., 12:-12, 12:-12] ** 2).mean())


def _shake():
    return kfops.kernels.camera_shake(24, torch.Generator().manual_seed(3))


@pytest.mark.parametrize("make", [lambda: kfops.kernels.l_shape(24), _shake], ids=["L", "shake"])
def test_refinement_beats_the_damped_backprojection_with_the_true_kernel(make):
    k = make().float()
    hr, lr = _problem(k)
    bp = kfops.backproject(lr, k, 4, eps=1e-2)
    sr = tv_refine(lr, k, 4, iters=60)
    assert sr.shape == hr.shape and float(sr.min()) >= 0 and float(sr.max()) <= 1
    assert _mse(sr, hr) < 0.9 * _mse(bp, hr)
    # and it still explains the LR image at least as well as back-projection does
    res = lambda x: float((kfops.degrade(x, k, 4) - lr).pow(2).mean())  # noqa: E731
    assert res(sr) <= 1.05 * res(bp)


def test_zero_iterations_is_the_backprojection_and_runs_repeat_exactly():
    k = kfops.kernels.gaussian(12, 1.5).float()
    _, lr = _problem(k)
    assert torch.equal(tv_refine(lr, k, 4, iters=0), kfops.backproject(lr, k, 4, eps=1e-2))
    assert torch.equal(tv_refine(lr, k, 4, iters=5), tv_refine(lr, k, 4, iters=5))


def test_a_passed_deadline_returns_the_backprojection():
    k = kfops.kernels.gaussian(12, 1.5).float()
    _, lr = _problem(k)
    early = tv_refine(lr, k, 4, iters=50, deadline=time.monotonic() - 1)
    assert torch.equal(early, kfops.backproject(lr, k, 4, eps=1e-2))


def test_charbonnier_tv_counts_edges():
    flat = torch.zeros(1, 1, 8, 8)
    step = flat.clone()
    step[..., 4:] = 1
    assert float(charbonnier_tv(flat, 1e-2)) == pytest.approx(49 * 1e-2)
    # one vertical unit edge crossed by 7 rows of the 7×7 difference grid
    assert float(charbonnier_tv(step, 1e-2)) == pytest.approx(42 * 1e-2 + 7 * (1 + 1e-4) ** 0.5)


def test_bad_shape_is_refused():
    with pytest.raises(ShapeError):
        tv_refine(torch.rand(3, 8, 8), torch.ones(3, 3) / 9, 2)


@pytest.mark.parametrize("shape", [(1, 1, 9, 7), (2, 3, 6, 11)])
def test_tv_gradient_is_the_autograd_gradient(shape):
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    charbonnier_tv(x, 0.05).backward()
    torch.testing.assert_close(charbonnier_tv_grad(x.detach(), 0.05), x.grad)


def _tv_refine_autograd(lr, k, scale, weight, iters, step, smooth=1e-2):
    """The refinement written with autograd and a plain Adam: the oracle of tv_refine."""
    x = kfops.backproject(lr, k, scale, eps=1e-2).clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=step)
    n = lr.numel()
    for it in range(iters):
        opt.param_groups[0]["lr"] = step * 0.5 * (1 + math.cos(math.pi * it / iters))
        r = kfops.degrade(x, k, scale) - lr
        loss = (r * r).sum() / n + weight * charbonnier_tv(x, smooth) / n
        opt.zero_grad()
        loss.backward()
        opt.step()
    return x.detach().clamp(0, 1)


def test_refinement_matches_its_autograd_oracle_and_reports_progress():
    k = kfops.kernels.l_shape(24).float()
    _, lr = _problem(k)
    lr = lr[..., :16, :20]
    for step in (2e-3, 4e-3):
        calls: list[tuple[int, int]] = []
        sr = tv_refine(lr, k, 4, 3e-3, 25, step=step, progress=lambda *a, c=calls: c.append(a))
        oracle = _tv_refine_autograd(lr, k, 4, 3e-3, 25, step)
        torch.testing.assert_close(sr, oracle, atol=1e-5, rtol=0)
        assert calls == [(i, 25) for i in range(0, 26)]  # 0: before the back-projection
