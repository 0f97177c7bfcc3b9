"""Custom operators of kfops (C++/CUDA with a pure-PyTorch reference)."""

from .degrade import check_kernel_values, degrade, degrade_adjoint, degrade_kernel_grad
from .geometry import PADDINGS, lr_size
from .tv import tv_grad

__all__ = [
    "PADDINGS",
    "check_kernel_values",
    "degrade",
    "degrade_adjoint",
    "degrade_kernel_grad",
    "lr_size",
    "tv_grad",
]
