"""Normalised gradient sparsity, an image prior that favours sharp images (Krishnan,
Tay and Fergus 2011): ‖∇x‖₁ / ‖∇x‖₂ is scale-invariant and grows under blur, since blur
lowers ‖∇x‖₂ more than ‖∇x‖₁, so unlike an L1 or TV penalty it does not prefer the
blurred image and the no-blur kernel in blind deconvolution."""

from __future__ import annotations

import torch


def normalized_sparsity(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x: (B, C, H, W), any range. Returns the batch mean of ‖∇x‖₁ / (‖∇x‖₂ · √n), n the
    number of forward differences (horizontal and vertical, all channels) of one image: a
    value in [1/√n, 1], 1 when every difference has the same magnitude, 1/√n when only one
    is non-zero; lower means sparser gradients. Differentiable."""
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got {tuple(x.shape)}")
    gx = (x[..., :, 1:] - x[..., :, :-1]).flatten(1)
    gy = (x[..., 1:, :] - x[..., :-1, :]).flatten(1)
    g = torch.cat([gx, gy], 1)
    l1 = g.abs().sum(1)
    l2 = g.pow(2).sum(1).add(eps).sqrt()
    return (l1 / (l2 * g.shape[1] ** 0.5)).mean()


def kernel_sqrt_sparsity(k: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Σ √k over the taps of a kernel (K, K) summing to 1 (negative taps count as 0), the
    mean over a batch (B, K, K): 1 for a single tap, √(K²) for a flat kernel; lower means
    fewer, stronger taps. Differentiable; a sparsity prior on the kernel."""
    if k.dim() not in (2, 3):
        raise ValueError(f"k must be (K, K) or (B, K, K), got {tuple(k.shape)}")
    k = k if k.dim() == 3 else k[None]
    return (k.clamp_min(0) + eps).sqrt().sum((-2, -1)).mean()
