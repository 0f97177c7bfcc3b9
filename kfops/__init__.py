"""kfops: KernelFusion blind super-resolution as reusable PyTorch operators."""

from . import _ext
from .errors import KernelError, KfopsError, ScaleError, ShapeError
from .ops import degrade, degrade_adjoint, degrade_kernel_grad

HAS_EXT = _ext.HAS_EXT

__all__ = [
    "HAS_EXT",
    "KernelError",
    "KfopsError",
    "ScaleError",
    "ShapeError",
    "degrade",
    "degrade_adjoint",
    "degrade_kernel_grad",
]
__version__ = "0.1.0"
