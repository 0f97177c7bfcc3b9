"""TV-refined non-blind SR (kfops.nonblind): better than back-projection with the true
kernel on a natural crop, consistent with the LR image, deterministic, deadline-aware."""

from __future__ import annotations

import time

import pytest
import torch

import kfops
from kfops.errors import ShapeError
from kfops.nonblind import charbonnier_tv, tv_refine


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
