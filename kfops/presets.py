"""Named configurations in one place.

``paper`` reproduces the published recipe (appendix A.2: 128 filters, 600k Adam steps at
lr 1e-4 with cosine annealing, 64² crops) — a GPU recipe (~46 CPU-hours on 2 cores).
``cpu`` is the recipe chosen from the measured curve in ``benchmarks/results/`` (see the
README): a narrower network, a larger learning rate and a few thousand steps.
"""

from __future__ import annotations

from .diffusion.prior import PriorConfig
from .recon_config import ReconConfig

PRIOR_PRESETS: dict[str, dict] = {
    "paper": dict(hidden=128, steps=600_000, crop=64, batch=1, lr=1e-4),
    "cpu": dict(hidden=32, steps=2000, crop=64, batch=1, lr=1e-3),
    # seconds-long runs for tests and smoke checks (results are not meaningful)
    "smoke": dict(hidden=8, steps=5, crop=16, batch=1, lr=1e-3),
}


def prior_config(preset: str, channels: int = 3, **overrides) -> PriorConfig:
    """PriorConfig of a named preset, with optional overrides (e.g. steps=...)."""
    if preset not in PRIOR_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRIOR_PRESETS)}")
    values = dict(PRIOR_PRESETS[preset], channels=channels)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return PriorConfig(**values)


def recon_config(preset: str, **overrides):
    """ReconConfig of a named preset (Phase 2), with optional overrides applied as given:
    None is a value (``steps=None`` visits every t, ``resize_check=None`` turns the check off)."""
    if preset not in RECON_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(RECON_PRESETS)}")
    values = dict(RECON_PRESETS[preset])
    values.update(overrides)
    return ReconConfig(**values)


# Phase 2. ``paper``: appendix A.1/A.3/A.4 (every t from T_nd, 100 iterations at the first t
# and 20 after, Adam 1e-4 -> 1e-5 per t, U-Net 32 -> 512 over 5 levels, SIREN 5×256, ω=5);
# T_nd is not published, 400 is our choice. ``cpu``: the kernel is estimated on the two most
# textured disjoint 40×40 LR crops (a batch of two sharing the kernel: +0.22 dB over one
# crop on 15 held-out runs, level with it on the development benchmark;
# benchmarks/RESULTS.md) with a narrower, shallower U-Net on a respaced schedule (width 16,
# 4 levels, T_nd = 300; 5 levels, T_nd = 400 and width 8 — alone, with 1.67× the
# iterations or with 52² crops — were measured and not adopted: RESULTS.md, "Where the dB
# go", benchmarks/results/phase2_unet_*_cpu.tsv), then the whole image is
# super-resolved with the estimated kernel: back-projection refined under a TV prior
# (+0.13 dB over plain back-projection on 21 cases, benchmarks/RESULTS.md; its weights
# are for ×4 and scaled by 16/s², ReconConfig.final_weights; its peak Adam step
# ReconConfig.final_lr = 4e-3: +0.05 dB over 2e-3 on 26 cases,
# benchmarks/results/final_step_lr_cpu.tsv). The INR learns at 3e-4 while the U-Net uses
# 1e-3: measured better kernels than at 1e-3 on 5 of 6 cases
# (benchmarks/results/phase2_kernel_lr_cpu.tsv, benchmarks/RESULTS.md). The final kernel is
# resampled to the radius it had after timestep 2 where cross-validation on the LR image
# prefers that (kernel_radius_at, kernel_radius_cv): at this scale the radius shrinks along
# the run. Fixed before a fresh set of 8 cases, where it gained +1.05 dB over bicubic
# against +0.97 (benchmarks/results/kernel_radius_heldout3_cpu.tsv; +0.95 against +0.78 on
# 10 development cases, +0.39 against +0.28 on 6 earlier held-out ones). Last, the blur of
# an ordinary bicubic ×s downscale replaces the estimate where it predicts held-out LR pixels
# better (resize_check): on LR images that were only resized the estimate comes out too
# wide. Adopted by a rule fixed before it was tried (benchmarks/RESULTS.md, "Images that
# were only resized"): ×4, +0.69 dB against +0.03 on 12 resized images, +0.74 against +0.56
# on 6 fresh ones, +0.99 against +0.97 on 50 blurred cases (it switched 11 of them). It runs
# only where the LR image is sharp enough to be a plain downscale (resize_gate: blur score
# kfops.blur_metric.blur_effect below 0.4), as on the development benchmark it switched 10
# of 24 and cost 0.31 dB; gate fixed on 107 spent cases, then confirmed by a rule written
# beforehand on 13 fresh ones: +0.59 dB against +0.56 ungated, no resized case blocked
# (benchmarks/results/resize_check_gate_cpu.tsv). The final step's TV weight grows with the
# LR image's noise level σ̂ (kfops.noise.noise_sigma) as 1 + (σ̂/0.025)² (final_noise_ref),
# fixed on 13 spent cases and confirmed by a rule written beforehand on the 37 saved kernels
# of four later sets, noise added to the LR image: +0.74 dB over bicubic against +0.46 at
# σ = 0.02, +0.65 against −0.80 at σ = 0.04, +0.91 against +0.89 without noise
# (benchmarks/results/noise_step_cpu.tsv; benchmarks/RESULTS.md, "Noise"). An LR image read
# from a JPEG adds q̄/0.025 to that factor (final_jpeg_ref), q̄ its low-frequency luma step
# (kfops.jpeg.quant_step): fitted on 26 spent cases at qualities 30–95, confirmed by a rule
# written beforehand on the same 37: +0.73 / +0.55 / +0.44 / +0.37 dB over bicubic against
# +0.62 / +0.27 / +0.02 / −0.20 at qualities 90 / 75 / 50 / 30
# (benchmarks/results/noise_step_jpeg_rule_cpu.tsv). The estimate that reaches the final
# step loses its constant pedestal (kernel_floor, kfops.kernels.remove_floor): adopted by a
# rule written beforehand, on the 216 saved estimates of 19 earlier sets at ×2, ×3 and ×4,
# +0.05 dB over the estimate as it was (better on 89 of the 135 it moves, no set's mean
# down by more than 0.04, the worst case unchanged), most of it on the bad tail: bridge ×
# a 10-px motion −0.73 → −0.20 dB (benchmarks/results/kernel_floor_cpu.tsv).
RECON_PRESETS: dict[str, dict] = {
    "paper": dict(
        t_start=400,
        steps=None,
        iters_first=100,
        iters=20,
        lr=1e-4,
        lr_min=1e-5,
        unet_base=32,
        unet_levels=5,
        crop=None,
        final="phase2",
    ),
    "cpu": dict(
        t_start=300,
        steps=12,
        iters_first=60,
        iters=15,
        lr=1e-3,
        lr_min=1e-4,
        kernel_lr=3e-4,
        kernel_radius_at=2,
        kernel_radius_cv=True,
        resize_check="bicubic",
        resize_gate=0.4,
        resize_mean=2,
        kernel_floor=True,
        unet_base=16,
        unet_levels=4,
        crop=40,
        crops=2,
        final="tv",
        final_noise_ref=0.025,
        final_jpeg_ref=0.025,
    ),
    "smoke": dict(
        t_start=50,
        steps=2,
        iters_first=3,
        iters=2,
        lr=1e-3,
        lr_min=1e-4,
        unet_base=4,
        unet_levels=3,
        crop=16,
        final="tv",
        final_iters=3,
    ),
}
