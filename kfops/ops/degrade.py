"""The degradation ops ``kfops::degrade``, ``degrade_adjoint``, ``degrade_kernel_grad``.

Python side of the custom ops: argument checking with clear errors, ``register_fake``
(shape inference, so ``torch.compile`` can trace them) and ``register_autograd`` (for the
image *and* the kernel; every backward is made of the same three ops, so double backward
works). Without the compiled extension the pure-PyTorch reference is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import _ext
from ..errors import KernelError, ScaleError, ShapeError
from .geometry import PADDINGS, lr_size
from .reference import degrade_adjoint_ref, degrade_kernel_grad_ref, degrade_ref

__all__ = ["degrade", "degrade_adjoint", "degrade_kernel_grad"]


# ----------------------------------------------------------------------------- checks
def _check_scale(s) -> int:
    if isinstance(s, bool) or not isinstance(s, int):
        if isinstance(s, float) and s.is_integer():
            raise ScaleError(f"scale factor must be an integer, got the float {s!r}")
        raise ScaleError(f"scale factor must be a positive integer, got {s!r}")
    if s < 1:
        raise ScaleError(f"scale factor must be a positive integer, got {s}")
    return s


def _check_padding(padding: str) -> str:
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; expected one of {', '.join(PADDINGS)}")
    return padding


def _check_image(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ShapeError(f"{name} must be a 4-D tensor (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def _check_kernel_shape(k_shape: Sequence[int], b: int, c: int) -> None:
    d = len(k_shape)
    if d < 2 or d > 4:
        raise KernelError(
            f"kernel must have shape (K, K), (C, K, K) or (B, C, K, K), got {tuple(k_shape)}"
        )
    if k_shape[-1] < 1 or k_shape[-2] < 1:
        raise KernelError(f"kernel must not be empty, got shape {tuple(k_shape)}")
    if d >= 3 and k_shape[-3] not in (1, c):
        raise KernelError(f"kernel has {k_shape[-3]} channels but the image has {c}")
    if d == 4 and k_shape[0] not in (1, b):
        raise KernelError(f"kernel batch {k_shape[0]} does not match the image batch {b}")


def _check_pair(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{na} is on device {a.device} but {nb} is on device {b.device}")
    if a.dtype != b.dtype:
        raise ValueError(f"{na} has dtype {a.dtype} but {nb} has dtype {b.dtype}")


def check_kernel_values(k: torch.Tensor) -> None:
    """Raise :class:`KernelError` if k has NaN/inf values or a sum that is not positive
    (not checked while compiling or inside ``torch.func`` transforms, where a value cannot
    steer Python control flow)."""
    if torch.compiler.is_compiling() or _in_functorch_transform():
        return
    kd = k.detach()
    if not bool(torch.isfinite(kd).all()):
        raise KernelError("kernel has NaN or inf values")
    sums = kd.sum(dim=(-2, -1))
    if not bool((sums > 0).all()):
        raise KernelError(
            f"kernel sums to {float(sums.min()):.4g}; a blur kernel must have a positive sum"
        )


def _check_output_size(hw, khw, s: int, padding: str) -> tuple[int, int]:
    ho, wo = lr_size(hw, khw, s, padding)
    if ho < 1 or wo < 1:
        if padding == "valid":
            raise KernelError(
                f"kernel ({khw[0]}x{khw[1]}) is larger than the image ({hw[0]}x{hw[1]}) "
                "for padding 'valid'"
            )
        raise ShapeError(f"image ({hw[0]}x{hw[1]}) is smaller than the scale factor {s}")
    return ho, wo


_functorch_level = getattr(torch._C._functorch, "maybe_current_level", None)


def _in_functorch_transform() -> bool:
    """True inside ``torch.func`` transforms (grad, vjp, jacrev, vmap, ...). Autograd
    formulas registered with ``torch.library.register_autograd`` fail there in torch
    <= 2.13 (pytorch/pytorch#170834), so the ops then run their pure-PyTorch reference,
    which every transform supports."""
    return _functorch_level is not None and _functorch_level() is not None


def _use_ext(t: torch.Tensor) -> bool:
    if _in_functorch_transform():
        return False
    if _ext.HAS_EXT:
        return True
    _ext.warn_fallback()
    return False


# ----------------------------------------------------------------------------- public API
def degrade(
    x: torch.Tensor,
    k: torch.Tensor,
    s: int,
    padding: str = "reflect",
    check_values: bool = True,
) -> torch.Tensor:
    """LR = (x ⊛ k)↓s, computed only on the stride-s grid.

    Args:
        x: (B, C, H, W) floating-point image (any range).
        k: (K, K) shared, (C|1, K, K) per channel or (B|1, C|1, K, K) per sample kernel,
            same dtype and device as x. Kh != Kw is allowed; K may be odd or even.
        s: integer scale factor >= 1. H and W need not be multiples of s.
        padding: ``reflect`` (default, mirror without repeating the edge), ``replicate``,
            ``circular``, ``zeros`` or ``valid``.
        check_values: raise :class:`KernelError` for a kernel with NaN/inf or a sum <= 0.

    Returns:
        (B, C, H // s, W // s) for the padded modes; for ``valid``, the samples of the same
        grid whose taps lie inside the image.

    Convention (correlation, bicubic-aligned as in DIV2KRK): LR pixel i reads the HR taps
    ``s*i + u + floor((s - K)/2)``, u = 0..K-1. For a kernel whose centre of mass is at its
    array centre (K-1)/2 and K ≡ s (mod 2), LR pixel i sits at the HR point s*i + (s-1)/2:
    a box kernel of size s gives exactly ``avg_pool2d(x, s)`` and a symmetric kernel
    followed by bicubic upsampling introduces no shift. When K and s differ in parity the
    result equals that of the kernel zero-padded by one row at the bottom and one column
    at the right (size K+1), i.e. the kernel's centre is read half a pixel up-left of the
    LR pixel centre. To make test data for blind SR, whose estimates sit on the aligned
    grid, move such a kernel there first with :func:`kfops.kernels.align_kernel`.
    """
    _check_image(x, "x")
    s = _check_scale(s)
    _check_padding(padding)
    if not isinstance(k, torch.Tensor):
        raise KernelError(f"kernel must be a torch.Tensor, got {type(k).__name__}")
    _check_kernel_shape(tuple(k.shape), x.shape[0], x.shape[1])
    _check_pair(x, k, "x", "kernel")
    _check_output_size(x.shape[-2:], k.shape[-2:], s, padding)
    if check_values:
        check_kernel_values(k)
    if _use_ext(x):
        return torch.ops.kfops.degrade(x, k, s, padding)
    return degrade_ref(x, k, s, padding)


def degrade_adjoint(
    y: torch.Tensor,
    k: torch.Tensor,
    s: int,
    padding: str = "reflect",
    hr_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """x = Aᵀy, the exact transpose of :func:`degrade` (padded borders folded back).

    Args:
        y: (B, C, Ho, Wo) LR tensor. k, s, padding: as in :func:`degrade`.
        hr_size: (H, W) of the HR image; default ``(s*Ho, s*Wo)`` (padded modes only).
    Returns: (B, C, H, W).
    """
    _check_image(y, "y")
    s = _check_scale(s)
    _check_padding(padding)
    _check_kernel_shape(tuple(k.shape), y.shape[0], y.shape[1])
    _check_pair(y, k, "y", "kernel")
    if hr_size is None:
        if padding == "valid":
            raise ValueError("hr_size is required for padding 'valid'")
        hr_size = (s * y.shape[2], s * y.shape[3])
    hr_size = [int(hr_size[0]), int(hr_size[1])]
    ho, wo = _check_output_size(hr_size, k.shape[-2:], s, padding)
    if (ho, wo) != tuple(y.shape[-2:]):
        raise ShapeError(
            f"LR size {tuple(y.shape[-2:])} does not match HR size {tuple(hr_size)} at scale "
            f"{s} (expected LR {(ho, wo)})"
        )
    if _use_ext(y):
        return torch.ops.kfops.degrade_adjoint(y, k, s, padding, hr_size)
    return degrade_adjoint_ref(y, k, s, padding, hr_size)


def degrade_kernel_grad(
    x: torch.Tensor, gy: torch.Tensor, s: int, padding: str, kshape: Sequence[int]
) -> torch.Tensor:
    """∂L/∂k of L(degrade(x, k)) given gy = ∂L/∂y; shape ``kshape`` (the kernel's shape)."""
    _check_image(x, "x")
    _check_image(gy, "grad_y")
    s = _check_scale(s)
    _check_padding(padding)
    _check_pair(x, gy, "x", "grad_y")
    kshape = [int(v) for v in kshape]
    _check_kernel_shape(kshape, x.shape[0], x.shape[1])
    if _use_ext(x):
        return torch.ops.kfops.degrade_kernel_grad(x, gy, s, padding, kshape)
    return degrade_kernel_grad_ref(x, gy, s, padding, kshape)


# ----------------------------------------------------------------------------- registration
def _register() -> None:
    lib = "kfops::"

    @torch.library.register_fake(lib + "degrade")
    def _(x, k, s, padding):
        ho, wo = lr_size(x.shape[-2:], k.shape[-2:], s, padding)
        torch._check(ho >= 1 and wo >= 1)
        return x.new_empty(x.shape[0], x.shape[1], ho, wo)

    @torch.library.register_fake(lib + "degrade_adjoint")
    def _(y, k, s, padding, hr_size):
        return y.new_empty(y.shape[0], y.shape[1], hr_size[0], hr_size[1])

    @torch.library.register_fake(lib + "degrade_kernel_grad")
    def _(x, gy, s, padding, kshape):
        return x.new_empty(kshape)

    ops = torch.ops.kfops

    # degrade(x, k): linear in x and in k.
    def setup_degrade(ctx, inputs, output):
        x, k, s, padding = inputs
        ctx.s, ctx.padding = s, padding
        ctx.hr_size = [x.shape[2], x.shape[3]]
        ctx.kshape = list(k.shape)
        ctx.save_for_backward(
            x if ctx.needs_input_grad[1] else None, k if ctx.needs_input_grad[0] else None
        )

    def backward_degrade(ctx, gy):
        x, k = ctx.saved_tensors
        gx = gk = None
        if ctx.needs_input_grad[0]:
            gx = ops.degrade_adjoint(gy, k, ctx.s, ctx.padding, ctx.hr_size)
        if ctx.needs_input_grad[1]:
            gk = ops.degrade_kernel_grad(x, gy, ctx.s, ctx.padding, ctx.kshape)
        return gx, gk, None, None

    torch.library.register_autograd(lib + "degrade", backward_degrade, setup_context=setup_degrade)

    # degrade_adjoint(y, k): <gx, A(k)^T y> = <A(k) gx, y>.
    def setup_adjoint(ctx, inputs, output):
        y, k, s, padding, hr_size = inputs
        ctx.s, ctx.padding = s, padding
        ctx.kshape = list(k.shape)
        ctx.save_for_backward(
            y if ctx.needs_input_grad[1] else None, k if ctx.needs_input_grad[0] else None
        )

    def backward_adjoint(ctx, gx):
        y, k = ctx.saved_tensors
        gy = gk = None
        if ctx.needs_input_grad[0]:
            gy = ops.degrade(gx, k, ctx.s, ctx.padding)
        if ctx.needs_input_grad[1]:
            gk = ops.degrade_kernel_grad(gx, y, ctx.s, ctx.padding, ctx.kshape)
        return gy, gk, None, None, None

    torch.library.register_autograd(
        lib + "degrade_adjoint", backward_adjoint, setup_context=setup_adjoint
    )

    # degrade_kernel_grad(x, gy) = KG: <G, KG(x, gy)> = <gy, A(G) x> = <A(G)^T gy, x>.
    def setup_kgrad(ctx, inputs, output):
        x, gy, s, padding, kshape = inputs
        ctx.s, ctx.padding = s, padding
        ctx.hr_size = [x.shape[2], x.shape[3]]
        ctx.save_for_backward(
            x if ctx.needs_input_grad[1] else None, gy if ctx.needs_input_grad[0] else None
        )

    def backward_kgrad(ctx, gk):
        x, gy = ctx.saved_tensors
        gx = ggy = None
        if ctx.needs_input_grad[0]:
            gx = ops.degrade_adjoint(gy, gk, ctx.s, ctx.padding, ctx.hr_size)
        if ctx.needs_input_grad[1]:
            ggy = ops.degrade(x, gk, ctx.s, ctx.padding)
        return gx, ggy, None, None, None

    torch.library.register_autograd(
        lib + "degrade_kernel_grad", backward_kgrad, setup_context=setup_kgrad
    )


if _ext.HAS_EXT:
    _register()
