"""The fused degradation ops against the pure-PyTorch reference, adjointness, gradients,
custom-op registration, torch.compile, the alignment convention and error handling."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import kfops
from kfops import KernelError, ScaleError, ShapeError
from kfops.ops.geometry import lr_size
from kfops.ops.reference import degrade_adjoint_ref, degrade_kernel_grad_ref, degrade_ref

PADDINGS = ["reflect", "replicate", "circular", "zeros", "valid"]
needs_ext = pytest.mark.skipif(not kfops.HAS_EXT, reason="C++ extension not built")


def kernel_of(layout: str, k: int, b: int, c: int, gen, dtype=torch.float64, kw=None):
    kw = kw or k
    shape = {
        "shared": (k, kw),
        "channel": (c, k, kw),
        "chan1": (1, k, kw),
        "sample": (b, c, k, kw),
        "sample1": (b, 1, k, kw),
    }[layout]
    return torch.rand(shape, generator=gen, dtype=dtype) + 0.05


def configs():
    """(padding, s, H, W, K, layout) covering odd/even sizes, parities and layouts."""
    out = []
    for pad, s in itertools.product(PADDINGS, [1, 2, 3, 4]):
        for h, w, k, layout in [
            (12, 13, 4, "shared"),
            (11, 16, 5, "channel"),
            (17, 9, 3, "sample"),
            (16, 16, 8, "sample1"),
            (13, 15, 1, "chan1"),
            (9, 10, 12, "shared"),
        ]:
            out.append((pad, s, h, w, k, layout))
    return out


def _skip_if_empty(pad, s, h, w, k, kw=None):
    ho, wo = lr_size((h, w), (k, kw or k), s, pad)
    if ho < 1 or wo < 1:
        pytest.skip("no output sample for this configuration")


@needs_ext
@pytest.mark.parametrize("pad,s,h,w,k,layout", configs())
def test_matches_reference_and_is_adjoint(pad, s, h, w, k, layout, gen):
    _skip_if_empty(pad, s, h, w, k)
    x = torch.randn(2, 3, h, w, generator=gen, dtype=torch.float64)
    ker = kernel_of(layout, k, 2, 3, gen)
    y = kfops.degrade(x, ker, s, pad)
    torch.testing.assert_close(y, degrade_ref(x, ker, s, pad), rtol=1e-12, atol=1e-12)
    gy = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    xa = kfops.degrade_adjoint(gy, ker, s, pad, (h, w))
    torch.testing.assert_close(
        xa, degrade_adjoint_ref(gy, ker, s, pad, (h, w)), rtol=1e-12, atol=1e-12
    )
    gk = kfops.degrade_kernel_grad(x, gy, s, pad, ker.shape)
    torch.testing.assert_close(
        gk, degrade_kernel_grad_ref(x, gy, s, pad, ker.shape), rtol=1e-12, atol=1e-11
    )
    lhs = (y * gy).sum()
    rhs = (x * xa).sum()
    assert abs(float(lhs - rhs)) <= 1e-10 * float(x.norm() * gy.norm())


@needs_ext
@pytest.mark.parametrize("pad", PADDINGS)
@pytest.mark.parametrize("kh,kw", [(24, 24), (7, 10), (13, 13)])
def test_float32_matches_reference(pad, kh, kw, gen):
    x = torch.randn(1, 3, 61, 70, generator=gen)
    ker = torch.rand(kh, kw, generator=gen)
    ker /= ker.sum()
    y = kfops.degrade(x, ker, 4, pad)
    torch.testing.assert_close(y, degrade_ref(x, ker, 4, pad), rtol=1e-5, atol=1e-5)
    gy = torch.randn(y.shape, generator=gen)
    torch.testing.assert_close(
        kfops.degrade_adjoint(gy, ker, 4, pad, (61, 70)),
        degrade_adjoint_ref(gy, ker, 4, pad, (61, 70)),
        rtol=1e-5,
        atol=1e-5,
    )
    torch.testing.assert_close(
        kfops.degrade_kernel_grad(x, gy, 4, pad, ker.shape),
        degrade_kernel_grad_ref(x, gy, 4, pad, ker.shape),
        rtol=1e-4,
        atol=1e-3,
    )


@needs_ext
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-2), (torch.bfloat16, 1e-1)])
def test_reduced_precision_uses_shared_pointwise_math(dtype, tol, gen):
    x = torch.randn(1, 3, 20, 22, generator=gen)
    ker = torch.rand(3, 5, 6, generator=gen)
    xr, kr = x.to(dtype).double(), ker.to(dtype).double()  # what the op actually sees
    y = kfops.degrade(x.to(dtype), ker.to(dtype), 3, "reflect")
    assert y.dtype == dtype
    torch.testing.assert_close(y.double(), degrade_ref(xr, kr, 3, "reflect"), rtol=tol, atol=tol)
    gy = torch.randn(y.shape, generator=gen).to(dtype)
    xa = kfops.degrade_adjoint(gy, ker.to(dtype), 3, "circular", (20, 22))
    torch.testing.assert_close(
        xa.double(),
        degrade_adjoint_ref(gy.double(), kr, 3, "circular", (20, 22)),
        rtol=tol,
        atol=tol,
    )
    gk = kfops.degrade_kernel_grad(x.to(dtype), gy, 3, "zeros", ker.shape)
    torch.testing.assert_close(
        gk.double(),
        degrade_kernel_grad_ref(xr, gy.double(), 3, "zeros", ker.shape),
        rtol=tol,
        atol=tol * 10,
    )


GRAD_CASES = [
    (pad, s, h, w, k, layout)
    for pad in PADDINGS
    for (s, h, w, k, layout) in [
        (1, 6, 7, 3, "shared"),
        (2, 8, 7, 4, "channel"),
        (3, 9, 10, 3, "sample1"),
        (4, 9, 8, 5, "chan1"),
        (4, 12, 13, 6, "sample"),
    ]
]


@pytest.mark.parametrize("pad,s,h,w,k,layout", GRAD_CASES)
def test_gradcheck_image_and_kernel(pad, s, h, w, k, layout, gen):
    _skip_if_empty(pad, s, h, w, k)
    x = torch.randn(2, 2, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    ker = kernel_of(layout, k, 2, 2, gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: kfops.degrade(a, b, s, pad), (x, ker))


@needs_ext
@pytest.mark.parametrize("pad", PADDINGS)
def test_double_backward(pad, gen):
    x = torch.randn(1, 2, 9, 11, generator=gen, dtype=torch.float64, requires_grad=True)
    ker = kernel_of("channel", 4, 1, 2, gen).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda a, b: kfops.degrade(a, b, 2, pad), (x, ker))
    y = torch.randn(
        1,
        2,
        *lr_size((9, 11), (4, 4), 2, pad),
        generator=gen,
        dtype=torch.float64,
        requires_grad=True,
    )
    assert torch.autograd.gradcheck(
        lambda a, b: kfops.degrade_adjoint(a, b, 2, pad, (9, 11)), (y, ker)
    )
    gy = torch.randn(y.shape, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: kfops.degrade_kernel_grad(a, b, 2, pad, (2, 4, 4)), (x, gy)
    )


@needs_ext
@pytest.mark.parametrize("pad", ["reflect", "zeros", "valid"])
def test_opcheck(pad, gen):
    x = torch.randn(2, 3, 14, 15, generator=gen, dtype=torch.float64, requires_grad=True)
    ker = kernel_of("channel", 5, 2, 3, gen).requires_grad_()
    torch.library.opcheck(torch.ops.kfops.degrade.default, (x, ker, 3, pad))
    y = torch.ops.kfops.degrade(x.detach(), ker.detach(), 3, pad)
    yy = torch.randn(y.shape, generator=gen, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.kfops.degrade_adjoint.default, (yy, ker, 3, pad, [14, 15]))
    torch.library.opcheck(torch.ops.kfops.degrade_kernel_grad.default, (x, yy, 3, pad, [3, 5, 5]))


@needs_ext
def test_torch_compile_fullgraph(gen):
    x = torch.randn(1, 3, 32, 32, generator=gen, requires_grad=True)
    ker = torch.rand(8, 8, generator=gen, requires_grad=True)

    def loss(a, b):
        return (kfops.degrade(a, b, 4, "reflect", check_values=False) ** 2).sum()

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    val = compiled(x, ker)
    ga, gb = torch.autograd.grad(val, (x, ker))
    ref = loss(x, ker)
    ra, rb = torch.autograd.grad(ref, (x, ker))
    torch.testing.assert_close(val, ref)
    torch.testing.assert_close(ga, ra)
    torch.testing.assert_close(gb, rb)


def test_torch_func_transforms(gen):
    """grad, vjp, vmap and jacrev run (on the reference inside a transform: the generated
    autograd wrapper of register_autograd is refused there, pytorch/pytorch#170834) and
    agree with autograd and the fused ops outside it."""
    x = torch.rand(2, 3, 21, 22, generator=gen, dtype=torch.float64)
    k = kernel_of("shared", 6, 2, 3, gen)
    y, vjp = torch.func.vjp(lambda a: kfops.degrade(a, k, 3), x)
    v = torch.rand(y.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(y, kfops.degrade(x, k, 3))
    torch.testing.assert_close(vjp(v)[0], kfops.degrade_adjoint(v, k, 3, hr_size=(21, 22)))
    gk = torch.func.grad(lambda b: kfops.degrade(x, b, 3).square().sum())(k)
    kk = k.clone().requires_grad_()
    kfops.degrade(x, kk, 3).square().sum().backward()
    torch.testing.assert_close(gk, kk.grad)
    ks = torch.stack([kernel_of("shared", 6, 2, 3, gen) for _ in range(3)])
    torch.testing.assert_close(
        torch.func.vmap(lambda b: kfops.degrade(x, b, 3))(ks),
        torch.stack([kfops.degrade(x, b, 3) for b in ks]),
    )
    vs = torch.rand(4, *y.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(
        torch.func.vmap(lambda w: kfops.degrade_adjoint(w, k, 3, hr_size=(21, 22)))(vs),
        torch.stack([kfops.degrade_adjoint(w, k, 3, hr_size=(21, 22)) for w in vs]),
    )
    small = torch.rand(1, 1, 6, 6, generator=gen, dtype=torch.float64)
    jac = torch.func.jacrev(lambda a: kfops.degrade(a, k[:2, :2], 2, "circular"))(small)
    dense = torch.autograd.functional.jacobian(
        lambda a: kfops.degrade(a, k[:2, :2], 2, "circular"), small
    )
    torch.testing.assert_close(jac, dense)


# ----------------------------------------------------------------------------- alignment
@pytest.mark.parametrize("s", [2, 3, 4])
@pytest.mark.parametrize("pad", PADDINGS)
def test_box_kernel_is_avg_pool(s, pad, gen):
    x = torch.randn(2, 3, 6 * s, 5 * s, generator=gen, dtype=torch.float64)
    box = torch.full((s, s), 1.0 / (s * s), dtype=torch.float64)
    torch.testing.assert_close(kfops.degrade(x, box, s, pad), F.avg_pool2d(x, s))


def _blob(h, w, cy, cx, sigma, dtype=torch.float64):
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype), indexing="ij"
    )
    return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))[None, None]


def _centroid(img):
    img = img[0, 0]
    yy, xx = torch.meshgrid(
        torch.arange(img.shape[0], dtype=img.dtype),
        torch.arange(img.shape[1], dtype=img.dtype),
        indexing="ij",
    )
    m = img.sum()
    return float((img * yy).sum() / m), float((img * xx).sum() / m)


@pytest.mark.parametrize("s,k", [(4, 24), (4, 12), (2, 10), (3, 15), (3, 9)])
def test_symmetric_kernel_then_bicubic_has_no_shift(s, k):
    hr = _blob(96, 96, 47.3, 50.6, 6.0)
    ker = kfops.kernels.anisotropic_gaussian(k, 2.0, 1.2, 0.0)
    lr = kfops.degrade(hr, ker, s, "reflect")
    up = kfops.bicubic_upsample(lr, s)
    cy, cx = _centroid(hr)
    uy, ux = _centroid(up)
    assert abs(uy - cy) < 0.02 and abs(ux - cx) < 0.02
    # the LR centroid sits at the HR point s*i + (s-1)/2
    ly, lx = _centroid(lr)
    assert abs(s * ly + (s - 1) / 2 - cy) < 0.02 and abs(s * lx + (s - 1) / 2 - cx) < 0.02


@pytest.mark.parametrize("s,k", [(4, 5), (2, 3), (3, 4), (4, 23)])
@pytest.mark.parametrize("pad", ["reflect", "zeros", "valid"])
def test_parity_mismatch_equals_kernel_zero_padded_bottom_right(s, k, pad, gen):
    x = torch.randn(1, 2, 40, 44, generator=gen, dtype=torch.float64)
    ker = torch.rand(k, k, generator=gen, dtype=torch.float64)
    padded = F.pad(ker, (0, 1, 0, 1))
    y = kfops.degrade(x, ker, s, pad)
    y2 = kfops.degrade(x, padded, s, pad)
    if pad == "valid":  # the padded kernel needs one more input row/column: compare overlap
        y = y[..., : y2.shape[-2], : y2.shape[-1]]
        y2 = y2[..., : y.shape[-2], : y.shape[-1]]
    torch.testing.assert_close(y, y2)


def test_valid_is_a_crop_of_the_padded_output(gen):
    x = torch.randn(1, 1, 50, 47, generator=gen, dtype=torch.float64)
    ker = torch.rand(9, 9, generator=gen, dtype=torch.float64)
    full = kfops.degrade(x, ker, 3, "zeros")
    valid = kfops.degrade(x, ker, 3, "valid")
    o = (3 - 9) // 2
    i0 = -(o // 3)
    torch.testing.assert_close(
        valid, full[..., i0 : i0 + valid.shape[-2], i0 : i0 + valid.shape[-1]]
    )


def test_non_multiple_sizes_give_floor(gen):
    x = torch.randn(1, 3, 37, 42, generator=gen)
    assert kfops.degrade(x, torch.ones(4, 4) / 16, 4).shape == (1, 3, 9, 10)
    y = torch.randn(1, 3, 9, 10)
    assert kfops.degrade_adjoint(y, torch.ones(4, 4) / 16, 4, "reflect", (37, 42)).shape == (
        1,
        3,
        37,
        42,
    )
    assert kfops.degrade_adjoint(y, torch.ones(4, 4) / 16, 4).shape == (1, 3, 36, 40)


# ----------------------------------------------------------------------------- errors
def test_clear_errors():
    x = torch.rand(1, 3, 16, 16)
    k = torch.ones(5, 5) / 25
    with pytest.raises(KernelError, match="larger than the image"):
        kfops.degrade(x, torch.ones(20, 20), 2, "valid")
    for bad in (0, -2):
        with pytest.raises(ScaleError, match="positive integer"):
            kfops.degrade(x, k, bad)
    for bad in (2.0, 2.5, "2", True, None):
        with pytest.raises(ScaleError):
            kfops.degrade(x, k, bad)
    with pytest.raises(KernelError, match="NaN"):
        kfops.degrade(x, torch.full((5, 5), float("nan")), 2)
    with pytest.raises(KernelError, match="positive sum"):
        kfops.degrade(x, -k, 2)
    with pytest.raises(ValueError, match="dtype"):
        kfops.degrade(x, k.double(), 2)
    with pytest.raises(ValueError, match="device"):
        kfops.degrade(x, k.to("meta"), 2)
    with pytest.raises(ShapeError, match="4-D"):
        kfops.degrade(x[0], k, 2)
    with pytest.raises(ShapeError, match="smaller than the scale"):
        kfops.degrade(torch.rand(1, 1, 3, 3), k, 4)
    with pytest.raises(KernelError, match="channels"):
        kfops.degrade(x, torch.ones(2, 5, 5), 2)
    with pytest.raises(ValueError, match="padding"):
        kfops.degrade(x, k, 2, "mirror")
    with pytest.raises(ShapeError, match="does not match"):
        kfops.degrade_adjoint(torch.rand(1, 3, 5, 5), k, 2, "reflect", (16, 16))


@needs_ext
def test_cpp_checks_raise_instead_of_crashing():
    x = torch.rand(1, 3, 16, 16)
    k = torch.ones(5, 5) / 25
    with pytest.raises(RuntimeError, match="larger than the image"):
        torch.ops.kfops.degrade(x, torch.ones(20, 20), 2, "valid")
    with pytest.raises(RuntimeError, match="positive integer"):
        torch.ops.kfops.degrade(x, k, 0, "reflect")
    with pytest.raises(RuntimeError, match="4-D"):
        torch.ops.kfops.degrade(x[0], k, 2, "reflect")
    with pytest.raises(RuntimeError, match="dtype"):
        torch.ops.kfops.degrade(x, k.double(), 2, "reflect")
    with pytest.raises(RuntimeError, match="unknown padding"):
        torch.ops.kfops.degrade(x, k, 2, "mirror")
    with pytest.raises(RuntimeError, match="does not match"):
        torch.ops.kfops.degrade_adjoint(torch.rand(1, 3, 5, 5), k, 2, "reflect", [16, 16])
    with pytest.raises(RuntimeError):
        torch.ops.kfops.degrade(x.int(), k.int(), 2, "reflect")


def test_fallback_without_extension_warns_once_and_agrees():
    import subprocess
    import sys

    code = (
        "import warnings, torch\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    import kfops\n"
        "    x = torch.rand(1, 3, 20, 20, dtype=torch.float64)\n"
        "    k = torch.rand(6, 6, dtype=torch.float64)\n"
        "    y = kfops.degrade(x, k, 2); y2 = kfops.degrade(x, k, 2)\n"
        "    n = sum('pure-PyTorch reference' in str(m.message) for m in w)\n"
        "from kfops.ops.reference import degrade_ref\n"
        "assert not kfops.HAS_EXT\n"
        "assert torch.equal(y, degrade_ref(x, k, 2, 'reflect'))\n"
        "print(n)\n"
    )
    env = dict(__import__("os").environ, KFOPS_DISABLE_EXT="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
