"""kfops: KernelFusion blind super-resolution as reusable PyTorch operators.

Public API: the degradation ops (:func:`degrade`, :func:`degrade_adjoint`,
:func:`degrade_kernel_grad`), the linear operator :class:`Degradation`, non-blind
:func:`backproject`, and the modules :mod:`kfops.kernels` and :mod:`kfops.io`.
"""

from . import _ext, errors, io, kernels, metrics
from .degradation import Degradation, backproject, bicubic_upsample, conjugate_gradient
from .errors import ImageError, KernelError, KfopsError, OutputError, ScaleError, ShapeError
from .ops import degrade, degrade_adjoint, degrade_kernel_grad

HAS_EXT = _ext.HAS_EXT

__all__ = [
    "HAS_EXT",
    "Degradation",
    "ImageError",
    "KernelError",
    "KfopsError",
    "OutputError",
    "ScaleError",
    "ShapeError",
    "backproject",
    "bicubic_upsample",
    "conjugate_gradient",
    "degrade",
    "degrade_adjoint",
    "degrade_kernel_grad",
    "errors",
    "io",
    "kernels",
    "metrics",
]
__version__ = "0.1.0"
