"""What the steps after Phase 2 cost, measured on this machine: the time a deadline keeps
back for them, so that a time budget shortens Phase 2 rather than skipping the kernel
checks and the whole-image step.

Those steps are made of one kind of iteration: the degradation, its adjoint and the TV
gradient on an HR image (a conjugate-gradient step of the back-projection costs about as
much, without the TV term). :func:`post_phase2_seconds` times that pass at the sizes
involved and multiplies by the passes that :mod:`kfops.kernel_check` and
:func:`kfops.nonblind.tv_refine` were measured to take.
"""

from __future__ import annotations

import time

import torch

from .crops import CV_CROP
from .ops import degrade, degrade_adjoint, tv_grad
from .recon_config import ReconConfig

__all__ = ["iteration_seconds", "post_phase2_seconds"]

CG_ITERS = 20  # conjugate-gradient steps of a back-projection
# measured in passes of iteration_seconds on 2 cores (x4): one kernel's
# kernel_check.cv_error (two masked fits of 20 CG and 100 Adam steps) took 360-600 at
# 40²-128² LR, a tv_refine of 100 steps 142-155 there and 131 at 800×600
CV_PASSES = 500
STEP_PASSES = 1.3  # per step of the final back-projection and refinement
MARGIN = 1.5  # what is kept back over the estimate: the steps between, and a busy machine


def iteration_seconds(
    shape: tuple[int, int, int, int], kernel_size: int, scale: int, device: torch.device
) -> float:
    """Seconds of one degrade + adjoint + TV-gradient pass on an HR image of ``shape``
    (B, C, H, W), float32, on ``device`` (the mean of three, after a warm-up)."""
    x = torch.zeros(shape, device=device)
    k = torch.full((kernel_size, kernel_size), 1.0 / kernel_size**2, device=device)

    def once() -> None:
        r = degrade(x, k, scale, "reflect", check_values=False)
        degrade_adjoint(r, k, scale, "reflect", hr_size=shape[-2:]).add_(tv_grad(x))
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)

    once()
    t0 = time.perf_counter()
    for _ in range(3):
        once()
    return (time.perf_counter() - t0) / 3


def post_phase2_seconds(
    cfg: ReconConfig,
    lr_shape: tuple[int, ...],
    scale: int,
    kernel_size: int,
    device,
    resize_check: bool = True,
) -> float:
    """Estimated seconds of everything :meth:`kfops.Reconstructor.run` does after Phase 2
    for an LR image of ``lr_shape`` (1, C, h, w): the kernel checks (each candidate scored
    by fits to both checkerboard halves of the ≤ 128² luma crop) and the final step (the
    back-projection and ``final_iters`` refinement steps, twice where the resize check may
    average two images; the resize check and the final step once per run with
    ``consensus='average'``), times :data:`MARGIN`.
    ``resize_check=False``: the resize check will not run (its gate holds it off).
    0 where the Phase-2 image is the output."""
    if cfg.image_used:
        return 0.0
    _, c, h, w = lr_shape
    resize_check = resize_check and cfg.resize_check is not None
    # with 'average' every run's kernel meets the resize check and the final step; the
    # size check of all runs but the last is done before the next run's Phase 2
    runs = cfg.restarts if cfg.consensus == "average" else 1
    total = 0.0
    checked = 2 * bool(cfg.kernel_radius_at and cfg.kernel_radius_cv) + 2 * runs * resize_check
    if checked:
        side = (1, 1, scale * min(h, CV_CROP), scale * min(w, CV_CROP))
        total += checked * CV_PASSES * iteration_seconds(side, kernel_size, scale, device)
    steps = STEP_PASSES * (CG_ITERS + (cfg.final_iters if cfg.final == "tv" else 0))
    images = runs * (2 if resize_check and cfg.resize_mean else 1)
    full = (1, c, scale * h, scale * w)
    total += images * steps * iteration_seconds(full, kernel_size, scale, device)
    return MARGIN * total
