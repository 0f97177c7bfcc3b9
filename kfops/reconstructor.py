"""Phase 2 of KernelFusion (Algorithm 1): joint HR image and kernel estimation during the
reverse diffusion of the frozen patch prior.

At every timestep t (from T_nd down to 0, possibly respaced), n_iter joint Adam steps
on the U-Net R_θ and the kernel model INR_φ:

    k      = INR_φ()
    a      = R_θ(x̂₀ from the previous t)                 (first application)
    x_t    = μ(a, x_{t+1}) + σ ξ                          (or q(x_t | a) at the first t)
    b      = R_θ(PD.predict_x0(x_t, t))                   (second application, PD frozen)
    L      = ‖y − (a ⊛ k)↓s‖² + ‖y − (b ⊛ k)↓s‖² + w·COM(k)

then x̂₀ ← b and x_{t} kept for the next step. ``kernel_steps`` > 0 follows every joint
step with that many steps on INR_φ alone, a and b held fixed; ``kernel_radius_at`` > 0
resamples the final kernel to the radius it had after that timestep (with
``kernel_radius_cv``, only where that kernel predicts held-out LR pixels better);
``kernel_freeze`` > 0 holds INR_φ over the last timesteps (:class:`ReconConfig`). The
learning rate is cosine-annealed from ``lr`` to ``lr_min`` within each t. Images are in
model range [−1, 1] inside, [0, 1] outside; one kernel is shared by all colour channels.

Ablations (paper Tables 3–4): ``mode`` = ``dip`` (U-Net on fixed noise, no diffusion),
``unet_only`` (diffusion without PD), ``pd_unet`` (PD then one U-Net), ``full``;
``kernel_model`` = ``inr`` | ``direct_relu`` | ``direct_sigmoid`` | ``linear_cnn``.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .blur_metric import blur_effect
from .budget import post_phase2_seconds
from .consensus import consensus_kernel, kernel_spread
from .crops import cv_luma, phase2_crops
from .degradation import backproject, bicubic_upsample
from .diffusion.prior import PatchPrior, from_model, to_model
from .errors import DivergenceError, ImageError, KfopsError
from .guard import Snapshot, checked_loss
from .kernel_check import best_by_cv, resize_choice, resize_fallback
from .kernel_inr import (
    center_of_mass_loss,
    default_kernel_size,
    make_kernel_model,
    target_center,
)
from .kernels import dilate_kernel, gaussian, pad_alike, remove_floor
from .noise import noise_sigma
from .nonblind import tv_refine
from .ops import degrade
from .recon_config import ReconConfig
from .sparsity import kernel_sqrt_sparsity, normalized_sparsity
from .unet import UNet

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


def consistency_loss(
    pred: torch.Tensor, target: torch.Tensor, grad_weight: float = 0.0
) -> torch.Tensor:
    """The data term of Algorithm 1 between (B, C, h, w) tensors: the MSE of pred − target,
    + ``grad_weight`` × the MSEs of that residual's horizontal and vertical differences
    (a weight on its high frequencies; for a residual alternating ±a from pixel to pixel
    the loss is a²·(1 + 8·grad_weight), for a constant one a²)."""
    if not grad_weight:
        return F.mse_loss(pred, target)
    r = pred - target
    dx = r[..., :, 1:] - r[..., :, :-1]
    dy = r[..., 1:, :] - r[..., :-1, :]
    return r.square().mean() + grad_weight * (dx.square().mean() + dy.square().mean())


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
        center = target_center(ksize, s)
        if prior is not None:
            prior = prior.to(dev).eval().requires_grad_(False)
        y = to_model(lr)
        x0_init = to_model(bicubic_upsample(lr, s).clamp(0, 1))
        schedule = prior.schedule if prior is not None else _default_schedule()
        t_start = min(cfg.t_start, len(schedule) - 1)
        sub = _sub_schedule(schedule, t_start, cfg.steps, max(min(cfg.t_end, t_start - 1), 0))
        total = cfg.total_iterations()
        # the image both kernel checks score on, and the blur score of the resize gate: each
        # computed once, when first needed (not at all when no check runs)
        cv_image = functools.cache(lambda: cv_luma(lr_full))
        blur_score = functools.cache(lambda: lr_blur(lr_full))
        # Phase 2 stops early enough for the checks and the final step to finish in time
        phase2_deadline = deadline
        if deadline is not None:
            gated = cfg.resize_gate is not None and blur_score() >= cfg.resize_gate
            reserve = post_phase2_seconds(cfg, lr_full.shape, s, ksize, dev, not gated)
            phase2_deadline = deadline - reserve
        history: list[float] = []
        path: list[torch.Tensor] = []
        self.recoveries = 0
        t0 = time.perf_counter()

        def consistency(x0: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            """:func:`consistency_loss` of (x0 ⊛ k)↓s against the LR batch; k (K, K) shared,
            or (B, K, K) one per batch element (the mean of their losses, which is the
            batch's)."""
            if k.dim() == 2:
                return consistency_loss(
                    degrade(x0, k, s, "reflect", check_values=False), y, cfg.grad_weight
                )
            terms = [
                consistency_loss(
                    degrade(x0[i : i + 1], k[i], s, "reflect", check_values=False),
                    y[i : i + 1],
                    cfg.grad_weight,
                )
                for i in range(k.shape[0])
            ]
            return torch.stack(terms).mean()

        def com(k: torch.Tensor) -> torch.Tensor:
            if k.dim() == 2:
                return center_of_mass_loss(k, center)
            return torch.stack([center_of_mass_loss(ki, center) for ki in k]).mean()

        def noise(shape):
            return torch.randn(shape, generator=g).to(dev)

        def objective(images: tuple[torch.Tensor, ...], k: torch.Tensor) -> torch.Tensor:
            """Σ consistency over ``images`` + w·COM(k): the loss of Algorithm 1 (+
            ``sharp_weight`` × Σ normalised gradient sparsity of ``images``; with
            ``kernel_term='second'`` the first term sees the kernel detached)."""
            first_k = k.detach() if cfg.kernel_term == "second" and len(images) > 1 else k
            loss = consistency(images[0], first_k)
            for im in images[1:]:
                loss = loss + consistency(im, k)
            if cfg.sharp_weight:
                loss = loss + cfg.sharp_weight * sum(normalized_sparsity(im) for im in images)
            if cfg.kernel_sparsity:
                loss = loss + cfg.kernel_sparsity * kernel_sqrt_sparsity(k)
            return loss + cfg.com_weight * com(k)

        n_kernels = lr.shape[0] if cfg.crop_kernels == "each" else 1

        def estimate() -> tuple[list[torch.Tensor], torch.Tensor, bool]:
            """One run of Algorithm 1 from fresh networks: (its kernels: one, or one per
            crop with ``crop_kernels='each'``; last x̂₀ in model range; stopped by the
            deadline)."""
            init_seed = int(torch.randint(0, 2**62, (1,), generator=g))
            # initialisation driven by the generator: the networks are built on the CPU, so
            # only the CPU generator is seeded (and restored after); a CUDA RNG stays untouched
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(init_seed)
                kmodel = KernelSet(
                    [
                        make_kernel_model(cfg.kernel_model, ksize, cfg.kernel_extent)
                        for _ in range(n_kernels)
                    ]
                ).to(dev)
                unet = UNet(lr.shape[1], cfg.unet_base, cfg.unet_levels).to(dev)
            if cfg.kernel_init > 0:
                sigma = cfg.kernel_init * s / 4
                target = gaussian(ksize, sigma, torch.float32, (center, center))
                fit_kernel_model(kmodel, target.to(dev))
            # the kernel model may run at its own peak rate (annealed by the same factor)
            kernel_ratio = 1.0 if cfg.kernel_lr is None else cfg.kernel_lr / cfg.lr
            opt = torch.optim.Adam(
                [
                    {"params": list(unet.parameters()), "ratio": 1.0},
                    {"params": list(kmodel.parameters()), "ratio": kernel_ratio},
                ],
                lr=cfg.lr,
            )
            params = [p for group in opt.param_groups for p in group["params"]]
            snapshot = Snapshot([unet, kmodel], [opt])
            lr_scale = [1.0]
            x0_prev = x0_init
            recoveries = [0]

            def set_lr(it: int, n: int) -> None:
                frac = it / max(n - 1, 1)
                lr_now = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * frac))
                for group in opt.param_groups:
                    group["lr"] = lr_now * lr_scale[0] * group["ratio"]

            def optimise(loss: torch.Tensor) -> None:
                """One Adam step; a non-finite loss or gradient restores the state at the
                start of this timestep and halves the learning rate (at most max_recoveries
                times, then DivergenceError)."""
                opt.zero_grad(set_to_none=True)
                loss.backward()
                value = checked_loss(loss, params)  # the step's one wait for the device
                if value is None:
                    self.recoveries += 1
                    recoveries[0] += 1
                    if recoveries[0] > cfg.max_recoveries:
                        raise DivergenceError(
                            f"Phase 2 diverged (NaN/inf) after {cfg.max_recoveries} returns to "
                            "the last good state with a lower learning rate"
                        )
                    snapshot.restore()
                    lr_scale[0] *= 0.5
                    warnings.warn(
                        "non-finite loss in Phase 2: restored the last good state, learning rate "
                        "halved",
                        RuntimeWarning,
                        stacklevel=4,
                    )
                else:
                    opt.step()
                history.append(float(loss.detach()) if value is None else value)
                if progress is not None:
                    progress(len(history), total, history[-1])

            def kernel_only(images: tuple[torch.Tensor, ...]) -> None:
                if cfg.kernel_steps:
                    fixed = tuple(im.detach() for im in images)
                    kernel_only_steps(kmodel, opt, lambda k: objective(fixed, k), cfg.kernel_steps)

            def kernel(frozen: bool) -> torch.Tensor:
                if not frozen:
                    return kmodel()
                with torch.no_grad():  # no gradient: Adam leaves the kernel model alone
                    return kmodel()

            out = x0_prev
            stopped = False
            path.clear()  # the kernel after every timestep (of this run)

            def mark() -> None:
                with torch.no_grad():
                    path.append(kmodel().detach().cpu())

            last = [time.monotonic(), 0.0]  # when the last iteration ended, and its length

            def past(limit: float | None) -> bool:
                """Whether the next iteration, as long as the last, would end after
                ``limit``."""
                now = time.monotonic()
                last[:] = [now, now - last[0]]
                return limit is not None and now + last[1] > limit

            if cfg.mode == "dip":
                z = noise(x0_prev.shape) * 0.1
                n_dip = cfg.schedule_iterations()
                n_learn = cfg.kernel_iterations()  # then the kernel is held
                snapshot.take(0)
                for it in range(cfg.run_iterations()):
                    if it % 20 == 0 and it:
                        snapshot.take(it)
                    set_lr(it, n_dip)
                    frozen = it >= n_learn  # (never, unless the image is kept)
                    k = kernel(frozen)
                    out = unet(z)
                    optimise(objective((out,), k))
                    if not frozen:
                        kernel_only((out,))
                    done = it + 1 - cfg.iters_first
                    if done >= 0 and done % max(cfg.iters, 1) == 0:
                        mark()
                    if past(phase2_deadline):
                        stopped = True
                        break
            else:
                x_next = None
                n = len(sub)
                for i in reversed(range(n)):
                    iters = cfg.iters_first if i == n - 1 else cfg.iters
                    t_model = sub.timesteps[i : i + 1].to(dev).expand(x0_prev.shape[0])
                    frozen = i < cfg.kernel_freeze  # one of the last kernel_freeze timesteps
                    if frozen and not cfg.image_used:
                        break
                    xi = noise(x0_prev.shape)
                    snapshot.take(i)
                    for it in range(iters):
                        set_lr(it, iters)
                        k = kernel(frozen)
                        if cfg.mode == "full":
                            a = unet(x0_prev)
                            x_t = _next_xt(sub, a, x_next, i, xi)
                            b = unet(prior.predict_x0(x_t, t_model))
                            images = (a, b)
                        else:
                            x_t = _next_xt(sub, x0_prev, x_next, i, xi)
                            inp = prior.predict_x0(x_t, t_model) if cfg.mode == "pd_unet" else x_t
                            b = unet(inp)
                            images = (b,)
                        optimise(objective(images, k))
                        if not frozen:
                            kernel_only(images)
                        if past(phase2_deadline):
                            stopped = True
                            break
                    x0_prev = b.detach()
                    x_next = x_t.detach()
                    out = x0_prev
                    if stopped:
                        break
                    mark()
            with torch.no_grad():  # kernels are small: checked and combined on the CPU
                finals = list(kmodel().detach().cpu().reshape(-1, ksize, ksize))
            m = cfg.kernel_radius_at
            kernels = []
            for i, kernel in enumerate(finals):
                if m > 0 and len(path) >= m:
                    early = path[m - 1].reshape(-1, ksize, ksize)[i]
                    factor = radius_factor(early, kernel)
                    if factor is not None:
                        kernel = resized_kernel(kernel, dilate_kernel(kernel, factor))
                kernels.append(kernel)
            return kernels, out.detach(), stopped

        def resized_kernel(final: torch.Tensor, resized: torch.Tensor) -> torch.Tensor:
            """``resized`` unless ``kernel_radius_cv`` finds (or has no time to find) that it
            predicts held-out LR pixels worse than ``final``."""
            if not cfg.kernel_radius_cv:
                return resized
            if deadline is not None and time.monotonic() > deadline:
                return final
            return (final, resized)[best_by_cv(cv_image(), [final, resized], s, eps, tv_weight)]

        runs: list[tuple[torch.Tensor, torch.Tensor]] = []
        for _ in range(cfg.restarts):
            kernels_r, out_r, stopped = estimate()
            if not (stopped and runs):  # a cut-short restart only counts when it is alone
                runs.extend((kernel_r, out_r) for kernel_r in kernels_r)
            if stopped:
                break
        # the size check may have resampled the runs' kernels to different sizes
        padded = pad_alike([k for k, _ in runs])
        runs = [(k, o) for k, (_, o) in zip(padded, runs, strict=True)]
        kernel, chosen = consensus_kernel([k for k, _ in runs], cfg.consensus)
        if cfg.image_used:  # an image and its own kernel
            kernel = runs[chosen][0]

        def checked(kernel: torch.Tensor) -> tuple[torch.Tensor, str | None, torch.Tensor | None]:
            """``kernel`` after the resize check, where it applies, the method whose filter
            replaced it (else None), and the filter whose final image is to be averaged with
            ``kernel``'s (``resize_mean``; else None); an estimate kept is then cleared of
            its floor where ``kernel_floor`` is set."""
            kernel, used, partner = resize_checked(kernel)
            if cfg.kernel_floor and used is None:
                kernel = remove_floor(kernel)
            return kernel, used, partner

        def resize_checked(
            kernel: torch.Tensor,
        ) -> tuple[torch.Tensor, str | None, torch.Tensor | None]:
            """:func:`checked` without the floor removal."""
            if (
                cfg.resize_check is None
                or cfg.image_used
                or (deadline is not None and time.monotonic() > deadline)
                or (
                    cfg.resize_max_radius is not None
                    and kernel_spread(kernel) >= cfg.resize_max_radius * s / 4
                )
            ):
                return kernel, None, None
            if cfg.resize_gate is not None and blur_score() >= cfg.resize_gate:
                return kernel, None, None
            if cfg.resize_mean and s >= cfg.resize_mean:
                choice, candidate = resize_choice(
                    cv_image(), kernel, s, cfg.resize_check, eps, tv_weight
                )
                if choice == "filter":
                    return candidate, cfg.resize_check, None
                return kernel, None, (candidate if choice == "mean" else None)
            kernel, used = resize_fallback(cv_image(), kernel, s, cfg.resize_check, eps, tv_weight)
            return kernel, (cfg.resize_check if used else None), None

        def final_image(
            kernel: torch.Tensor, first: int, total: int, halves: int = 0
        ) -> torch.Tensor:
            """The final step with ``kernel``; its progress counted from ``first`` of
            ``total`` steps, at half speed where ``halves`` (1 or 2, the half it is of a
            pair whose images are averaged)."""
            if cfg.final == "tv":

                def shown(done: int, iters: int) -> None:
                    if halves:
                        done = ((halves - 1) * iters + done) // 2
                    final_progress(first + done, total)

                return tv_refine(
                    lr_full,
                    kernel,
                    s,
                    tv_weight,
                    cfg.final_iters,
                    eps=eps,
                    step=cfg.final_lr,
                    deadline=deadline,
                    progress=None if final_progress is None else shown,
                )
            return backproject(lr_full, kernel.to(lr_full), s, eps=eps)

        def final_pair(
            kernel: torch.Tensor, partner: torch.Tensor | None, first: int, total: int
        ) -> tuple[torch.Tensor, bool]:
            """:func:`final_image` of ``kernel``, or the mean of those of ``kernel`` and
            ``partner`` (the second one skipped past the deadline), and whether it is that
            mean."""
            if partner is None:
                return final_image(kernel, first, total), False
            image = final_image(kernel, first, total, halves=1)
            if deadline is not None and time.monotonic() > deadline:
                return image, False
            return image.add_(final_image(partner, first, total, halves=2)).div_(2), True

        # ``average``: the final step with every run's kernel, the images averaged
        averaged = cfg.consensus == "average" and len(runs) > 1
        if cfg.image_used:  # the Phase-2 image itself: no final step
            outs = [o for _, o in runs] if averaged else [runs[chosen][1]]
            hr = from_model(torch.stack(outs).mean(0).detach()).clamp(0, 1)
            fallback, mixed, t_final = None, None, None
        elif averaged:
            t_final = time.perf_counter()
            order = [chosen, *(i for i in range(len(runs)) if i != chosen)]
            total_steps = len(runs) * cfg.final_iters
            hr_sum, n = None, 0
            for i in order:  # the medoid first: past the deadline, the images made so far
                if n and deadline is not None and time.monotonic() > deadline:
                    break
                k_i, used, partner = checked(runs[i][0])
                image, pair = final_pair(k_i, partner, n * cfg.final_iters, total_steps)
                if i == chosen:
                    kernel, fallback = k_i, used
                    mixed = cfg.resize_check if pair else None
                hr_sum = image if hr_sum is None else hr_sum.add_(image)
                n += 1
            hr = hr_sum.div_(n)
        else:
            kernel, fallback, partner = checked(kernel)
            t_final = time.perf_counter()
            hr, pair = final_pair(kernel, partner, 0, cfg.final_iters)
            mixed = cfg.resize_check if pair else None
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


def radius_factor(early: torch.Tensor, final: torch.Tensor) -> float | None:
    """The factor that gives ``final`` the RMS radius of ``early`` (``kernel_radius_at``),
    or None where either radius is below 0.05 px or not finite (a kernel collapsed to one
    tap has no shape to dilate)."""
    a, b = kernel_spread(early), kernel_spread(final)
    if not (math.isfinite(a) and math.isfinite(b)) or min(a, b) < 0.05:
        return None
    return a / b


def fit_kernel_model(kmodel: nn.Module, target: torch.Tensor, steps: int = 200, lr: float = 1e-3):
    """Fit ``kmodel()`` to ``target`` (K, K) (or every kernel of a :class:`KernelSet`): Adam
    on the summed squared error, cosine-annealed from ``lr``; a starting point for Phase 2."""
    opt = torch.optim.Adam(kmodel.parameters(), lr=lr)
    for it in range(steps):
        opt.param_groups[0]["lr"] = lr * 0.5 * (1 + math.cos(math.pi * it / steps))
        loss = ((kmodel() - target) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


class KernelSet(nn.Module):
    """One kernel model, or one per crop: returns (K, K), or (B, K, K) for B models."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self) -> torch.Tensor:
        kernels = [model() for model in self.models]
        return kernels[0] if len(kernels) == 1 else torch.stack(kernels)


def kernel_only_steps(kmodel, opt, loss_fn, steps: int) -> list[float]:
    """``steps`` steps of ``opt`` on the kernel model alone, minimising ``loss_fn(kmodel())``
    with the images inside it held fixed. Parameters without a gradient (the U-Net's, in
    Phase 2's shared Adam) are skipped by the step, momentum and all. Stops early at a
    non-finite loss or gradient (the joint step's recovery handles divergence); returns the
    loss before each step taken."""
    params = list(kmodel.parameters())
    losses: list[float] = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(kmodel())
        loss.backward()
        value = checked_loss(loss, params)
        if value is None:
            break
        opt.step()
        losses.append(value)
    opt.zero_grad(set_to_none=True)
    return losses


def _default_schedule():
    from .diffusion.schedule import DDPMSchedule

    return DDPMSchedule.linear(1000)


def _sub_schedule(schedule, t_start: int, steps: int | None, t_end: int = 0):
    """The schedule restricted to timesteps t_end..t_start, respaced to ``steps`` entries
    (its first entry, t_end, ends the reverse process: the posterior that entry would
    give, computed as if it were t = 0, is never drawn from)."""
    from .diffusion.schedule import DDPMSchedule

    keep = slice(t_end, t_start + 1)
    base = DDPMSchedule(schedule.alphas_cumprod[keep], schedule.timesteps[keep])
    return base if steps is None else base.respaced(steps)


def _next_xt(sub, x0: torch.Tensor, x_next: torch.Tensor | None, i: int, xi: torch.Tensor):
    """x_t from the refined x̂₀: q(x_t | x̂₀) at the first step, else the posterior
    q(x_t | x_{t+1}, x̂₀) (schedule index i + 1) sampled with the fixed noise ξ."""
    if x_next is None:
        return sub.q_sample(x0, torch.tensor([i]), xi)
    mean, var = sub.posterior(x0, x_next, torch.tensor([i + 1]))
    return mean + var.sqrt() * xi
