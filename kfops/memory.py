"""Peak-memory estimate of a blind SR run, checked before any work starts.

The per-pixel costs were measured on the CPU (peak RSS of one Phase-2 iteration with
gradients, and of back-projection, at two sizes; the slope is what grows with the image)
and are rounded up: the estimate is meant to refuse runs that cannot fit, not to be exact.
"""

from __future__ import annotations

import os

import torch

from .crops import phase2_pixels
from .errors import ResourceError

__all__ = ["available_bytes", "check_memory", "estimate_bytes"]

GIB = 1024**3
BASE_BYTES = 512 * 1024**2  # interpreter, torch, weights, optimizer state
PHASE2_BYTES_PER_CHANNEL = 150  # per HR pixel, per (PD width + U-Net base width)
BACKPROJECT_BYTES = 40  # per HR pixel per colour channel (CG vectors, float32)
# the TV refinement: back-projection, then the iterate, its gradient and two Adam moments
# (measured 38-42 bytes on the CPU, tests/test_memory.py)
TV_REFINE_BYTES = 64


def estimate_bytes(
    lr_hw: tuple[int, int], channels: int, scale: int, recon_config, prior_config
) -> int:
    """Peak bytes of ``kf upscale``: the larger of Phase 2 (on the crop, or the whole
    image) and the final SR of the whole image (back-projection, possibly TV-refined),
    plus a fixed base."""
    h, w = lr_hw
    cfg = recon_config
    if cfg.crop is not None:
        pixels = phase2_pixels(h, w, cfg.crop, cfg.crops, cfg.crop_fill)
    else:
        pixels = h * w
    width = prior_config.hidden + cfg.unet_base
    phase2 = pixels * scale * scale * PHASE2_BYTES_PER_CHANNEL * width
    final = 0
    if cfg.final == "tv":
        final = h * w * scale * scale * channels * TV_REFINE_BYTES
    elif cfg.crop is not None or cfg.final == "backproject":
        final = h * w * scale * scale * channels * BACKPROJECT_BYTES
    crop = min(prior_config.crop, h) * min(prior_config.crop, w)
    phase1 = crop * PHASE2_BYTES_PER_CHANNEL * prior_config.hidden * prior_config.batch
    return BASE_BYTES + max(phase2, final, phase1)


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA free memory, or the OS's available memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def check_memory(needed: int, device: torch.device, what: str, hint: str = "") -> None:
    """Raise :class:`ResourceError` when ``needed`` exceeds 90% of what is available."""
    free = available_bytes(device)
    if needed > 0.9 * free:
        where = "GPU" if device.type == "cuda" else "RAM"
        tail = f"; {hint}" if hint else ""
        raise ResourceError(
            f"{what} needs about {needed / GIB:.1f} GiB but only {free / GIB:.1f} GiB of "
            f"{where} is available{tail}"
        )
