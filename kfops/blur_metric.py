"""No-reference blur metric of Crete et al. (2007, "The blur effect"): re-blur the image
with a box filter and measure how much of its gradient the re-blur removes. A sharp image
loses much (low score), a blurred one little (high score). Content matters too (a smooth
image scores higher than a textured one with the same blur), so it is a coarse cue.

Used by ``ReconConfig.resize_gate``: the resize filter can only be the right kernel for an
LR image as sharp as a plain downscale (benchmarks/RESULTS.md, "Images that were only
resized").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .metrics import rgb_to_y


def _symmetric_pad(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    """Pad ``x`` along ``dim`` with its edge samples mirrored (c b a | a b c | c b a: the
    'reflect' mode of scipy.ndimage)."""
    n = x.shape[dim]
    if max(before, after) > n:
        raise ValueError(f"cannot pad {max(before, after)} samples on an axis of {n}")
    head = x.narrow(dim, 0, before).flip(dim)
    tail = x.narrow(dim, n - after, after).flip(dim)
    return torch.cat((head, x, tail), dim)


def _box(x: torch.Tensor, taps: int, dim: int) -> torch.Tensor:
    """Centred ``taps``-sample moving average along ``dim`` (2 or 3) of (N, 1, H, W), edges
    mirrored; for even ``taps`` the window reaches one sample further back than forward."""
    x = _symmetric_pad(x, taps // 2, (taps - 1) // 2, dim)
    shape = (taps, 1) if dim == 2 else (1, taps)
    w = torch.full((1, 1, *shape), 1.0 / taps, dtype=x.dtype, device=x.device)
    return F.conv2d(x, w)


def single_image(image: torch.Tensor) -> torch.Tensor:
    """``image`` as (C, H, W) float64, detached, from (H, W), (C, H, W) or (1, C, H, W);
    ValueError for a batch of several or another shape."""
    x = image.detach().to(torch.float64)
    if x.dim() == 2:
        x = x[None]
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"one image expected, got a batch of {x.shape[0]}")
        x = x[0]
    if x.dim() != 3:
        raise ValueError(
            f"image must be (H, W), (C, H, W) or (1, C, H, W), got {tuple(image.shape)}"
        )
    return x


def sobel(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sobel derivative along ``dim`` (2 or 3) of (N, 1, H, W): a central difference along
    it, [1, 2, 1] / 4 smoothing across, edges mirrored; output the input's size."""
    x = _symmetric_pad(_symmetric_pad(x, 1, 1, 2), 1, 1, 3)
    d = torch.tensor([-1.0, 0.0, 1.0], dtype=x.dtype, device=x.device)
    s = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device) / 4
    w = torch.outer(d, s) if dim == 2 else torch.outer(s, d)
    return F.conv2d(x, w[None, None])


def blur_effect(image: torch.Tensor, taps: int = 9, derivative: str = "difference") -> float:
    """Blur score in [0, 1] (0 sharp) of ``image``: (H, W), (C, H, W) or (1, C, H, W), any
    range; three channels are taken as RGB and reduced to BT.601 luma, others averaged.

    Per axis: F the image, B it averaged over ``taps`` samples along the axis; D_F and
    D_B their absolute derivatives along it; score = Σ min(D_F, D_B) / Σ D_F (= 1 − Σ
    max(0, D_F − D_B) / Σ D_F); the larger of the two axes' scores is returned.
    ``derivative``: 'difference' (neighbouring pixels, as in the paper, over the whole
    image) or 'sobel' (scikit-image's ``measure.blur_effect``: Sobel, a 2-pixel border
    cropped off at the start and 1 at the end). Computed in float64."""
    if derivative not in ("difference", "sobel"):
        raise ValueError(f"derivative must be 'difference' or 'sobel', got {derivative!r}")
    x = single_image(image)
    y = rgb_to_y(x[None]) if x.shape[0] == 3 else x.mean(0, keepdim=True)[None]
    if min(y.shape[-2:]) < max(taps, 4):
        raise ValueError(f"image {tuple(y.shape[-2:])} too small for a {taps}-tap re-blur")
    scores = []
    for dim in (2, 3):
        blurred = _box(y, taps, dim)
        if derivative == "difference":
            d_f, d_b = y.diff(dim=dim).abs(), blurred.diff(dim=dim).abs()
        else:
            inner = (..., slice(2, y.shape[2] - 1), slice(2, y.shape[3] - 1))
            eps = 1e-7  # scikit-image's floor against 0/0 on flat images
            d_f = sobel(y, dim).abs().clamp_min(eps)[inner]
            d_b = sobel(blurred, dim).abs().clamp_min(eps)[inner]
        total = d_f.sum()
        if total == 0:  # a flat image has no gradient to lose: call it fully blurred
            scores.append(1.0)
            continue
        kept = (d_f - d_b).clamp_min(0).sum()
        scores.append(float((total - kept).abs() / total))
    return max(scores)
