"""Sampling geometry of the degradation operator (Python twin of csrc/common/degrade_math.h).

One axis at a time: LR sample ``i`` and tap ``u`` read padded HR index
``origin + s*i + u``. The tap offset is ``floor((s - K) / 2)`` (bicubic alignment; see
:func:`kfops.degrade`). Padded modes give ``n // s`` samples; ``valid`` keeps the samples
of the same grid whose taps all fall inside the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PADDINGS = ("reflect", "replicate", "circular", "zeros", "valid")


@dataclass(frozen=True)
class AxisGeom:
    n: int  # HR length
    n_out: int  # LR length (<= 0: no valid sample)
    origin: int  # padded index read by sample 0, tap 0
    k: int  # taps
    s: int  # stride

    @property
    def lo(self) -> int:
        return self.origin

    @property
    def hi(self) -> int:
        return self.origin + self.s * (self.n_out - 1) + self.k - 1


def tap_offset(s: int, k: int) -> int:
    return (s - k) // 2


def axis_geom(n: int, k: int, s: int, padding: str) -> AxisGeom:
    o = tap_offset(s, k)
    if padding == "valid":
        i0 = max(-(o // s), 0)  # ceil(-o / s), clamped at 0
        origin = o + s * i0
        n_out = (n - k - origin) // s + 1 if n - k - origin >= 0 else 0
        return AxisGeom(n, n_out, origin, k, s)
    return AxisGeom(n, n // s, o, k, s)


def lr_size(hr_size: tuple[int, int], ksize: tuple[int, int], s: int, padding: str):
    """(Ho, Wo) produced from an (H, W) image by a (Kh, Kw) kernel at scale s."""
    gy = axis_geom(hr_size[0], ksize[0], s, padding)
    gx = axis_geom(hr_size[1], ksize[1], s, padding)
    return gy.n_out, gx.n_out


def pad_index(idx: torch.Tensor, n: int, padding: str) -> torch.Tensor:
    """Source index in [0, n) of each padded index, or -1 where the padded value is zero."""
    inside = (idx >= 0) & (idx < n)
    if padding == "reflect":
        if n == 1:
            out = torch.zeros_like(idx)
        else:
            period = 2 * (n - 1)
            m = torch.remainder(idx, period)
            out = torch.where(m < n, m, period - m)
    elif padding == "replicate":
        out = idx.clamp(0, n - 1)
    elif padding == "circular":
        out = torch.remainder(idx, n)
    else:  # zeros, valid
        out = torch.where(inside, idx, torch.full_like(idx, -1))
    return torch.where(inside, idx, out)
