"""Kernel resampling: onto another grid (:func:`resize_kernel`), to another size of blur
(:func:`dilate_kernel`), and the removal of a constant pedestal (:func:`remove_floor`)."""

from __future__ import annotations

import math

import torch

from kfops.errors import KernelError

from .checks import Size, _as_float, _finite, _size2, normalize, validate_kernel
from .geometry import _place_com, center_of_mass, fit_to, pad_to, recenter, shift_kernel


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
