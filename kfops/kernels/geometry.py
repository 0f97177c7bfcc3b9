"""Kernel geometry: centre of mass, sub-pixel shifts, centring, bicubic alignment, and
fitting a kernel into another support by padding or cropping."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from kfops.errors import KernelError

from .checks import Size, _as_float, _finite, _pos_int, _size2, normalize, validate_kernel

_COM_TOL = 1e-11  # COM accuracy (pixels, times the largest side) targeted by the centring loops
_MAX_ITER = 12


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
