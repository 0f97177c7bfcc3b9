"""Pure-PyTorch implementations of the degradation ops: the test oracle and the fallback.

They follow the same conventions as the C++/CUDA ops (see :mod:`kfops.ops.geometry`) but
are written independently: explicit padding by index gathering, then ``conv2d`` with
stride s; the adjoint is ``conv_transpose2d`` followed by folding the padded border back
(``index_add``); the kernel gradient is a dilated correlation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .geometry import AxisGeom, axis_geom, pad_index


def kernel_planes(k: torch.Tensor, b: int, c: int) -> torch.Tensor:
    """Expand a (Kh,Kw) | (C|1,Kh,Kw) | (B|1,C|1,Kh,Kw) kernel to (B*C, 1, Kh, Kw)."""
    kh, kw = k.shape[-2:]
    k4 = k.reshape((1,) * (4 - k.dim()) + tuple(k.shape))
    return k4.expand(b, c, kh, kw).reshape(b * c, 1, kh, kw)


def _index(g: AxisGeom, padding: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    q = torch.arange(g.lo, g.hi + 1, device=device)
    src = pad_index(q, g.n, padding)
    return src.clamp(min=0), src >= 0


def _geoms(hw, khw, s, padding) -> tuple[AxisGeom, AxisGeom]:
    gy = axis_geom(hw[0], khw[0], s, padding)
    gx = axis_geom(hw[1], khw[1], s, padding)
    if gy.n_out < 1 or gx.n_out < 1:
        raise ValueError(
            f"no output sample for image {tuple(hw)}, kernel {tuple(khw)}, "
            f"scale {s}, padding {padding!r}"
        )
    return gy, gx


def _pad(x: torch.Tensor, gy: AxisGeom, gx: AxisGeom, padding: str) -> torch.Tensor:
    ri, rm = _index(gy, padding, x.device)
    ci, cm = _index(gx, padding, x.device)
    xp = x.index_select(2, ri).index_select(3, ci)
    mask = (rm[:, None] & cm[None, :]).to(x.dtype)
    return xp * mask


def degrade_ref(x: torch.Tensor, k: torch.Tensor, s: int, padding: str) -> torch.Tensor:
    b, c, h, w = x.shape
    gy, gx = _geoms((h, w), k.shape[-2:], s, padding)
    xp = _pad(x, gy, gx, padding).reshape(1, b * c, gy.hi - gy.lo + 1, gx.hi - gx.lo + 1)
    y = F.conv2d(xp, kernel_planes(k, b, c), stride=s, groups=b * c)
    return y.reshape(b, c, gy.n_out, gx.n_out)


def degrade_adjoint_ref(
    y: torch.Tensor, k: torch.Tensor, s: int, padding: str, hr_size
) -> torch.Tensor:
    b, c, ho, wo = y.shape
    h, w = int(hr_size[0]), int(hr_size[1])
    gy, gx = _geoms((h, w), k.shape[-2:], s, padding)
    if (gy.n_out, gx.n_out) != (ho, wo):
        raise ValueError(f"LR size {(ho, wo)} does not match HR size {(h, w)}")
    z = F.conv_transpose2d(
        y.reshape(1, b * c, ho, wo), kernel_planes(k, b, c), stride=s, groups=b * c
    ).reshape(b, c, gy.hi - gy.lo + 1, gx.hi - gx.lo + 1)
    ri, rm = _index(gy, padding, y.device)
    ci, cm = _index(gx, padding, y.device)
    t = y.new_zeros(b, c, h, z.shape[3]).index_add_(2, ri[rm], z[:, :, rm])
    return y.new_zeros(b, c, h, w).index_add_(3, ci[cm], t[:, :, :, cm])


def degrade_kernel_grad_ref(
    x: torch.Tensor, gy: torch.Tensor, s: int, padding: str, kshape
) -> torch.Tensor:
    b, c, h, w = x.shape
    kshape = tuple(int(v) for v in kshape)
    ay, ax = _geoms((h, w), kshape[-2:], s, padding)
    xp = _pad(x, ay, ax, padding).reshape(1, b * c, ay.hi - ay.lo + 1, ax.hi - ax.lo + 1)
    g = F.conv2d(xp, gy.reshape(b * c, 1, ay.n_out, ax.n_out), dilation=s, groups=b * c)
    g = g.reshape(b, c, *kshape[-2:])
    k4 = (1,) * (4 - len(kshape)) + kshape
    dims = [d for d in (0, 1) if k4[d] == 1 and g.shape[d] != 1]
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g.reshape(kshape)


def tv_grad_ref(x: torch.Tensor, smooth: float) -> torch.Tensor:
    """Gradient of Σ √(dx² + dy² + δ²) (forward differences, per plane of (B, C, H, W)),
    scattered back onto the pixels each difference reads."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    norm = (dx * dx).add_(dy * dy).add_(smooth * smooth).sqrt_()
    dx.div_(norm)
    dy.div_(norm)
    g = torch.zeros_like(x)
    g[..., :-1, 1:] += dx
    g[..., 1:, :-1] += dy
    g[..., :-1, :-1] -= dx.add_(dy)
    return g
