"""Kernel validation and the argument parsers shared by the kernel modules."""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Sequence

import torch

from kfops.errors import KernelError

Size = int | tuple[int, int]
PathLike = str | os.PathLike[str]


def validate_kernel(k: torch.Tensor, name: str = "kernel") -> torch.Tensor:
    """Check that ``k`` is a usable kernel and return it unchanged.

    Requires a 2-D real tensor ``(Kh, Kw)`` with at least one element, only finite values and a
    positive sum. Negative entries are allowed here (estimated kernels may have some).
    ``name`` is used as the subject of the error message.
    """
    if not isinstance(k, torch.Tensor):
        raise KernelError(f"{name} must be a torch.Tensor, got {type(k).__name__}")
    if k.dim() != 2:
        raise KernelError(f"{name} must be 2-D, got shape {tuple(k.shape)}")
    if k.numel() == 0:
        raise KernelError(f"{name} is empty, got shape {tuple(k.shape)}")
    if k.is_complex() or k.dtype == torch.bool:
        raise KernelError(f"{name} must be real-valued, got dtype {k.dtype}")
    if k.is_floating_point() and not bool(torch.isfinite(k).all()):
        raise KernelError(f"{name} has NaN or inf values")
    total = float(k.sum(dtype=torch.float64))
    if not bool((k != 0).any()):
        raise KernelError(f"{name} is all zeros")
    if not math.isfinite(total):
        raise KernelError(f"{name} sum overflows to {total}; its values are too large")
    if total <= 0:
        raise KernelError(f"{name} sums to {total:.6g}; it must have a positive sum")
    return k


def _as_float(k: torch.Tensor) -> torch.Tensor:
    return k if k.is_floating_point() else k.to(torch.float64)


def normalize(k: torch.Tensor) -> torch.Tensor:
    """Return ``k / k.sum()`` after :func:`validate_kernel` (integer input becomes float64)."""
    k = _as_float(validate_kernel(k))
    return k / k.sum()


def _pos_int(value: object, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        n = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise KernelError(f"{what} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise KernelError(f"{what} must be a positive integer, got {n}")
    return n


def _size2(size: object, what: str = "size") -> tuple[int, int]:
    """Parse ``size`` (int or ``(h, w)``) into a pair of positive ints."""
    if isinstance(size, Sequence) and not isinstance(size, str):
        if len(size) != 2:
            raise KernelError(f"{what} must be an int or a (height, width) pair, got {size!r}")
        return _pos_int(size[0], what), _pos_int(size[1], what)
    if isinstance(size, torch.Size):
        return _size2(tuple(size), what)
    n = _pos_int(size, what)
    return n, n


def _finite(value: object, what: str) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise KernelError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise KernelError(f"{what} must be finite, got {x}")
    return x
