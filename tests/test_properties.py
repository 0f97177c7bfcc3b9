"""Property tests of the degradation ops: random shapes, scales, paddings and kernels keep
the exact adjoint relation and agree with the reference. The image is a contiguous view
into a NaN-filled buffer, so a read before or after it poisons the result; reads at wrong
places inside it show as mismatches with the reference."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kfops
from kfops.ops.geometry import lr_size
from kfops.ops.reference import degrade_ref

PADDINGS = ["reflect", "replicate", "circular", "zeros", "valid"]


@st.composite
def problems(draw):
    s = draw(st.integers(1, 8))
    h = draw(st.integers(s, 40))
    w = draw(st.integers(s, 40))
    kh = draw(st.integers(1, 26))
    kw = draw(st.integers(1, 26))
    pad = draw(st.sampled_from(PADDINGS))
    b, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    layout = draw(st.sampled_from(["shared", "channel", "sample"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return s, h, w, kh, kw, pad, b, c, layout, seed


@settings(max_examples=150, deadline=None)
@given(problems())
def test_adjointness_and_reference_on_random_problems(p):
    s, h, w, kh, kw, pad, b, c, layout, seed = p
    ho, wo = lr_size((h, w), (kh, kw), s, pad)
    if ho < 1 or wo < 1:
        with pytest.raises(kfops.KfopsError):
            kfops.degrade(torch.zeros(b, c, h, w), torch.ones(kh, kw), s, pad)
        return
    g = torch.Generator().manual_seed(seed)
    shape = {"shared": (kh, kw), "channel": (c, kh, kw), "sample": (b, 1, kh, kw)}[layout]
    k = torch.rand(shape, generator=g, dtype=torch.float64) + 0.01
    n, margin = b * c * h * w, 64
    buf = torch.full((n + 2 * margin,), float("nan"), dtype=torch.float64)
    buf[margin : margin + n] = torch.randn(n, generator=g, dtype=torch.float64)
    x = buf[margin : margin + n].view(b, c, h, w)
    assert x.is_contiguous()
    y = kfops.degrade(x, k, s, pad)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, degrade_ref(x.clone(), k, s, pad), rtol=1e-10, atol=1e-10)
    v = torch.randn(y.shape, generator=g, dtype=torch.float64)
    xt = kfops.degrade_adjoint(v, k, s, pad, (h, w))
    assert xt.shape == (b, c, h, w) and torch.isfinite(xt).all()
    lhs, rhs = float((y * v).sum()), float((x * xt).sum())
    assert abs(lhs - rhs) <= 1e-10 * float(x.norm() * v.norm())
    gk = kfops.degrade_kernel_grad(x, v, s, pad, k.shape)
    assert gk.shape == k.shape and torch.isfinite(gk).all()
