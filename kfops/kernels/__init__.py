"""Blur-kernel utilities: validation (:mod:`.checks`), centring and alignment
(:mod:`.geometry`), resampling (:mod:`.resampling`), files (:mod:`.files`), generators
(:mod:`.generators`) and named sets (:mod:`.named`).

Conventions used throughout:

* A kernel is a 2-D real ``torch.Tensor`` of shape ``(Kh, Kw)`` (usually square ``(K, K)``),
  non-negative and summing to 1. Kernels created here are ``float64`` unless a ``dtype`` is given.
* Array coordinates are ``(row, col)``; pixel ``i`` has its centre at coordinate ``i``. The
  *array centre* of an axis of length ``K`` is ``(K - 1) / 2``.
* The centre of mass (COM) is ``(sum_i i * k[i, :], sum_j j * k[:, j]) / sum(k)`` in those
  coordinates.
* Where an ``x``/``y`` pair appears, ``x`` runs along columns and ``y`` along rows (downwards).

Every bad kernel input raises :class:`kfops.errors.KernelError` with a one-line message;
problems with an output path raise :class:`kfops.errors.OutputError`.
"""

from __future__ import annotations

from .checks import normalize, validate_kernel
from .files import load_kernel, load_kernel_stack, save_kernel
from .generators import (
    RESIZE_METHODS,
    anisotropic_gaussian,
    box,
    camera_shake,
    disk,
    empty_square,
    filled_square,
    gaussian,
    l_shape,
    linear_motion,
    resize_filter,
)
from .geometry import (
    align_kernel,
    alignment_offset,
    center_of_mass,
    crop_to,
    fit_to,
    pad_alike,
    pad_to,
    recenter,
    shift_kernel,
)
from .named import data_dir, kernel_from_spec, named_kernel_set
from .resampling import dilate_kernel, remove_floor, resize_kernel

__all__ = [
    "RESIZE_METHODS",
    "align_kernel",
    "alignment_offset",
    "anisotropic_gaussian",
    "box",
    "camera_shake",
    "center_of_mass",
    "crop_to",
    "data_dir",
    "disk",
    "dilate_kernel",
    "empty_square",
    "filled_square",
    "fit_to",
    "gaussian",
    "kernel_from_spec",
    "l_shape",
    "linear_motion",
    "load_kernel",
    "load_kernel_stack",
    "named_kernel_set",
    "normalize",
    "pad_alike",
    "pad_to",
    "recenter",
    "remove_floor",
    "resize_filter",
    "resize_kernel",
    "save_kernel",
    "shift_kernel",
    "validate_kernel",
]
