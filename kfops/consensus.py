"""One kernel from several Phase-2 estimates of the same image (``ReconConfig.restarts``).

Phase 2 started from different network initialisations and noise lands on different
kernels (the seed spread in benchmarks/RESULTS.md: more than 1 dB on one case). The
estimates share the kernel grid and the centre-of-mass target, so they are compared and
combined in place, without shifting them (a shift would move the output off the bicubic
alignment).

Rules (all need no ground truth):

- ``widest``: the estimate of largest spread (:func:`kernel_spread`). Joint estimation of
  an image and its kernel leans towards kernels that are too narrow (the no-blur
  solution explains the LR image with a sharper HR image and a smaller kernel; Levin et
  al. 2009), and a run that escapes that pull lands nearer the true kernel (measured on
  10 cases, benchmarks/RESULTS.md). The rule holds only while the runs err on the small
  side: on a sharp, aliased LR image (no blur before the downscaling) the estimates are
  too wide and it keeps the worst of them, and runs shortened to a third of the cpu
  preset's iterations scatter to both sides of the true width (benchmarks/RESULTS.md);
- ``medoid``: the estimate with the largest summed normalised correlation ⟨kᵢ, kⱼ⟩ /
  (‖kᵢ‖ ‖kⱼ‖) with the others — the one the other runs agree with most;
- ``mean``: the pixel-wise mean;
- ``median``: the pixel-wise median (robust to one run that went astray), renormalised;
- ``first``: the first estimate (with ``crop_kernels='each'``, that of the most textured
  crop);
- ``average``: no one kernel: :class:`kfops.Reconstructor` runs the final step with every
  run's kernel and averages the HR images (their mean squared error is never above the mean
  of theirs); the kernel reported is the medoid.
"""

from __future__ import annotations

import torch

from .errors import KernelError
from .kernels import center_of_mass

__all__ = ["CONSENSUS_RULES", "agreement", "consensus_kernel", "kernel_spread"]

CONSENSUS_RULES = ("widest", "medoid", "mean", "median", "first", "average")


def kernel_spread(kernel: torch.Tensor) -> float:
    """√(Σ k(p) |p − c|²) in pixels, c the centre of mass, for a (K, K) kernel normalised
    to sum 1 first: the kernel's RMS radius (0 where the leaky sigmoid's slightly negative
    taps outweigh an almost single-tap kernel's second moment)."""
    k = kernel.detach().double()
    k = k / k.sum()
    cy, cx = center_of_mass(k)
    ys = torch.arange(k.shape[-2], dtype=k.dtype, device=k.device)[:, None]
    xs = torch.arange(k.shape[-1], dtype=k.dtype, device=k.device)[None, :]
    return float((k * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum().clamp_min(0).sqrt())


def agreement(kernels: list[torch.Tensor]) -> torch.Tensor:
    """(R, R) normalised correlations ⟨kᵢ, kⱼ⟩ / (‖kᵢ‖ ‖kⱼ‖) of same-size kernels, unshifted;
    in [0, 1] for non-negative kernels, 1 on the diagonal."""
    flat = torch.stack([k.reshape(-1) for k in kernels]).double()
    norms = flat.norm(dim=1)
    if bool((norms == 0).any()):
        raise KernelError("a kernel estimate has zero energy")
    flat = flat / norms[:, None]
    return flat @ flat.T


def consensus_kernel(kernels: list[torch.Tensor], rule: str = "widest") -> tuple[torch.Tensor, int]:
    """(kernel summing to 1, index of the run whose Phase-2 image goes with it) from R ≥ 1
    same-size (K, K) estimates: the chosen run for ``widest``, ``medoid`` and ``first``, the medoid
    for ``mean``, ``median`` and ``average`` (which returns the medoid's kernel)."""
    if rule not in CONSENSUS_RULES:
        raise ValueError(f"unknown consensus rule {rule!r}; expected one of {CONSENSUS_RULES}")
    if not kernels:
        raise KernelError("no kernel estimate to combine")
    if len({tuple(k.shape) for k in kernels}) != 1:
        raise KernelError(f"kernel estimates differ in size: {[tuple(k.shape) for k in kernels]}")
    if len(kernels) == 1 or rule == "first":
        return kernels[0], 0
    if rule == "widest":
        index = max(range(len(kernels)), key=lambda i: kernel_spread(kernels[i]))
        return kernels[index], index
    index = int(agreement(kernels).sum(1).argmax())
    if rule in ("medoid", "average"):
        return kernels[index], index
    stack = torch.stack(kernels)
    combined = stack.mean(0) if rule == "mean" else stack.median(0).values
    return combined / combined.sum(), index
