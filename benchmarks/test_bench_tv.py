"""Final-step speed (the TV refinement of ``kfops.nonblind.tv_refine``, which dominates
``kf upscale`` on photo-sized images): the fused ``kfops::tv_grad`` op against the
pure-PyTorch reference and autograd of the Charbonnier TV on a 3×1024² image; and ten
refinement steps (after the back-projection, 256² LR ×4) with the hand-written gradient,
the fused op and the fused Adam step against the same loop written with autograd and a
plain Adam. Each alternative is checked against the fused result before it is timed."""

from __future__ import annotations

import math

import pytest
import torch

import kfops
from kfops.nonblind import charbonnier_tv, tv_refine
from kfops.ops import tv_grad
from kfops.ops.reference import tv_grad_ref


def _autograd_tv_grad(x: torch.Tensor, smooth: float) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    charbonnier_tv(x, smooth).backward()
    return x.grad


GRADS = {"fused": tv_grad, "reference": tv_grad_ref, "autograd": _autograd_tv_grad}


@pytest.mark.parametrize("method", list(GRADS))
def test_tv_gradient(benchmark, record_role, method):
    x = torch.rand(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    fn = GRADS[method]
    torch.testing.assert_close(fn(x, 1e-2), tv_grad(x, 1e-2), rtol=1e-4, atol=1e-4)
    record_role("TV gradient, 3×1024²", method, reference=method == "fused")
    benchmark.pedantic(lambda: fn(x, 1e-2), rounds=5, warmup_rounds=1)


def _autograd_refine(lr, k, start, iters, weight, step, smooth=1e-2):
    x = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=step)
    n = lr.numel()
    for it in range(iters):
        opt.param_groups[0]["lr"] = step * 0.5 * (1 + math.cos(math.pi * it / iters))
        r = kfops.degrade(x, k, 4, check_values=False) - lr
        loss = (r * r).sum() / n + weight * charbonnier_tv(x, smooth) / n
        opt.zero_grad()
        loss.backward()
        opt.step()
    return x.detach().clamp(0, 1)


WEIGHT, STEP = 1e-3, 4e-3  # the `cpu` preset's final step at ×4


@pytest.mark.parametrize("method", ["fused", "autograd"])
def test_tv_refinement_steps(benchmark, record_role, method, monkeypatch):
    hr = kfops.io.load_image("examples/butterfly.png").pixels
    hr = torch.nn.functional.interpolate(hr, size=(1024, 1024), mode="bilinear")
    k = kfops.kernels.l_shape(24).float()
    lr = kfops.degrade(hr, k, 4).clamp(0, 1)
    start = kfops.backproject(lr, k, 4, eps=1e-2)
    # time the steps only: the back-projection both start from is computed once, above
    monkeypatch.setattr(kfops.nonblind, "backproject", lambda *a, **kw: start.clone())
    # both loops get the same weight and peak step, so a change of tv_refine's defaults
    # cannot make them disagree
    fused = lambda: tv_refine(lr, k, 4, WEIGHT, 10, step=STEP)  # noqa: E731
    autograd = lambda: _autograd_refine(lr, k, start, 10, WEIGHT, STEP)  # noqa: E731
    fn = fused if method == "fused" else autograd
    torch.testing.assert_close(fn(), fused(), rtol=0, atol=1e-4)
    record_role("TV refinement, 10 steps, 256² LR ×4", method, reference=method == "fused")
    benchmark.pedantic(fn, rounds=3, warmup_rounds=1)
