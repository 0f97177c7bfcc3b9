"""kfops: KernelFusion blind super-resolution as reusable PyTorch operators.

Public API: the degradation ops (:func:`degrade`, :func:`degrade_adjoint`,
:func:`degrade_kernel_grad`), the linear operator :class:`Degradation`, non-blind
:func:`backproject` and its TV refinement :func:`tv_refine`, the patch-diffusion prior
:class:`PatchPrior` (Phase 1), the kernel model :class:`KernelINR`, the refinement
:class:`UNet` and :class:`Reconstructor` (Phase 2), and the modules :mod:`kfops.kernels`,
:mod:`kfops.consensus` (one kernel from several runs), :mod:`kfops.kernel_check` (a kernel
scored by how well it predicts held-out LR pixels), :mod:`kfops.io`, :mod:`kfops.jpeg` (a
JPEG's quantisation, which sets how much the final step smooths), :mod:`kfops.metrics`,
:mod:`kfops.presets`.
"""

from . import _ext, consensus, errors, io, jpeg, kernel_check, kernels, metrics, presets
from .degradation import (
    Degradation,
    GaussianNoise,
    backproject,
    bicubic_upsample,
    conjugate_gradient,
)
from .diffusion import DDPMSchedule, PatchPrior, PriorConfig
from .errors import ImageError, KernelError, KfopsError, OutputError, ScaleError, ShapeError
from .kernel_inr import KernelINR
from .nonblind import tv_refine
from .ops import degrade, degrade_adjoint, degrade_kernel_grad
from .reconstructor import ReconConfig, ReconResult, Reconstructor
from .unet import UNet

HAS_EXT = _ext.HAS_EXT

__all__ = [
    "DDPMSchedule",
    "Degradation",
    "GaussianNoise",
    "HAS_EXT",
    "ImageError",
    "KernelError",
    "KernelINR",
    "KfopsError",
    "OutputError",
    "PatchPrior",
    "PriorConfig",
    "ReconConfig",
    "ReconResult",
    "Reconstructor",
    "ScaleError",
    "ShapeError",
    "UNet",
    "backproject",
    "bicubic_upsample",
    "conjugate_gradient",
    "consensus",
    "degrade",
    "degrade_adjoint",
    "degrade_kernel_grad",
    "errors",
    "io",
    "jpeg",
    "kernel_check",
    "kernels",
    "metrics",
    "presets",
    "tv_refine",
]
__version__ = "0.1.0"
