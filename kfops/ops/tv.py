"""The op ``kfops::tv_grad``: the gradient of the Charbonnier total variation

    R(x) = Σ_planes Σ_{i<H−1, j<W−1} √(dx² + dy² + δ²),  dx, dy forward differences,

in one pass over the image (C++ and CUDA, per-pixel formula in ``csrc/common/tv_math.h``),
instead of the dozen full-size temporaries that autograd or the reference need. It is the
hot step of :func:`kfops.nonblind.tv_refine` at photo sizes. The op is itself a gradient
and has no autograd formula; ``register_fake`` lets ``torch.compile`` trace it. Without
the compiled extension (or for dtypes the backend lacks), and inside ``torch.func``
transforms, the pure-PyTorch reference runs.
"""

from __future__ import annotations

import torch

from .. import _ext
from ..errors import ShapeError
from .degrade import _in_functorch_transform
from .reference import tv_grad_ref

__all__ = ["tv_grad"]


def _has_op() -> bool:
    return _ext.HAS_EXT and hasattr(torch.ops.kfops, "tv_grad")


def tv_grad(x: torch.Tensor, smooth: float = 1e-2) -> torch.Tensor:
    """∂R/∂x for x (B, C, H, W) floating point, δ = ``smooth`` > 0; same shape as x."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(f"x must be a 4-D tensor (B, C, H, W), got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"x must be floating point, got {x.dtype}")
    if not smooth > 0:
        raise ValueError(f"smooth must be > 0, got {smooth}")
    supported = x.dtype in (torch.float32, torch.float64) and x.device.type in ("cpu", "cuda")
    if supported and _has_op() and not _in_functorch_transform():
        return torch.ops.kfops.tv_grad(x, float(smooth))
    if not _ext.HAS_EXT:
        _ext.warn_fallback()
    return tv_grad_ref(x, float(smooth))


if _has_op():

    @torch.library.register_fake("kfops::tv_grad")
    def _(x, smooth):
        return torch.empty_like(x)
