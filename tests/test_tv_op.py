"""The fused Charbonnier-TV gradient op ``kfops::tv_grad`` against its pure-PyTorch
reference and against autograd of the TV itself; opcheck; the fallback without the
extension."""

from __future__ import annotations

import pytest
import torch

import kfops
from kfops import _ext
from kfops.nonblind import charbonnier_tv
from kfops.ops import tv_grad
from kfops.ops.reference import tv_grad_ref

needs_ext = pytest.mark.skipif(not kfops.HAS_EXT, reason="C++ extension not built")

SHAPES = [
    (1, 1, 1, 1),  # no difference at all: zero gradient
    (1, 1, 1, 7),  # a single row: no term either
    (1, 1, 6, 1),
    (1, 1, 2, 2),
    (2, 3, 7, 9),  # several planes in one block of rows
    (1, 1, 3001, 64),  # rows split over threads: a block starts inside the plane
    (1, 3, 1001, 64),
]


def _rand(shape, dtype=torch.float64, seed=0):
    return torch.rand(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_the_reference_in_float64(shape):
    x = _rand(shape)
    torch.testing.assert_close(tv_grad(x, 0.05), tv_grad_ref(x, 0.05), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 3, 40, 33)], ids=str)
def test_is_the_gradient_of_the_tv(shape):
    x = _rand(shape, seed=1).requires_grad_(True)
    charbonnier_tv(x, 0.03).backward()
    torch.testing.assert_close(tv_grad(x.detach(), 0.03), x.grad, rtol=1e-10, atol=1e-12)


def test_float32_and_non_contiguous_input():
    x = _rand((1, 3, 20, 17), torch.float32, seed=2)
    ref = tv_grad_ref(x.double(), 1e-2)
    torch.testing.assert_close(tv_grad(x, 1e-2).double(), ref, rtol=1e-4, atol=1e-4)
    xt = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, other strides
    assert not xt.is_contiguous()
    torch.testing.assert_close(tv_grad(xt, 1e-2), tv_grad(x, 1e-2))


def test_flat_image_has_zero_gradient_and_a_step_pulls_its_edge_together():
    flat = torch.full((1, 1, 6, 6), 0.3, dtype=torch.float64)
    assert float(tv_grad(flat, 1e-2).abs().max()) == 0.0
    step = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    step[..., 3:] = 1
    g = tv_grad(step, 1e-2)
    # descending the gradient lowers the bright side and raises the dark side of the edge
    assert float(g[0, 0, 2, 3]) > 0 and float(g[0, 0, 2, 2]) < 0


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(dtype):
    torch.library.opcheck(torch.ops.kfops.tv_grad.default, (_rand((2, 3, 9, 8), dtype), 0.02))


def test_bad_arguments_are_refused():
    with pytest.raises(kfops.errors.ShapeError):
        tv_grad(torch.rand(3, 8, 8))
    with pytest.raises(ValueError):
        tv_grad(torch.rand(1, 1, 8, 8), 0.0)
    with pytest.raises(TypeError):
        tv_grad(torch.ones(1, 1, 8, 8, dtype=torch.int64))


def test_without_the_extension_the_reference_runs(monkeypatch):
    monkeypatch.setattr(_ext, "HAS_EXT", False)
    monkeypatch.setattr(_ext, "warn_fallback", lambda: None)
    x = _rand((1, 2, 5, 6))
    assert torch.equal(tv_grad(x, 0.05), tv_grad_ref(x, 0.05))


def test_vmap_over_a_batch_of_images():
    xs = _rand((3, 1, 2, 9, 8))
    torch.testing.assert_close(
        torch.func.vmap(lambda x: tv_grad(x, 0.01))(xs), torch.stack([tv_grad(x, 0.01) for x in xs])
    )
