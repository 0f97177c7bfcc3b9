"""Phase 2 of KernelFusion and what follows it: :class:`Reconstructor` runs Algorithm 1
(:mod:`kfops.algorithm1`) on the LR image or its crops, once or ``restarts`` times, then
the checks on the kernel and the final step on the whole image.

After a run, ``kernel_radius_at`` > 0 resamples its final kernel to the radius it had
after that timestep (with ``kernel_radius_cv``, only where that kernel predicts held-out
LR pixels better); the ``consensus`` rule combines the runs' kernels; the resize check
(``resize_check``) may replace the estimate by the blur of a plain downscale, or average
their final images; ``kernel_floor`` removes a constant pedestal; the final step
(``final``) is the Phase-2 image itself, a back-projection with the kernel, or that
back-projection refined under a TV prior (:class:`ReconConfig`). Images are [0, 1]
outside; one kernel is shared by all colour channels.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import torch

from .algorithm1 import Algorithm1
from .blur_metric import blur_effect
from .budget import post_phase2_seconds
from .consensus import consensus_kernel, kernel_spread
from .crops import cv_luma, phase2_crops
from .degradation import backproject
from .diffusion.prior import PatchPrior, from_model
from .errors import DivergenceError, ImageError, KfopsError
from .kernel_check import best_by_cv, resize_choice, resize_fallback
from .kernel_inr import default_kernel_size
from .kernels import dilate_kernel, pad_alike, remove_floor
from .noise import noise_sigma
from .nonblind import tv_refine
from .recon_config import ReconConfig

__all__ = [
    "ReconConfig",
    "Reconstructor",
    "ReconResult",
]


@dataclass
class ReconResult:
    """hr: (1, C, s·h, s·w) in [0, 1], on the image's device; kernel: (K, K) summing to 1,
    on the CPU (as are ``estimates`` and ``kernel_path``); history: loss per
    iteration; seconds: wall time of Phase 2, final step included; final_seconds: that of
    the final step (back-projection or TV refinement of the whole image; 0 when the
    Phase-2 image is returned as it is); estimates: the kernel of every run that counted
    (one unless ``restarts`` > 1; ``kernel`` is their consensus); kernel_path: the kernel
    model's output after every timestep of the last run (in ``dip`` mode after as many
    iterations; (B, K, K), one per crop, with ``crop_kernels='each'``), before any
    ``kernel_radius_at`` resampling; fallback: the ``resize_check`` method when its filter
    replaced the estimate (``kernel`` is then that filter), else None; mixed: the
    ``resize_check`` method whose filter's final image was averaged with the estimate's
    (``resize_mean``; ``kernel`` is then the estimate), else None; noise: the LR
    image's estimated noise level that set the final step's weight (0 when
    ``final_noise_ref`` is None); jpeg_step: the JPEG step that set it too (the one passed
    to :meth:`Reconstructor.run`; 0 when ``final_jpeg_ref`` is None)."""

    hr: torch.Tensor
    kernel: torch.Tensor
    history: list[float]
    seconds: float
    final_seconds: float = 0.0
    estimates: list[torch.Tensor] = field(default_factory=list)
    kernel_path: list[torch.Tensor] = field(default_factory=list)
    fallback: str | None = None
    mixed: str | None = None
    noise: float = 0.0
    jpeg_step: float = 0.0


def lr_blur(lr: torch.Tensor) -> float:
    """:func:`kfops.blur_metric.blur_effect` of the LR image ``lr`` (1, C, h, w) in [0, 1]
    (its luma; 9-tap re-blur), the score ``resize_gate`` compares; 1 (blurred) for an
    image under 9 pixels on a side, too small to score."""
    if min(lr.shape[-2:]) < 9:
        return 1.0
    return blur_effect(lr, taps=9)


class Reconstructor:
    """Runs Algorithm 1 on one LR image with a trained (frozen) :class:`PatchPrior`."""

    def __init__(self, scale: int, config: ReconConfig | None = None) -> None:
        self.scale = int(scale)
        self.config = config or ReconConfig()
        self.config.validate()

    def run(
        self,
        lr_image: torch.Tensor,
        prior: PatchPrior | None,
        generator: torch.Generator | None = None,
        progress=None,
        deadline: float | None = None,
        final_progress=None,
        jpeg_step: float = 0.0,
    ) -> ReconResult:
        """lr_image: (1, C, h, w) in [0, 1]. ``progress(done, total, loss)`` is called
        after every Phase-2 iteration, ``final_progress(done, total)`` after every step of
        the final TV refinement (``final='tv'``); ``deadline`` (time.monotonic) stops
        Phase 2 and the refinement early. ``jpeg_step``: the low-frequency luma step of the
        JPEG the image was read from (:func:`kfops.jpeg.quant_step`; 0 for lossless input),
        which raises the final step's TV weight where ``final_jpeg_ref`` is set."""
        cfg, s = self.config, self.scale
        if lr_image.dim() != 4 or lr_image.shape[0] != 1:
            raise ImageError(f"expected one image (1, C, h, w), got {tuple(lr_image.shape)}")
        if cfg.mode in ("pd_unet", "full") and prior is None:
            raise KfopsError(f"mode {cfg.mode!r} needs a trained PatchPrior")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        dev = lr_image.device
        lr_full = lr_image.float()
        # the LR image's noise level sets the final step's weights (0 when not asked for),
        # which the kernel checks use too; final_weights also checks jpeg_step
        noise_level = noise_sigma(lr_full) if cfg.final_noise_ref is not None else 0.0
        eps, tv_weight = cfg.final_weights(s, noise_level, jpeg_step)
        if cfg.crop is not None:
            side, corners = phase2_crops(lr_full, cfg.crop, cfg.crops, cfg.crop_rule, cfg.crop_fill)
            lr = torch.cat([lr_full[..., y : y + side, x : x + side] for y, x in corners])
        else:
            lr = lr_full
        if min(lr.shape[-2:]) < 4:
            raise ImageError(f"image {tuple(lr.shape[-2:])} is too small (minimum 4×4 pixels)")
        ksize = cfg.kernel_size or default_kernel_size(s)
        after = _AfterPhase2(cfg, s, lr_full, eps, tv_weight, deadline, final_progress)
        # Phase 2 stops early enough for the checks and the final step to finish in time
        phase2_deadline = deadline
        if deadline is not None:
            reserve = post_phase2_seconds(cfg, lr_full.shape, s, ksize, dev, not after.gated())
            phase2_deadline = deadline - reserve
        history: list[float] = []
        self.recoveries = 0
        t0 = time.perf_counter()
        algo = Algorithm1(cfg, s, lr, prior, ksize, g, history, progress)
        runs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (kernel, last x̂₀) per estimate
        path: list[torch.Tensor] = []  # the kernel after every timestep of the last run
        m = cfg.kernel_radius_at
        for _ in range(cfg.restarts):
            run = algo.run(phase2_deadline)
            self.recoveries = algo.recoveries
            path = run.path
            early = path[m - 1].reshape(-1, ksize, ksize) if m > 0 and len(path) >= m else None
            kernels_r = [
                after.size_checked(k, None if early is None else early[i])
                for i, k in enumerate(run.kernels)
            ]
            if not (run.stopped and runs):  # a cut-short restart only counts when it is alone
                runs.extend((kernel_r, run.image) for kernel_r in kernels_r)
            if run.stopped:
                break
        # the size check may have resampled the runs' kernels to different sizes
        padded = pad_alike([k for k, _ in runs])
        runs = [(k, o) for k, (_, o) in zip(padded, runs, strict=True)]
        kernel, chosen = consensus_kernel([k for k, _ in runs], cfg.consensus)
        if cfg.image_used:  # an image and its own kernel
            kernel = runs[chosen][0]
        hr, kernel, fallback, mixed, t_final = after.finish(runs, kernel, chosen)
        if not (bool(torch.isfinite(kernel).all()) and bool(torch.isfinite(hr).all())):
            raise DivergenceError("Phase 2 produced NaN/inf values; nothing was written")
        t_end = time.perf_counter()
        return ReconResult(
            hr=hr,
            kernel=kernel,
            history=history,
            seconds=t_end - t0,
            final_seconds=0.0 if t_final is None else t_end - t_final,
            estimates=[k for k, _ in runs],
            kernel_path=list(path),
            fallback=fallback,
            mixed=mixed,
            noise=noise_level,
            jpeg_step=jpeg_step if cfg.final_jpeg_ref is not None else 0.0,
        )


class _AfterPhase2:
    """The checks on Phase 2's kernels and the final step of one :meth:`Reconstructor.run`:
    on the whole LR image ``lr_full`` (1, C, h, w) in [0, 1], with the final step's damping
    ``eps`` and TV weight, each skipped (or cut short) once ``deadline`` (time.monotonic)
    has passed."""

    def __init__(
        self,
        cfg: ReconConfig,
        scale: int,
        lr_full: torch.Tensor,
        eps: float,
        tv_weight: float,
        deadline: float | None,
        final_progress=None,
    ) -> None:
        self.cfg, self.s, self.lr_full = cfg, scale, lr_full
        self.eps, self.tv_weight = eps, tv_weight
        self.deadline, self.final_progress = deadline, final_progress
        # the image both kernel checks score on, and the blur score of the resize gate: each
        # computed once, when first needed (not at all when no check runs)
        self.cv_image = functools.cache(lambda: cv_luma(lr_full))
        self.blur_score = functools.cache(lambda: lr_blur(lr_full))

    def late(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def gated(self) -> bool:
        """Whether the resize gate holds the resize check off (the LR image is blurred)."""
        gate = self.cfg.resize_gate
        return gate is not None and self.blur_score() >= gate

    # ---------------------------------------------------------------- the checks
    def size_checked(self, kernel: torch.Tensor, early: torch.Tensor | None) -> torch.Tensor:
        """``kernel`` resampled to the RMS radius of ``early``, the kernel after timestep
        ``kernel_radius_at`` (None: the run had no such timestep), unless
        ``kernel_radius_cv`` finds (or has no time to find) that it predicts held-out LR
        pixels worse than ``kernel``."""
        factor = None if early is None else radius_factor(early, kernel)
        if factor is None:
            return kernel
        resized = dilate_kernel(kernel, factor)
        if not self.cfg.kernel_radius_cv:
            return resized
        if self.late():
            return kernel
        candidates = [kernel, resized]
        return candidates[best_by_cv(self.cv_image(), candidates, self.s, self.eps, self.tv_weight)]

    def checked(self, kernel: torch.Tensor) -> tuple[torch.Tensor, str | None, torch.Tensor | None]:
        """``kernel`` after the resize check, where it applies, the method whose filter
        replaced it (else None), and the filter whose final image is to be averaged with
        ``kernel``'s (``resize_mean``; else None); an estimate kept is then cleared of
        its floor where ``kernel_floor`` is set."""
        kernel, used, partner = self.resize_checked(kernel)
        if self.cfg.kernel_floor and used is None:
            kernel = remove_floor(kernel)
        return kernel, used, partner

    def resize_checked(
        self, kernel: torch.Tensor
    ) -> tuple[torch.Tensor, str | None, torch.Tensor | None]:
        """:meth:`checked` without the floor removal."""
        cfg, s = self.cfg, self.s
        if (
            cfg.resize_check is None
            or cfg.image_used
            or self.late()
            or (
                cfg.resize_max_radius is not None
                and kernel_spread(kernel) >= cfg.resize_max_radius * s / 4
            )
        ):
            return kernel, None, None
        if self.gated():
            return kernel, None, None
        image, weights = self.cv_image(), (self.eps, self.tv_weight)
        if cfg.resize_mean and s >= cfg.resize_mean:
            choice, candidate = resize_choice(image, kernel, s, cfg.resize_check, *weights)
            if choice == "filter":
                return candidate, cfg.resize_check, None
            return kernel, None, (candidate if choice == "mean" else None)
        kernel, used = resize_fallback(image, kernel, s, cfg.resize_check, *weights)
        return kernel, (cfg.resize_check if used else None), None

    # ---------------------------------------------------------------- the final step
    def final_image(
        self, kernel: torch.Tensor, first: int, total: int, halves: int = 0
    ) -> torch.Tensor:
        """The final step with ``kernel``; its progress counted from ``first`` of ``total``
        steps, at half speed where ``halves`` (1 or 2, the half it is of a pair whose images
        are averaged)."""
        cfg, final_progress = self.cfg, self.final_progress
        if cfg.final == "tv":

            def shown(done: int, iters: int) -> None:
                if halves:
                    done = ((halves - 1) * iters + done) // 2
                final_progress(first + done, total)

            return tv_refine(
                self.lr_full,
                kernel,
                self.s,
                self.tv_weight,
                cfg.final_iters,
                eps=self.eps,
                step=cfg.final_lr,
                deadline=self.deadline,
                progress=None if final_progress is None else shown,
            )
        return backproject(self.lr_full, kernel.to(self.lr_full), self.s, eps=self.eps)

    def final_pair(
        self, kernel: torch.Tensor, partner: torch.Tensor | None, first: int, total: int
    ) -> tuple[torch.Tensor, bool]:
        """:meth:`final_image` of ``kernel``, or the mean of those of ``kernel`` and
        ``partner`` (the second one skipped past the deadline), and whether it is that
        mean."""
        if partner is None:
            return self.final_image(kernel, first, total), False
        image = self.final_image(kernel, first, total, halves=1)
        if self.late():
            return image, False
        return image.add_(self.final_image(partner, first, total, halves=2)).div_(2), True

    def finish(
        self, runs: list[tuple[torch.Tensor, torch.Tensor]], kernel: torch.Tensor, chosen: int
    ) -> tuple[torch.Tensor, torch.Tensor, str | None, str | None, float | None]:
        """From the runs' (kernel, last x̂₀) pairs, their consensus ``kernel`` and the index
        ``chosen`` of the run it came from (or stands for): (HR image in [0, 1], the kernel
        kept, the resize method whose filter replaced it or None, the one whose image was
        averaged in or None, when the final step started (perf_counter) or None)."""
        cfg = self.cfg
        # ``average``: the final step with every run's kernel, the images averaged
        averaged = cfg.consensus == "average" and len(runs) > 1
        if cfg.image_used:  # the Phase-2 image itself: no final step
            outs = [o for _, o in runs] if averaged else [runs[chosen][1]]
            hr = from_model(torch.stack(outs).mean(0).detach()).clamp(0, 1)
            return hr, kernel, None, None, None
        if not averaged:
            kernel, fallback, partner = self.checked(kernel)
            t_final = time.perf_counter()
            hr, pair = self.final_pair(kernel, partner, 0, cfg.final_iters)
            return hr, kernel, fallback, (cfg.resize_check if pair else None), t_final
        t_final = time.perf_counter()
        order = [chosen, *(i for i in range(len(runs)) if i != chosen)]
        total_steps = len(runs) * cfg.final_iters
        hr_sum, n = None, 0
        fallback = mixed = None
        for i in order:  # the medoid first: past the deadline, the images made so far
            if n and self.late():
                break
            k_i, used, partner = self.checked(runs[i][0])
            image, pair = self.final_pair(k_i, partner, n * cfg.final_iters, total_steps)
            if i == chosen:
                kernel, fallback = k_i, used
                mixed = cfg.resize_check if pair else None
            hr_sum = image if hr_sum is None else hr_sum.add_(image)
            n += 1
        return hr_sum.div_(n), kernel, fallback, mixed, t_final


def radius_factor(early: torch.Tensor, final: torch.Tensor) -> float | None:
    """The factor that gives ``final`` the RMS radius of ``early`` (``kernel_radius_at``),
    or None where either radius is below 0.05 px or not finite (a kernel collapsed to one
    tap has no shape to dilate)."""
    a, b = kernel_spread(early), kernel_spread(final)
    if not (math.isfinite(a) and math.isfinite(b)) or min(a, b) < 0.05:
        return None
    return a / b
