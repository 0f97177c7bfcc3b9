"""Where Phase 2 looks: the LR crops on which the `cpu` preset estimates the kernel, and
the crop on which the kernel checks score candidates.

Images are (1, C, h, w) tensors in [0, 1]; corners are (top, left) in LR pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .metrics import rgb_to_y

__all__ = [
    "CROP_RULES",
    "CV_CROP",
    "cv_luma",
    "phase2_crops",
    "phase2_pixels",
    "select_crop",
    "select_crops",
]

CROP_RULES = ("energy", "structure")
CV_CROP = 128  # LR pixels: the largest region scored by ``kernel_radius_cv``


def cv_luma(lr: torch.Tensor) -> torch.Tensor:
    """(1, 1, h', w') float: the BT.601 luma of ``lr`` (1, C, h, w) in [0, 1] (the image
    itself when C is not 3), cut to its most textured :data:`CV_CROP`² crop when larger:
    the image ``kernel_radius_cv`` scores kernels on."""
    y = rgb_to_y(lr) if lr.shape[1] == 3 else lr.mean(1, keepdim=True)
    top, left = select_crop(y, CV_CROP)
    return y[..., top : top + CV_CROP, left : left + CV_CROP].float()


def select_crop(lr: torch.Tensor, size: int, rule: str = "energy") -> tuple[int, int]:
    """Top-left corner of the size×size LR crop on which the kernel is estimated.

    ``rule``: ``"energy"`` maximises the gradient energy Σ |∇I|² (edges and texture show
    the kernel); ``"structure"`` the smaller eigenvalue of the summed structure tensor
    Σ ∇I ∇Iᵀ (Shi–Tomasi), which avoids crops of parallel stripes that leave the kernel's
    extent along them unobserved (measured worse on average over 19 cases, benchmarks/RESULTS.md).
    Candidates on a stride of size // 8; I is the channel mean.
    """
    return select_crops(lr, size, 1, rule)[0]


def select_crops(
    lr: torch.Tensor, size: int, n: int, rule: str = "energy"
) -> list[tuple[int, int]]:
    """Top-left corners of up to ``n`` non-overlapping size×size LR crops, best first by
    ``rule`` (see :func:`select_crop`); fewer when the image has no room for more."""
    if rule not in CROP_RULES:
        raise ValueError(f"unknown crop rule {rule!r}; expected one of {CROP_RULES}")
    h, w = lr.shape[-2:]
    if size >= h and size >= w:
        return [(0, 0)]
    g = lr.mean(1, keepdim=True)
    gy = g[..., 1:, :-1] - g[..., :-1, :-1]
    gx = g[..., :-1, 1:] - g[..., :-1, :-1]
    sh, sw = min(size, h - 1), min(size, w - 1)
    stride = max(1, size // 8)
    a, b, c = (F.avg_pool2d(t, (sh, sw), stride=stride) for t in (gy * gy, gx * gy, gx * gx))
    if rule == "energy":
        score = (a + c)[0, 0]
    else:
        score = (0.5 * (a + c) - torch.sqrt(0.25 * (a - c) ** 2 + b * b))[0, 0]
    score = score.cpu()  # a small map: the greedy selection runs on the CPU
    ys = (torch.arange(score.shape[0]) * stride).clamp(max=max(h - size, 0))
    xs = (torch.arange(score.shape[1]) * stride).clamp(max=max(w - size, 0))
    corners: list[tuple[int, int]] = []
    while len(corners) < n and bool(torch.isfinite(score).any()):
        i, j = divmod(int(score.flatten().argmax()), score.shape[1])
        y, x = int(ys[i]), int(xs[j])
        corners.append((y, x))
        overlap = ((ys - y).abs() < size)[:, None] & ((xs - x).abs() < size)[None, :]
        score = score.masked_fill(overlap, -math.inf)
    return corners


def phase2_crops(
    lr: torch.Tensor, size: int, n: int, rule: str = "energy", fill: bool = False
) -> tuple[int, list[tuple[int, int]]]:
    """(side, top-left corners) of the LR crops Phase 2 runs on: up to ``n`` disjoint
    size×size crops (:func:`select_crops`), or, with ``fill`` and room for fewer than
    ``n``, the best crop of side ⌈size·√n⌉, so that a small image gives Phase 2 as many LR
    pixels as a large one (both clipped to the image)."""
    corners = select_crops(lr, size, n, rule)
    if fill and len(corners) < n:
        size = _filled_side(size, n)
        corners = select_crops(lr, size, 1, rule)
    return size, corners


def phase2_pixels(h: int, w: int, size: int, n: int, fill: bool = False) -> int:
    """An upper bound on the LR pixels of :func:`phase2_crops` for an h×w image, without
    the image: the memory estimate's share of Phase 2."""
    pixels = min(h, size) * min(w, size) * n
    if fill:
        side = _filled_side(size, n)
        pixels = max(pixels, min(h, side) * min(w, side))
    return pixels


def _filled_side(size: int, n: int) -> int:
    """The side of one square crop with at least the pixels of ``n`` size×size crops."""
    return math.ceil(size * math.sqrt(n))
