"""Blur-kernel utilities: validation, file I/O, centring, resampling and generators.

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

import math
import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from kfops.errors import KernelError, OutputError
from kfops.io import atomic_write

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

Size = int | tuple[int, int]
PathLike = str | os.PathLike[str]

_MAT_NAMES = ("kernel", "k", "f")
_STACK_NAMES = ("kernels", "kernel", "k", "f")
_COM_TOL = 1e-11  # COM accuracy (pixels, times the largest side) targeted by the centring loops
_MAX_ITER = 12


# --------------------------------------------------------------------------- validation


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


# --------------------------------------------------------------------------- geometry


def center_of_mass(k: torch.Tensor) -> tuple[float, float]:
    """Centre of mass ``(row, col)`` of a ``(Kh, Kw)`` kernel, in array coordinates."""
    k = validate_kernel(k).to(torch.float64)
    total = k.sum()
    rows = torch.arange(k.shape[0], dtype=torch.float64, device=k.device)
    cols = torch.arange(k.shape[1], dtype=torch.float64, device=k.device)
    cy = (k.sum(dim=1) * rows).sum() / total
    cx = (k.sum(dim=0) * cols).sum() / total
    return float(cy), float(cx)


def _int_shift(x: torch.Tensor, n: int, out_len: int, dim: int) -> torch.Tensor:
    """``out[i] = x[i - n]`` along ``dim`` for ``0 <= i < out_len``; zero where out of range."""
    length = x.shape[dim]
    shape = list(x.shape)
    shape[dim] = out_len
    out = x.new_zeros(shape)
    lo, hi = max(0, n), min(out_len, length + n)
    if hi > lo:
        out.narrow(dim, lo, hi - lo).copy_(x.narrow(dim, lo - n, hi - lo))
    return out


def _shift_axis(x: torch.Tensor, t: float, out_len: int, dim: int) -> torch.Tensor:
    """Translate by ``t`` pixels along ``dim`` with linear interpolation, zero outside.

    With ``t = n + f`` (``n = floor(t)``), ``out[i] = (1 - f) x[i - n] + f x[i - n - 1]``: each
    input pixel splits its mass between two output pixels, so mass and first moment are exact.
    """
    n = math.floor(t)
    f = t - n
    a = _int_shift(x, n, out_len, dim)
    if f == 0.0:
        return a
    return a * (1.0 - f) + _int_shift(x, n + 1, out_len, dim) * f


def _translate(k: torch.Tensor, ty: float, tx: float, shape: tuple[int, int]) -> torch.Tensor:
    return _shift_axis(_shift_axis(k, ty, shape[0], 0), tx, shape[1], 1)


def shift_kernel(k: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Shift a ``(Kh, Kw)`` kernel by ``(dy, dx)`` pixels (rows, cols), keeping its shape.

    Bilinear interpolation with zeros outside the array; the COM moves by exactly ``(dy, dx)``
    and the sum is unchanged as long as no mass is pushed out of the array. In that case the
    result is rescaled to the input's sum (removing rounding only). If mass does leave the
    array it is *not* renormalised: the result then sums to less than the input, so callers can
    see the loss (pad first with :func:`pad_to`, or use :func:`recenter`, or :func:`normalize`).
    Raises :class:`KernelError` if all the mass leaves the array.
    """
    k = _as_float(validate_kernel(k))
    dy, dx = _finite(dy, "dy"), _finite(dx, "dx")
    out = _translate(k, dy, dx, (k.shape[0], k.shape[1]))
    before = float(k.abs().sum())
    kept = float(out.abs().sum())
    if kept == 0.0:
        raise KernelError(f"shift by ({dy:g}, {dx:g}) moves the whole kernel outside its array")
    if abs(before - kept) <= 1e-12 * before:
        out = out * (k.sum() / out.sum())
    return out


def _root_1d(fn: Callable[[float], float], o0: float, e0: float) -> float:
    """Zero of ``fn`` (COM error along one axis, decreasing in the offset) near ``o0``.

    Brackets a sign change by stepping in the direction of the error, then uses Brent's method.
    Falls back to a plain fixed-point step if no bracket can be found.
    """
    from scipy.optimize import brentq

    direction = 1.0 if e0 > 0 else -1.0
    a, ea = o0, e0
    step = max(abs(e0), 0.25)
    for _ in range(64):
        b = a + direction * step
        try:
            eb = fn(b)
        except KernelError:  # the window ran out of mass before the sign changed
            break
        if eb == 0.0:
            return b
        if (eb > 0) != (ea > 0):
            lo, hi = (a, b) if a < b else (b, a)
            try:
                return float(brentq(fn, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps))
            except (KernelError, RuntimeError):
                break
        a, ea = b, eb
        step *= 1.5
    return o0 + e0


def _place_com(
    compute: Callable[[float, float], torch.Tensor],
    start: tuple[float, float],
    target: tuple[float, float],
    what: str,
) -> torch.Tensor:
    """Find offsets ``(oy, ox)`` such that ``compute(oy, ox)`` has its COM at ``target``.

    ``compute`` moves the COM by about the offset, so if nothing is clipped at the border the
    first evaluation is already exact. Otherwise the two offsets are solved alternately with a
    bracketed 1-D root finder (the COM of the clipped window is continuous in the offset).
    Returns the result with the smallest COM error found, normalised to sum 1.
    """

    def errors(oy: float, ox: float) -> tuple[torch.Tensor, float, float]:
        out = compute(oy, ox)
        if not bool((out > 0).any()) or float(out.sum()) <= 0:
            raise KernelError(f"{what}: no kernel mass is left inside the output array")
        cy, cx = center_of_mass(out)
        return out, target[0] - cy, target[1] - cx

    oy, ox = start
    out, ey, ex = errors(oy, ox)
    best, best_err, best_off = out, max(abs(ey), abs(ex)), (oy, ox)
    tol = _COM_TOL * max(out.shape)
    for _ in range(_MAX_ITER):
        if best_err <= tol:
            break
        if abs(ey) > tol:
            oy = _root_1d(lambda o, ox=ox: errors(o, ox)[1], oy, ey)
            _, ey, ex = errors(oy, ox)
        if abs(ex) > tol:
            ox = _root_1d(lambda o, oy=oy: errors(oy, o)[2], ox, ex)
        out, ey, ex = errors(oy, ox)
        err = max(abs(ey), abs(ex))
        if err < best_err:
            best, best_err, best_off = out, err, (oy, ox)
    if best_err > tol:  # strongly coupled axes (heavy clipping): polish with a 2-D solver
        from scipy.optimize import root

        def residual(o: np.ndarray) -> list[float]:
            try:
                _, ry, rx = errors(float(o[0]), float(o[1]))
            except KernelError:
                return [1e6, 1e6]
            return [ry, rx]

        sol = root(residual, np.array(best_off), method="hybr", options={"xtol": 1e-14})
        try:
            out, ey, ex = errors(float(sol.x[0]), float(sol.x[1]))
        except KernelError:
            pass
        else:
            if max(abs(ey), abs(ex)) < best_err:
                best = out
    return best / best.sum()


def recenter(k: torch.Tensor, size: Size | None = None) -> torch.Tensor:
    """Translate a kernel so its COM lies on the array centre ``((H-1)/2, (W-1)/2)``.

    The output has shape ``size`` (int or ``(H, W)``; default: the input shape). The kernel is
    translated into the output window by an integer offset (zero filled, no wrap-around) plus a
    fractional bilinear shift (as :func:`shift_kernel`), in one resampling. When nothing falls
    outside the window this is exact: the COM lands on the centre up to rounding. Otherwise the
    clipped mass is dropped and the translation re-solved so that the COM of what remains is
    centred (root finding; the COM of the window is continuous in the translation). The result
    sums to 1; computed in float64 and returned in the input's floating dtype. For float64 the
    COM ends within ``1e-11 * max(H, W)`` px of the centre (the tests check ``1e-9``).
    Raises :class:`KernelError` if no mass can be kept inside the window.
    """
    k = validate_kernel(k)
    shape = (k.shape[0], k.shape[1]) if size is None else _size2(size)
    return _move_com(k, shape, ((shape[0] - 1) / 2, (shape[1] - 1) / 2), "recenter")


def _move_com(
    k: torch.Tensor, shape: tuple[int, int], target: tuple[float, float], what: str
) -> torch.Tensor:
    """``k`` translated into a ``shape`` window with its COM on ``target`` (see recenter)."""
    k64 = k.to(torch.float64)
    cy, cx = center_of_mass(k64)
    out = _place_com(
        lambda ty, tx: _translate(k64, ty, tx, shape),
        (target[0] - cy, target[1] - cx),
        target,
        what,
    )
    return out.to(_as_float(k).dtype)


def alignment_offset(k: torch.Tensor, scale: int) -> tuple[float, float]:
    """(dy, dx): the kernel's centre of mass minus the position where ``degrade(x, k,
    scale)`` is bicubic-aligned (:func:`kfops.kernel_inr.target_center`), in HR pixels."""
    from kfops.kernel_inr import target_center

    k = validate_kernel(k)
    s = _pos_int(scale, "scale")
    cy, cx = center_of_mass(k)
    return cy - target_center(k.shape[0], s), cx - target_center(k.shape[1], s)


def align_kernel(k: torch.Tensor, scale: int, tol: float = 1e-6) -> torch.Tensor:
    """Translate a ``(Kh, Kw)`` kernel so that ``degrade(x, k, scale)`` is bicubic-aligned.

    The COM goes to :func:`kfops.kernel_inr.target_center` on each axis: the array centre
    where the side has the parity of ``scale``, half a pixel towards the bottom-right
    otherwise; that is also where Phase 2 places its estimate. A kernel elsewhere shifts the
    LR image against the HR grid by a fraction of a pixel, and since no blind method can
    tell a shift of the kernel from a shift of the image, synthetic test data for blind SR
    should be made with aligned kernels. Same shape and dtype, sum
    1; the translation is linear interpolation as in :func:`recenter` (a half-pixel move
    averages neighbouring taps). A kernel whose COM is within ``tol`` pixels of the target
    is returned normalised but otherwise unchanged.
    """
    k = validate_kernel(k)
    dy, dx = alignment_offset(k, scale)
    if max(abs(dy), abs(dx)) <= tol:
        return normalize(k)
    cy, cx = center_of_mass(k)
    return _move_com(k, (k.shape[0], k.shape[1]), (cy - dy, cx - dx), "align_kernel")


def _fit_offset(k_len: int, s_len: int) -> int:
    """Integer offset ``n`` (``out[i] = k[i - n]``) of a centred pad or crop."""
    return (s_len - k_len) // 2 if s_len >= k_len else -((k_len - s_len) // 2)


def fit_to(k: torch.Tensor, size: Size, normalize: bool = True) -> torch.Tensor:
    """Centred crop and/or zero-pad of a kernel to ``size`` (int or ``(H, W)``), per axis.

    Integer offsets only: padding puts ``(S - K) // 2`` zeros before and the rest after;
    cropping drops ``(K - S) // 2`` pixels at the start and the rest at the end, so cropping and
    padding back restores positions. When ``K`` and ``S`` differ in parity the array centre
    moves by half a pixel relative to the content (use :func:`recenter` for exact centring).
    With ``normalize`` the result is rescaled to sum 1.
    """
    k = _as_float(validate_kernel(k))
    sh, sw = _size2(size)
    out = _int_shift(k, _fit_offset(k.shape[0], sh), sh, 0)
    out = _int_shift(out, _fit_offset(k.shape[1], sw), sw, 1)
    if normalize:
        out = validate_kernel(out, "cropped kernel")
        out = out / out.sum()
    return out


def pad_to(k: torch.Tensor, size: Size) -> torch.Tensor:
    """Centred zero-padding of ``(Kh, Kw)`` to ``size`` (each side >= the kernel's); sum kept."""
    sh, sw = _size2(size)
    validate_kernel(k)
    if sh < k.shape[0] or sw < k.shape[1]:
        raise KernelError(
            f"cannot pad a kernel of shape {tuple(k.shape)} to {(sh, sw)}; use crop_to or fit_to"
        )
    return fit_to(k, (sh, sw), normalize=False)


def pad_alike(kernels: list[torch.Tensor]) -> list[torch.Tensor]:
    """The ``(Kh, Kw)`` kernels, each zero-padded (centred, :func:`pad_to`) to the largest
    height and width among them, so that they can be compared tap by tap; unchanged when
    they already share a shape."""
    if len({tuple(k.shape) for k in kernels}) <= 1:
        return list(kernels)
    size = (max(k.shape[0] for k in kernels), max(k.shape[1] for k in kernels))
    return [pad_to(k, size) for k in kernels]


def crop_to(k: torch.Tensor, size: Size, normalize: bool = True) -> torch.Tensor:
    """Centred crop of ``(Kh, Kw)`` to ``size`` (each side <= the kernel's), renormalised."""
    sh, sw = _size2(size)
    validate_kernel(k)
    if sh > k.shape[0] or sw > k.shape[1]:
        raise KernelError(
            f"cannot crop a kernel of shape {tuple(k.shape)} to {(sh, sw)}; use pad_to or fit_to"
        )
    return fit_to(k, (sh, sw), normalize=normalize)


# --------------------------------------------------------------------------- resampling


def _tent_cdf(u: torch.Tensor) -> torch.Tensor:
    """Integral of the unit tent ``max(0, 1 - |t|)`` from ``-inf`` to ``u``."""
    u = u.clamp(-1.0, 1.0)
    return torch.where(u < 0, 0.5 * (u + 1.0) ** 2, 1.0 - 0.5 * (1.0 - u) ** 2)


def _resample_matrix(k_len: int, s_len: int, offset: float, device: torch.device) -> torch.Tensor:
    """``(s_len, k_len)`` weights: mass of old pixel ``i`` falling in new pixel ``I``.

    Old pixel ``i`` is a unit-mass tent centred at ``i + 0.5`` (edge coordinates, old pixels
    span ``[i, i + 1)``); new pixel ``I`` spans ``[(I - offset) / s, (I + 1 - offset) / s)`` in
    old edge coordinates, ``s = s_len / k_len``.
    """
    scale = s_len / k_len
    edges = (torch.arange(s_len + 1, dtype=torch.float64, device=device) - offset) / scale
    centres = torch.arange(k_len, dtype=torch.float64, device=device) + 0.5
    cdf = _tent_cdf(edges[:, None] - centres[None, :])
    return cdf[1:] - cdf[:-1]


def resize_kernel(k: torch.Tensor, size: Size, center: bool = False) -> torch.Tensor:
    """Resample a ``(Kh, Kw)`` kernel to ``size`` (int or ``(H, W)``) as a continuous density.

    Method: the kernel is reconstructed as a continuous density by bilinear (tent)
    interpolation, i.e. each pixel's mass is spread as a separable tent one pixel wide on each
    side of its centre, which integrates exactly to the pixel's value. The old array
    ``[0, Kh] x [0, Kw]`` is mapped onto the new one ``[0, H] x [0, W]`` (scale ``H/Kh``,
    ``W/Kw``) and the density is integrated exactly over each new pixel's footprint. This works
    for down- and up-scaling alike and is area (mass) preserving. Per axis the second moment
    becomes about ``var_new = s**2 * (var_old + 1/6) + 1/12`` (``s`` = new/old size; 1/6 from
    the tent, 1/12 from the new pixels' width). Negatives are then clipped and the result
    renormalised to sum 1 (tent tails beyond the old array's edge are dropped).

    The COM is kept at the same relative position: ``c_new + 0.5 = (c_old + 0.5) * H / Kh``
    (per axis), to within ``1e-11 * max(H, W)`` px, by sub-pixel offsetting the reconstruction
    before integrating (no second interpolation). With ``center=True`` the COM is instead
    placed on the new array centre. A size equal to the input's returns ``normalize(k)`` (or
    :func:`recenter` with ``center=True``) without resampling.
    """
    k = _as_float(validate_kernel(k))
    sh, sw = _size2(size)
    kh, kw = k.shape
    if (sh, sw) == (kh, kw):
        return recenter(k) if center else normalize(k).clone()
    cy, cx = center_of_mass(k)
    if center:
        target = ((sh - 1) / 2, (sw - 1) / 2)
    else:
        target = ((cy + 0.5) * sh / kh - 0.5, (cx + 0.5) * sw / kw - 0.5)
    k64 = k.to(torch.float64)

    def compute(oy: float, ox: float) -> torch.Tensor:
        wy = _resample_matrix(kh, sh, oy, k.device)
        wx = _resample_matrix(kw, sw, ox, k.device)
        return (wy @ k64 @ wx.T).clamp_min(0.0)

    start = (target[0] - ((cy + 0.5) * sh / kh - 0.5), target[1] - ((cx + 0.5) * sw / kw - 0.5))
    return _place_com(compute, start, target, "resize_kernel").to(k.dtype)


def dilate_kernel(k: torch.Tensor, factor: float) -> torch.Tensor:
    """``k`` (K, K) made ``factor``× wider (or narrower) about its centre of mass, its shape
    kept: its RMS radius is multiplied by ``factor`` (to about 1%). The kernel is resampled
    as a continuous density (:func:`resize_kernel`) from a grid 8× its size, the scale per
    axis chosen so that the second moment, tent widening included, comes out at
    ``factor``² times the old one; then cut to K + 2·⌈(factor − 1)·K/2⌉ taps (K when
    narrower: the array centre, hence the alignment, is unchanged) and its centre of mass
    moved back where it was. Sums to 1; ``factor`` = 1 returns the kernel normalised."""
    k = _as_float(validate_kernel(k))
    factor = _finite(factor, "factor")
    if factor <= 0:
        raise KernelError(f"factor must be > 0, got {factor}")
    if factor == 1:
        return normalize(k).clone()
    kh, kw = k.shape
    grow = max(0, math.ceil((factor - 1) * max(kh, kw) / 2))
    k64 = k.to(torch.float64) / k.sum()
    size = []
    for dim, n in ((0, kh), (1, kw)):
        marginal = k64.sum(1 - dim)
        pos = torch.arange(n, dtype=torch.float64, device=k.device)
        var = float((marginal * (pos - (marginal * pos).sum()) ** 2).sum())
        # resize_kernel: var_new = s² (var + 1/6) + 1/12; want factor² · var
        scale = math.sqrt(max(factor**2 * var - 1 / 12, 1e-6) / (var + 1 / 6))
        big = 8 * n + n % 2  # even padding on both sides
        # at least one tap (two on an even grid): a kernel shrunk to almost nothing
        size.append((big, max(big + 2 * round((scale - 1) * big / 2), 2 - big % 2)))
    big = pad_to(k64, (size[0][0], size[1][0]))
    out = resize_kernel(big, (size[0][1], size[1][1]))
    out = fit_to(out, (kh + 2 * grow, kw + 2 * grow))
    (y0, x0), (y1, x1) = center_of_mass(k64), center_of_mass(out)
    return shift_kernel(out, y0 + grow - y1, x0 + grow - x1).to(k.dtype)


def remove_floor(k: torch.Tensor) -> torch.Tensor:
    """``k`` (K, K) less a constant pedestal, renormalised: the median q of its outermost
    ring of taps is subtracted from every tap, negative results set to 0, and the rest
    scaled to sum 1. A support that holds the blur has about nothing on its border, so a
    level there is diffuse mass that no blur of this size has (an estimated kernel's
    floor), not blur. Returns ``k`` unchanged where q ≤ 0 (a resampling filter keeps its
    negative lobes) or where nothing would be left."""
    k = _as_float(validate_kernel(k))
    if min(k.shape) < 3:
        return k
    ring = torch.cat((k[0], k[-1], k[1:-1, 0], k[1:-1, -1]))
    floor = float(ring.median())
    if not floor > 0:
        return k
    out = (k - floor).clamp_min(0)
    total = float(out.sum())
    return out / total if total > 0 else k


# --------------------------------------------------------------------------- file I/O


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        mode = img.mode
        if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
            return np.asarray(img).astype(np.float64)
        if mode in ("LA", "La"):
            return np.asarray(img.getchannel("L")).astype(np.float64)
        rgb = np.asarray(img.convert("RGB")).astype(np.float64)
    # ITU-R BT.601 luma weights, the same as PIL's "L" conversion, without 8-bit rounding.
    return rgb @ np.array([0.299, 0.587, 0.114])


def _is_hdf5_mat(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(128)
        fh.seek(512)
        sig = fh.read(8)
    return head.startswith(b"MATLAB 7.3") or sig == b"\x89HDF\r\n\x1a\n"


def _import_h5py(path: Path) -> ModuleType:
    try:
        import h5py
    except ImportError:
        raise KernelError(f"{path} is a MATLAB v7.3 (HDF5) file; install h5py to read it") from None
    return h5py


def _numeric(a: object) -> bool:
    return (
        isinstance(a, np.ndarray)
        and a.size > 0
        and (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_)
        and not np.issubdtype(a.dtype, np.complexfloating)
    )


def _read_mat_v5(path: Path) -> dict[str, np.ndarray]:
    import scipy.io

    data = scipy.io.loadmat(str(path))
    return {name: val for name, val in data.items() if not name.startswith("__")}


def _h5_vars(path: Path) -> list[tuple[str, object, str]]:
    """Top-level variables of a v7.3 file as ``(name, value, matlab_class)``.

    Numeric values are returned in MATLAB orientation (HDF5 stores them transposed); cell
    arrays are returned as lists of arrays in MATLAB linear (column-major) order.
    """
    h5py = _import_h5py(path)
    out: list[tuple[str, object, str]] = []
    with h5py.File(path, "r") as f:
        for name in f:
            if name.startswith("#") or name.startswith("__"):
                continue
            node = f[name]
            if not isinstance(node, h5py.Dataset):
                continue  # structs, objects
            cls = node.attrs.get("MATLAB_class", b"")
            cls = cls.decode() if isinstance(cls, bytes) else str(cls)
            if node.attrs.get("MATLAB_empty", 0):
                continue
            if cls == "cell":
                refs = node[()]
                # HDF5 holds the cell array transposed: C order here = MATLAB column-major order.
                items = [np.asarray(f[r][()]).T for r in refs.ravel()]
                out.append((name, items, cls))
            elif cls not in ("char", "struct", "function_handle") and node.dtype.kind in "biuf":
                out.append((name, np.asarray(node[()]).T, cls))
    return out


def _mat_vars(path: Path) -> list[tuple[str, object]]:
    """Variables of a ``.mat`` file in file order; cells become lists of arrays."""
    if _is_hdf5_mat(path):
        return [(name, val) for name, val, _ in _h5_vars(path)]
    items: list[tuple[str, object]] = []
    for name, val in _read_mat_v5(path).items():
        if isinstance(val, np.ndarray) and val.dtype == object:
            items.append((name, [np.asarray(v) for v in val.ravel(order="F")]))
        else:
            items.append((name, val))
    return items


def _pick_2d(variables: list[tuple[str, object]], path: Path) -> np.ndarray:
    arrays = {n: v for n, v in variables if _numeric(v)}
    for name in _MAT_NAMES:
        if name in arrays:
            if arrays[name].ndim != 2:
                raise KernelError(
                    f"variable '{name}' in {path} has shape {arrays[name].shape}; "
                    "a kernel must be 2-D (use load_kernel_stack for stacks)"
                )
            return arrays[name]
    for val in arrays.values():
        if val.ndim == 2 and val.size > 1:
            return val
    for _, val in variables:
        if isinstance(val, list) and len(val) == 1 and _numeric(val[0]) and val[0].ndim == 2:
            return val[0]
    raise KernelError(
        f"no 2-D numeric variable in {path} (variables: {', '.join(n for n, _ in variables)}); "
        "use load_kernel_stack for cell arrays or stacks"
    )


def _check_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise KernelError(f"kernel file not found: {p}")
    if not p.is_file():
        raise KernelError(f"kernel path is not a file: {p}")
    return p


def _to_kernel(arr: object, path: Path, what: str = "kernel") -> torch.Tensor:
    if not _numeric(arr):
        raise KernelError(f"{what} in {path} is not a real numeric array")
    assert isinstance(arr, np.ndarray)
    if arr.ndim != 2:
        raise KernelError(
            f"{what} in {path} must be 2-D, got shape {arr.shape} "
            "(use load_kernel_stack for stacks)"
        )
    t = torch.from_numpy(np.array(arr, dtype=np.float64))
    return normalize(validate_kernel(t, f"{what} in {path}"))


def _image_extensions() -> set[str]:
    from PIL import Image

    return {ext.lower() for ext in Image.registered_extensions()}


def load_kernel(path: PathLike) -> torch.Tensor:
    """Load one kernel as a float64 ``(Kh, Kw)`` tensor normalised to sum 1.

    Formats by extension: ``.npy`` (a 2-D array); ``.mat`` (MATLAB v4/v5 via scipy, v7.3/HDF5
    via h5py, returned in MATLAB orientation): the variable ``kernel``, ``k`` or ``f`` if
    present, else the first 2-D numeric variable with more than one element, else a one-element
    cell; any image format Pillow reads (``.png``, ``.jpg``, ...; grayscale, 16-bit supported,
    colour converted to BT.601 luminance, alpha ignored). Values are not clipped, only
    normalised. Raises :class:`KernelError` naming the path for any problem.
    """
    p = _check_file(path)
    ext = p.suffix.lower()
    try:
        if ext == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif ext == ".mat":
            arr = _pick_2d(_mat_vars(p), p)
        elif ext in _image_extensions():
            arr = _read_image(p)
        else:
            raise KernelError(
                f"unknown kernel file extension '{p.suffix}' for {p}; use .npy, .mat or an image"
            )
    except KernelError:
        raise
    except Exception as exc:  # any reader failure means a bad kernel file
        raise KernelError(f"cannot read kernel file {p}: {exc}".splitlines()[0]) from exc
    return _to_kernel(arr, p)


def load_kernel_stack(path: PathLike) -> list[torch.Tensor]:
    """Load several kernels from one file, each float64 ``(Kh_i, Kw_i)`` normalised to sum 1.

    ``.mat``: a cell array (elements in MATLAB column-major order) or a 3-D numeric array
    ``(Kh, Kw, N)`` in MATLAB orientation, split along its last axis; the variable ``kernels``,
    ``kernel``, ``k`` or ``f`` is preferred, else the first cell/3-D variable, else a 2-D one.
    ``.npy``: ``(N, Kh, Kw)`` or a single 2-D array. Other formats give a one-element list via
    :func:`load_kernel`.
    """
    p = _check_file(path)
    ext = p.suffix.lower()
    if ext not in (".mat", ".npy"):
        return [load_kernel(p)]
    try:
        if ext == ".npy":
            arr = np.load(p, allow_pickle=False)
            if _numeric(arr) and arr.ndim == 3:
                items: list[object] = list(arr)
            else:
                items = [arr]
        else:
            variables = _mat_vars(p)

            def stack_like(v: object) -> bool:
                return isinstance(v, list) or (_numeric(v) and v.ndim == 3)  # type: ignore[union-attr]

            named = [v for n, v in variables if n in _STACK_NAMES]
            chosen = next((v for v in named if stack_like(v)), None)
            if chosen is None:
                chosen = next((v for _, v in variables if stack_like(v)), None)
            if chosen is None:
                items = [_pick_2d(variables, p)]
            elif isinstance(chosen, list):
                items = list(chosen)
            else:
                assert isinstance(chosen, np.ndarray)
                items = [chosen[:, :, i] for i in range(chosen.shape[2])]
    except KernelError:
        raise
    except Exception as exc:  # any reader failure means a bad kernel file
        raise KernelError(f"cannot read kernel file {p}: {exc}".splitlines()[0]) from exc
    if not items:
        raise KernelError(f"no kernels found in {p}")
    return [_to_kernel(a, p, f"kernel {i + 1}") for i, a in enumerate(items)]


def save_kernel(k: torch.Tensor, path: PathLike, magnify: int = 1) -> None:
    """Write a ``(Kh, Kw)`` kernel atomically (temp file in the same folder, then rename).

    ``.npy``: the values as float32, unscaled. ``.png``: 8-bit grayscale of
    ``clip(k / k.max(), 0, 1) * 255`` (rounded), each pixel repeated ``magnify`` times along
    both axes (nearest neighbour); the absolute scale is lost (``load_kernel`` renormalises).
    Bad kernels raise :class:`KernelError`; a missing folder, a folder as target, an unknown
    extension or a write failure raise :class:`OutputError`.
    """
    k = validate_kernel(k)
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in (".npy", ".png"):
        raise OutputError(f"unknown kernel file extension '{p.suffix}' for {p}; use .npy or .png")
    try:
        mag = _pos_int(magnify, "magnify")
    except KernelError as exc:
        raise OutputError(str(exc)) from None
    arr = k.detach().to("cpu", torch.float64).numpy()
    if ext == ".npy":
        data = arr.astype(np.float32)
        atomic_write(p, lambda fh: np.save(fh, data, allow_pickle=False))
        return
    from PIL import Image

    img = np.round(np.clip(arr / arr.max(), 0.0, 1.0) * 255.0).astype(np.uint8)
    if mag > 1:
        img = np.repeat(np.repeat(img, mag, axis=0), mag, axis=1)
    atomic_write(p, lambda fh: Image.fromarray(img).save(fh, format="PNG"))


# --------------------------------------------------------------------------- generators


def _grid(
    shape: tuple[int, int], center: tuple[float, float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates ``(y, x)`` (rows, cols) relative to ``center`` (array coordinates
    ``(row, col)``; None = the array centre)."""
    cy, cx = ((shape[0] - 1) / 2, (shape[1] - 1) / 2) if center is None else center
    y = torch.arange(shape[0], dtype=torch.float64) - cy
    x = torch.arange(shape[1], dtype=torch.float64) - cx
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return yy, xx


def anisotropic_gaussian(
    size: Size,
    sigma_x: float,
    sigma_y: float,
    theta: float = 0.0,
    dtype: torch.dtype = torch.float64,
    center: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Anisotropic Gaussian sampled at pixel centres, centred on the array centre (or at
    array coordinates ``center`` = ``(row, col)``), sum 1.

    ``sigma_x`` is the std along the principal axis at angle ``theta`` (radians) from the +x
    (column) axis towards the +y (row) axis, ``sigma_y`` the std perpendicular to it. Rows grow
    downwards, so a positive ``theta`` looks clockwise on screen. Shape ``size`` (int or
    ``(H, W)``); values are truncated at the array border and renormalised.
    """
    shape = _size2(size)
    sx, sy = _finite(sigma_x, "sigma_x"), _finite(sigma_y, "sigma_y")
    th = _finite(theta, "theta")
    if sx <= 0 or sy <= 0:
        raise KernelError(f"Gaussian sigmas must be positive, got ({sx:g}, {sy:g})")
    yy, xx = _grid(shape, center)
    c, s = math.cos(th), math.sin(th)
    u = c * xx + s * yy  # coordinate along the principal axis
    v = -s * xx + c * yy
    k = torch.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    k = validate_kernel(k, "Gaussian kernel (sigma too small for the grid?)")
    return (k / k.sum()).to(dtype)


def gaussian(
    size: Size,
    sigma: float,
    dtype: torch.dtype = torch.float64,
    center: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Isotropic Gaussian of std ``sigma`` px, centred on the array centre (or at array
    coordinates ``center`` = ``(row, col)``), sum 1."""
    return anisotropic_gaussian(size, sigma, sigma, 0.0, dtype, center)


def box(size: Size, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform kernel of shape ``size`` (int or ``(H, W)``), sum 1."""
    h, w = _size2(size)
    return torch.full((h, w), 1.0 / (h * w), dtype=dtype)


def _cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel (support |x| < 2; a = -0.5 in PIL and Matlab)."""
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


# method -> (support radius in LR pixels, profile of the LR-pixel coordinate)
_RESIZE_PROFILES: dict[str, tuple[float, Callable[[torch.Tensor], torch.Tensor]]] = {
    "area": (0.5, lambda x: (x.abs() < 0.5).to(x.dtype)),
    "bilinear": (1.0, lambda x: (1 - x.abs()).clamp_min(0)),
    "bicubic": (2.0, _cubic),
}
RESIZE_METHODS = tuple(_RESIZE_PROFILES)


def resize_filter(
    scale: int, method: str = "bicubic", size: int | None = None, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The blur of an ordinary ×``scale`` downscale, as a kernel for :func:`kfops.degrade`.

    ``method`` is ``"area"`` (the mean of each s×s block), ``"bilinear"`` (a triangle of
    half-width s HR pixels) or ``"bicubic"`` (Keys' cubic, a = −0.5, stretched by s): the
    anti-aliased resizes of PIL, Matlab's ``imresize`` and ``torch.nn.functional.interpolate
    (..., antialias=True)``, which ``degrade(x, resize_filter(s, m), s)`` reproduces away from
    the border. Separable, sum 1; the bicubic filter has small negative lobes. Shape
    ``(size, size)`` with the taps placed so that the output stays aligned (the centre at
    :func:`kfops.kernel_inr.target_center`); ``size`` defaults to the smallest support
    (4s or 4s − 1 taps for bicubic at even or odd s).
    """
    from kfops.kernel_inr import target_center

    s = _pos_int(scale, "scale")
    if method not in _RESIZE_PROFILES:
        raise KernelError(
            f"unknown resize method {method!r}; choose from {', '.join(RESIZE_METHODS)}"
        )
    radius, profile = _RESIZE_PROFILES[method]
    half = math.ceil(radius * s) + 1
    offsets = torch.arange(-half, half + 1, dtype=torch.float64) + (0.5 if s % 2 == 0 else 0.0)
    taps = profile(offsets / s)
    keep = (taps != 0).nonzero().flatten()
    taps = taps[int(keep[0]) : int(keep[-1]) + 1]
    n = taps.numel()
    if size is None:
        size = n
    size = _pos_int(size, "size")
    if size < n:
        raise KernelError(f"the x{s} {method} filter needs at least {n} taps, got size {size}")
    start = round(target_center(size, s) - (n - 1) / 2)
    line = torch.zeros(size, dtype=torch.float64)
    line[start : start + n] = taps / taps.sum()
    return torch.outer(line, line).to(dtype)


def _stress_size(size: int, name: str) -> int:
    n = _pos_int(size, f"{name} size")
    if n < 4:
        raise KernelError(f"{name} size must be at least 4, got {n}")
    return n


def _stroke(n: int) -> int:
    """Line width of the stress shapes: 2 px at size 24 (``round(n / 12)``, at least 1)."""
    return max(1, round(n / 12))


def _half_side(n: int) -> int:
    """About ``n / 2``, with the parity of ``n`` so the square centres exactly."""
    side = n // 2
    return side + 1 if (n - side) % 2 else side


def filled_square(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform square of side ~``size/2`` (12 at 24) centred in a ``(size, size)`` array, sum 1."""
    n = _stress_size(size, "filled_square")
    side = _half_side(n)
    k = torch.zeros(n, n, dtype=torch.float64)
    a = (n - side) // 2
    k[a : a + side, a : a + side] = 1.0
    return recenter(k).to(dtype)


def empty_square(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Square outline of side ~``size/2`` and line width ``round(size/12)`` (12 and 2 px at 24),
    centred in a ``(size, size)`` array, sum 1."""
    n = _stress_size(size, "empty_square")
    side, w = _half_side(n), _stroke(n)
    w = min(w, max(1, (side - 1) // 2))
    k = torch.zeros(n, n, dtype=torch.float64)
    a = (n - side) // 2
    k[a : a + side, a : a + side] = 1.0
    k[a + w : a + side - w, a + w : a + side - w] = 0.0
    return recenter(k).to(dtype)


def l_shape(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """An "L": vertical arm on the left, horizontal arm at the bottom, each ``round(size/2)``
    long and ``round(size/12)`` wide (12 and 2 px at 24), recentred so its COM sits on the
    array centre (the sub-pixel part of that shift softens the edges), sum 1."""
    n = _stress_size(size, "l_shape")
    arm, w = max(2, round(n / 2)), _stroke(n)
    k = torch.zeros(n, n, dtype=torch.float64)
    a = (n - arm) // 2
    k[a : a + arm, a : a + w] = 1.0
    k[a + arm - w : a + arm, a : a + arm] = 1.0
    return recenter(k).to(dtype)


def camera_shake(
    size: int,
    generator: torch.Generator | None = None,
    length: float | None = None,
    n_steps: int = 1000,
    anxiety: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Random camera-shake kernel ``(size, size)``, in the spirit of Boracchi & Foi (2012).

    A constant-speed 2-D trajectory of total path length ``length`` px (default ``0.8 * size``)
    is simulated in ``n_steps`` steps. The direction has inertia: at each step it is perturbed
    by Gaussian noise (a random walk of the heading), pulled back towards the start point
    (keeps the path compact), and with small probability jerked into a sharp near-reversal
    (random turn of pi +- 0.5 rad). Per-kernel strengths of these effects are drawn at random;
    ``anxiety`` scales the noise. Samples are splatted bilinearly onto the grid (equal time per
    sample), the path is scaled down about its COM if it would not fit with a 1 px margin,
    then the kernel is recentred (COM on the array centre) and normalised to sum 1.
    All randomness comes from ``generator`` (the global torch RNG if None), so a seeded
    generator reproduces the kernel.
    """
    n = _pos_int(size, "camera_shake size")
    if n < 3:
        raise KernelError(f"camera_shake size must be at least 3, got {n}")
    steps = _pos_int(n_steps, "n_steps")
    path_len = 0.8 * n if length is None else _finite(length, "length")
    noise_scale = _finite(anxiety, "anxiety")
    if path_len < 0 or noise_scale < 0:
        raise KernelError(f"length and anxiety must be >= 0, got {path_len:g}, {noise_scale:g}")

    g = dict(generator=generator, dtype=torch.float64)
    params = torch.rand(4, **g).tolist()
    noise = torch.randn(steps, 2, **g).tolist()
    jerk_u = torch.rand(steps, **g).tolist()
    jerk_a = torch.rand(steps, **g).tolist()

    shake = noise_scale * (0.5 + 2.5 * params[0])  # heading diffusion per sqrt(path)
    pull = 6.0 * params[1]  # centripetal strength
    p_jerk = 1.5 * params[2] / steps  # expected number of jerks in [0, 1.5]
    heading = 2.0 * math.pi * params[3]
    dt = 1.0 / steps
    sq = math.sqrt(dt)
    scale = max(path_len, 1e-12) / 8.0  # distance at which the pull reaches full strength
    vx, vy = math.cos(heading), math.sin(heading)
    x = y = 0.0
    xs, ys = [0.0], [0.0]
    for t in range(steps):
        vx += sq * shake * noise[t][0] - dt * pull * x / scale
        vy += sq * shake * noise[t][1] - dt * pull * y / scale
        if jerk_u[t] < p_jerk:
            turn = math.pi + (jerk_a[t] - 0.5)
            c, s = math.cos(turn), math.sin(turn)
            vx, vy = c * vx - s * vy, s * vx + c * vy
        norm = math.hypot(vx, vy) or 1.0
        vx, vy = vx / norm, vy / norm
        x += path_len * dt * vx
        y += path_len * dt * vy
        xs.append(x)
        ys.append(y)

    px = torch.tensor(xs, dtype=torch.float64)
    py = torch.tensor(ys, dtype=torch.float64)
    px, py = px - px.mean(), py - py.mean()
    half = (n - 1) / 2 - 1.0
    reach = float(torch.maximum(px.abs().max(), py.abs().max()))
    if reach > half:
        px, py = px * (half / reach), py * (half / reach)
    k = _splat(py + (n - 1) / 2, px + (n - 1) / 2, (n, n))
    return recenter(k).to(dtype)


def _splat(py: torch.Tensor, px: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Equal-weight points at array coordinates ``(py, px)`` (1-D float64, each inside
    ``[0, H-1] x [0, W-1]``) spread bilinearly onto a ``shape`` grid of zeros."""
    h, w = shape
    y0 = py.floor().clamp(0, max(h - 2, 0))
    x0 = px.floor().clamp(0, max(w - 2, 0))
    fy, fx = py - y0, px - x0
    y0, x0 = y0.long(), x0.long()
    k = torch.zeros(h * w, dtype=torch.float64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            keep = (wy * wx) > 0
            k.index_add_(0, ((y0 + dy) * w + (x0 + dx))[keep], (wy * wx)[keep])
    return k.view(h, w)


def disk(
    size: Size,
    radius: float,
    dtype: torch.dtype = torch.float64,
    supersample: int = 8,
) -> torch.Tensor:
    """Defocus (pillbox) kernel: each pixel weighted by the fraction of it that a disc of
    ``radius`` px, centred on the array centre, covers (measured on ``supersample``² points
    per pixel, so the rim is anti-aliased); sum 1. The disc must fit: ``radius`` at most
    half the shorter side of ``size`` (int or ``(H, W)``)."""
    shape = _size2(size)
    r = _finite(radius, "radius")
    m = _pos_int(supersample, "supersample")
    if r <= 0:
        raise KernelError(f"disk radius must be positive, got {r:g}")
    if r > min(shape) / 2:
        raise KernelError(f"a disk of radius {r:g} does not fit a {shape[0]}x{shape[1]} kernel")
    yy, xx = _grid(shape)
    sub = (torch.arange(m, dtype=torch.float64) + 0.5) / m - 0.5
    dy = yy[..., None, None] + sub[:, None]
    dx = xx[..., None, None] + sub[None, :]
    cover = (dy * dy + dx * dx <= r * r).to(torch.float64).mean((-2, -1))
    k = validate_kernel(cover, "disk kernel (radius too small for the grid?)")
    return (k / k.sum()).to(dtype)


def linear_motion(
    size: Size, length: float, theta: float = 0.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Uniform linear motion blur: a straight segment of ``length`` px through the array
    centre at angle ``theta`` (radians, from the +x (column) axis towards +y (rows, down),
    as in :func:`anisotropic_gaussian`), drawn as 16 points per pixel of length spread
    bilinearly (so about 2 px wide across the motion, anti-aliased); sum 1, COM on the
    array centre. ``length`` 0 is a point (a delta where the centre falls on a pixel). The
    segment must fit inside the ``size`` (int or ``(H, W)``) array."""
    h, w = _size2(size)
    n_len = _finite(length, "length")
    th = _finite(theta, "theta")
    if n_len < 0:
        raise KernelError(f"motion length must be >= 0, got {n_len:g}")
    c, s = math.cos(th), math.sin(th)
    half_y, half_x = abs(s) * n_len / 2, abs(c) * n_len / 2
    if half_y > (h - 1) / 2 or half_x > (w - 1) / 2:
        raise KernelError(f"a motion of length {n_len:g} px does not fit a {h}x{w} kernel")
    n = max(1, math.ceil(16 * n_len))
    t = ((torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5) * n_len
    k = _splat((h - 1) / 2 + s * t, (w - 1) / 2 + c * t, (h, w))
    return (k / k.sum()).to(dtype)


# --------------------------------------------------------------------------- named sets

_GAUSS_SET = ((1.5, 4.0, 0.3), (3.5, 1.2, 1.1), (2.5, 2.5, 0.0))


def data_dir() -> Path:
    """The shared data folder: ``$KFOPS_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("KFOPS_DATA")
    p = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not p.is_dir():
        src = "KFOPS_DATA" if env else "default location"
        raise KernelError(f"kernel data folder not found: {p} ({src}); set KFOPS_DATA")
    return p


def named_kernel_set(name: str, size: int = 24) -> dict[str, torch.Tensor]:
    """A named set of float64 ``(size, size)`` kernels, each summing to 1 with COM centred.

    * ``"levin"``: the 8 Levin et al. (2009) kernels ``levin09_k{1..8}.npy`` from
      ``data_dir() / "kernels" / "levin09"``, resampled by :func:`resize_kernel` with the COM
      placed on the array centre; keys ``levin_k1`` ... ``levin_k8``.
    * ``"stress"``: :func:`l_shape`, :func:`empty_square`, :func:`filled_square`.
    * ``"gauss"``: anisotropic Gaussians ``(sigma_x, sigma_y, theta)`` = (1.5, 4.0, 0.3),
      (3.5, 1.2, 1.1), (2.5, 2.5, 0.0) (fixed, for x4 SR); keys like ``gauss_1.5_4.0_0.3``.
    """
    n = _pos_int(size, "size")
    if name == "levin":
        folder = data_dir() / "kernels" / "levin09"
        out = {}
        for i in range(1, 9):
            p = folder / f"levin09_k{i}.npy"
            out[f"levin_k{i}"] = resize_kernel(load_kernel(p), n, center=True)
        return out
    if name == "stress":
        return {
            "l_shape": l_shape(n),
            "empty_square": empty_square(n),
            "filled_square": filled_square(n),
        }
    if name == "gauss":
        return {
            f"gauss_{sx}_{sy}_{th}": anisotropic_gaussian(n, sx, sy, th)
            for sx, sy, th in _GAUSS_SET
        }
    raise KernelError(f"unknown kernel set '{name}'; choose 'levin', 'stress' or 'gauss'")


def kernel_from_spec(spec: str, size: int = 24, scale: int | None = None) -> torch.Tensor:
    """A kernel from a file path or a generator spec (for the command line).

    Specs: ``box:K``, ``gauss:SIGMA[:K]``, ``gauss:SX,SY,THETA[:K]`` (THETA in radians),
    ``disk:RADIUS[:K]`` (defocus), ``motion:LENGTH,THETA[:K]`` (linear motion, THETA in
    radians), ``shake:SEED[:K]``, ``l_shape[:K]``, ``empty_square[:K]``, ``filled_square[:K]``;
    K defaults to ``size``. ``bicubic[:K]``, ``bilinear[:K]`` and ``area[:K]`` are the
    filters of an ordinary ×``scale`` downscale (:func:`resize_filter`; K defaults to their
    support) and need ``scale``. Anything else is read with :func:`load_kernel`.
    """
    name, _, rest = spec.partition(":")
    parts = rest.split(":") if rest else []

    def size_at(i: int) -> int:
        if len(parts) > i:
            try:
                return int(parts[i])
            except ValueError:
                raise KernelError(f"bad kernel size {parts[i]!r} in {spec!r}") from None
        return size

    try:
        if name in _RESIZE_PROFILES and (not parts or parts[0].isdigit()):
            if scale is None:
                raise KernelError(f"the {name} filter needs the scale factor")
            return resize_filter(scale, name, size_at(0) if parts else None)
        if name == "box":
            return box(size_at(0))
        if name == "gauss":
            if not parts:
                raise KernelError("gauss needs a sigma, e.g. gauss:2.0 or gauss:1.5,4,0.3")
            vals = [float(v) for v in parts[0].split(",")]
            if len(vals) == 1:
                return gaussian(size_at(1), vals[0])
            if len(vals) == 3:
                return anisotropic_gaussian(size_at(1), vals[0], vals[1], vals[2])
            raise KernelError(f"gauss takes SIGMA or SX,SY,THETA, got {parts[0]!r}")
        if name == "disk":
            if not parts:
                raise KernelError("disk needs a radius in pixels, e.g. disk:4")
            return disk(size_at(1), float(parts[0]))
        if name == "motion":
            vals = [float(v) for v in parts[0].split(",")] if parts else []
            if len(vals) != 2:
                raise KernelError("motion takes LENGTH,THETA (pixels, radians), e.g. motion:15,0.5")
            return linear_motion(size_at(1), vals[0], vals[1])
        if name == "shake":
            seed = int(parts[0]) if parts else 0
            g = torch.Generator().manual_seed(seed)
            return camera_shake(size_at(1), generator=g)
        stress = {"l_shape": l_shape, "empty_square": empty_square, "filled_square": filled_square}
        if name in stress:
            return stress[name](size_at(0))
    except ValueError as exc:
        if isinstance(exc, KernelError):
            raise
        raise KernelError(f"bad kernel spec {spec!r}: {exc}") from None
    return load_kernel(spec)
