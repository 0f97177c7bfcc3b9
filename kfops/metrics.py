"""Image and kernel quality metrics, as reported in SR papers (KernelFusion's Table 2).

Image metrics compare a super-resolved image with the ground truth on the luma channel:

* Images are tensors ``(B, C, H, W)`` or ``(C, H, W)`` with C = 3 (RGB) or 1 (grey),
  values in [0, 1] (numpy arrays are accepted too). Both are converted to float64.
* RGB becomes Matlab-style BT.601 luma Y in [16/255, 235/255] (:func:`rgb_to_y`); grey is
  used as is.
* ``crop_border`` pixels are removed on every side before comparing. ``None`` (default)
  removes 5% of the shorter side, rounded half up (``int(0.05 * min(H, W) + 0.5)``: 26 px
  at 512, 13 px at 256), as in the paper's Table 2; an int is a pixel count.
* ``reduction="mean"`` returns a float (mean over the batch), ``"none"`` a float64 tensor
  ``(B,)`` (``B = 1`` for a ``(C, H, W)`` input).

Kernel metrics compare an estimated kernel with the true one up to an integer translation
(kernels are only defined up to a shift of the image): see :func:`kernel_ncc`.

Bad arguments raise :class:`kfops.errors.ShapeError` (images) or
:class:`kfops.errors.KernelError` (kernels).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .degradation import backproject
from .errors import KernelError, ShapeError
from .kernels import validate_kernel

__all__ = [
    "default_crop_border",
    "kernel_mse",
    "kernel_ncc",
    "psnr_y",
    "rgb_to_y",
    "sr_with_kernel_psnr",
    "ssim_y",
]

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def _as_tensor(x: object, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """Matlab ``rgb2ycbcr`` luma of an image in [0, 1]: Y = (16 + 65.481 R + 128.553 G +
    24.966 B) / 255, in [16/255, 235/255].

    img: ``(B, C, H, W)`` or ``(C, H, W)``, C = 3 (RGB) or 1 (returned unchanged). Returns
    the same layout with C = 1, in img's dtype (integer input becomes float64).
    """
    img = _as_tensor(img, "img")
    if img.dim() not in (3, 4) or img.shape[-3] not in (1, 3):
        raise ShapeError(
            f"image must be (C, H, W) or (B, C, H, W) with C = 1 or 3, got {tuple(img.shape)}"
        )
    if not img.is_floating_point():
        img = img.to(torch.float64)
    if img.shape[-3] == 1:
        return img
    r, g, b = img.unbind(dim=-3)
    y = (16.0 + _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b) / 255.0
    return y.unsqueeze(-3)


def default_crop_border(height: int, width: int) -> int:
    """The default border: 5% of the shorter side, rounded half up."""
    return int(0.05 * min(height, width) + 0.5)


def _prepare(sr: object, hr: object, crop_border: int | None) -> tuple[torch.Tensor, ...]:
    """Validate a pair of images; return their cropped float64 Y channels, (B, 1, H', W')."""
    sr, hr = _as_tensor(sr, "sr"), _as_tensor(hr, "hr")
    if tuple(sr.shape) != tuple(hr.shape):
        raise ShapeError(
            f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}"
        )
    if sr.dim() == 3:
        sr, hr = sr.unsqueeze(0), hr.unsqueeze(0)
    ys, yh = (rgb_to_y(t.to(torch.float64)) for t in (sr, hr))
    h, w = ys.shape[-2:]
    if crop_border is None:
        c = default_crop_border(h, w)
    elif isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ShapeError(f"crop_border must be None or an int >= 0, got {crop_border!r}")
    else:
        c = crop_border
    if h - 2 * c < 1 or w - 2 * c < 1:
        raise ShapeError(f"crop_border {c} leaves nothing of a {h}x{w} image")
    if ys.shape[0] == 0:
        raise ShapeError("empty batch")
    if c:
        ys, yh = ys[..., c : h - c, c : w - c], yh[..., c : h - c, c : w - c]
    return ys, yh.to(ys.device)


def _reduce(values: torch.Tensor, reduction: str) -> float | torch.Tensor:
    if reduction == "none":
        return values
    if reduction == "mean":
        return float(values.mean())
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def psnr_y(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int | None = None,
    data_range: float = 1.0,
    reduction: str = "mean",
) -> float | torch.Tensor:
    """PSNR (dB) on Y: 10·log10(data_range² / MSE), MSE over the cropped Y of each image.

    Identical images give ``math.inf`` (no warning). See the module docstring for shapes,
    ``crop_border`` and ``reduction``; the batch mean is the mean of per-image PSNRs.
    """
    ys, yh = _prepare(sr, hr, crop_border)
    mse = (ys - yh).pow(2).mean(dim=(1, 2, 3))
    peak = float(data_range) ** 2
    safe = mse.clamp_min(torch.finfo(torch.float64).tiny)
    val = torch.where(mse > 0, 10.0 * torch.log10(peak / safe), math.inf)
    return _reduce(val, reduction)


def _gauss_window(sigma: float, device: torch.device) -> torch.Tensor:
    """scipy.ndimage's 1-D Gaussian with truncate 3.5: radius int(3.5σ + 0.5), sum 1."""
    r = int(3.5 * sigma + 0.5)
    x = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def ssim_y(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int | None = None,
    data_range: float = 1.0,
    reduction: str = "mean",
) -> float | torch.Tensor:
    """SSIM (Wang et al. 2004) on Y, equal to scikit-image's ``structural_similarity(a, b,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)``.

    11×11 separable Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, population
    (co)variances; the SSIM map is averaged over the positions where the window lies
    entirely inside the cropped image, which must therefore be at least 11×11.
    """
    ys, yh = _prepare(sr, hr, crop_border)
    w = _gauss_window(1.5, ys.device)
    n = w.numel()
    if min(ys.shape[-2:]) < n:
        raise ShapeError(
            f"SSIM needs at least {n}x{n} pixels after the border crop, got "
            f"{ys.shape[-1]}x{ys.shape[-2]}"
        )
    stack = torch.cat([ys, yh, ys * ys, yh * yh, ys * yh], dim=1)  # (B, 5, H, W)
    stack = F.conv2d(stack, w.view(1, 1, n, 1).expand(5, 1, n, 1), groups=5)
    mu = F.conv2d(stack, w.view(1, 1, 1, n).expand(5, 1, 1, n), groups=5)
    ux, uy, uxx, uyy, uxy = mu.unbind(dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return _reduce(s.mean(dim=(1, 2)), reduction)


# --------------------------------------------------------------------------- kernels


def _kernel2d(k: object, name: str) -> torch.Tensor:
    if isinstance(k, np.ndarray):
        k = torch.from_numpy(np.ascontiguousarray(k))
    if not isinstance(k, torch.Tensor):
        raise KernelError(f"{name} must be a torch.Tensor, got {type(k).__name__}")
    while k.dim() > 2 and k.shape[0] == 1:
        k = k[0]
    return validate_kernel(k, name).detach().to("cpu", torch.float64)


def _common(est: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred zero-padding of both kernels to (max Kh, max Kw)."""
    h, w = max(est.shape[0], gt.shape[0]), max(est.shape[1], gt.shape[1])

    def pad(k: torch.Tensor) -> torch.Tensor:
        dh, dw = h - k.shape[0], w - k.shape[1]
        return F.pad(k, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))

    return pad(est), pad(gt)


def _align(
    est: object, gt: object, max_shift: int | None
) -> tuple[float, tuple[int, int], torch.Tensor, torch.Tensor]:
    """Best integer shift of est onto gt: (ncc, (dy, dx), est_common, gt_common)."""
    a, b = _common(_kernel2d(est, "est"), _kernel2d(gt, "gt"))
    h, w = a.shape
    if max_shift is None:
        ph, pw = h - 1, w - 1
    elif isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise KernelError(f"max_shift must be None or an int >= 0, got {max_shift!r}")
    else:
        ph, pw = min(max_shift, h - 1), min(max_shift, w - 1)
    # corr[ph + dy, pw + dx] = sum_ij gt[i, j] * est[i - dy, j - dx] (est moved by (dy, dx))
    corr = F.conv2d(F.pad(b, (pw, pw, ph, ph))[None, None], a[None, None])[0, 0]
    norm = float(a.norm() * b.norm())
    if norm == 0.0:
        raise KernelError("kernel has zero energy")
    idx = int(torch.argmax(corr))
    iy, ix = divmod(idx, corr.shape[1])
    return float(corr[iy, ix]) / norm, (iy - ph, ix - pw), a, b


def kernel_ncc(est: torch.Tensor, gt: torch.Tensor, max_shift: int | None = None) -> float:
    """Normalised cross-correlation of two kernels at the best integer shift.

    Both ``(Kh, Kw)`` kernels (leading singleton dims are dropped; sizes may differ) are
    zero-padded, centred, to a common size and compared over the whole plane (zero outside
    each array): NCC = max over shifts d of <gt, est shifted by d> / (‖est‖ ‖gt‖). No mean is
    subtracted (the zeros around a kernel are part of it), so the value does not depend on
    the padding, is invariant to scaling either kernel, lies in [0, 1] for non-negative
    kernels, and is 1 exactly when est is a positive multiple of an integer-shifted gt.
    Shifts are searched up to ``max_shift`` pixels per axis (default: all overlaps).
    """
    return min(1.0, max(-1.0, _align(est, gt, max_shift)[0]))


def kernel_mse(est: torch.Tensor, gt: torch.Tensor, max_shift: int | None = None) -> float:
    """Mean squared difference of the sum-1 kernels after the :func:`kernel_ncc` alignment.

    Computed on the infinite zero-padded plane (no mass is lost by the shift) and divided
    by the number of pixels of the common (max Kh × max Kw) grid.
    """
    _, (dy, dx), a, b = _align(est, gt, max_shift)
    a, b = a / a.sum(), b / b.sum()
    h, w = a.shape
    big_a = F.pad(a, (w, w, h, h))
    big_b = F.pad(b, (w, w, h, h))
    shifted = torch.roll(big_a, shifts=(dy, dx), dims=(0, 1))
    return float((shifted - big_b).pow(2).sum()) / (h * w)


def sr_with_kernel_psnr(
    lr: torch.Tensor,
    hr: torch.Tensor,
    est_kernel: torch.Tensor,
    gt_kernel: torch.Tensor,
    scale: int,
    crop_border: int | None = None,
) -> dict[str, float]:
    """How much an estimated kernel costs: non-blind SR (:func:`kfops.backproject`) of lr
    with the estimated and with the true kernel, both scored by :func:`psnr_y` against hr.

    lr: ``(B, C, h, w)`` or ``(C, h, w)`` in [0, 1]; hr: the matching HR image, at least
    ``(s·h, s·w)`` and less than ``s`` pixels larger (it is cropped top-left to that size,
    as :func:`kfops.degrade` ignores the remainder). Returns ``{"psnr_y_est": …,
    "psnr_y_gt": …, "delta": psnr_y_est - psnr_y_gt}`` (batch means).
    """
    lr, hr = _as_tensor(lr, "lr"), _as_tensor(hr, "hr")
    if lr.dim() != hr.dim() or lr.dim() not in (3, 4):
        raise ShapeError(
            f"lr and hr must both be (C, H, W) or (B, C, H, W), got {tuple(lr.shape)} and "
            f"{tuple(hr.shape)}"
        )
    th, tw = scale * lr.shape[-2], scale * lr.shape[-1]
    if not (th <= hr.shape[-2] < th + scale and tw <= hr.shape[-1] < tw + scale):
        raise ShapeError(
            f"hr {tuple(hr.shape)} does not match lr {tuple(lr.shape)} at scale {scale}"
        )
    hr = hr[..., :th, :tw]
    if not lr.is_floating_point():
        lr = lr.to(torch.float64)
    out = {}
    for key, name, k in (
        ("psnr_y_est", "est_kernel", est_kernel),
        ("psnr_y_gt", "gt_kernel", gt_kernel),
    ):
        sr = backproject(lr, _kernel2d(k, name).to(lr.device, lr.dtype), scale)
        out[key] = psnr_y(sr, hr, crop_border)
    out["delta"] = out["psnr_y_est"] - out["psnr_y_gt"]
    return out
