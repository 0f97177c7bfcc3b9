"""One run of Algorithm 1 (Phase 2 of KernelFusion) on a batch of LR crops: joint HR image
and kernel estimation during the reverse diffusion of the frozen patch prior.

At every timestep t (from T_nd down to 0, possibly respaced), n_iter joint Adam steps
on the U-Net R_θ and the kernel model INR_φ:

    k      = INR_φ()
    a      = R_θ(x̂₀ from the previous t)                 (first application)
    x_t    = μ(a, x_{t+1}) + σ ξ                          (or q(x_t | a) at the first t)
    b      = R_θ(PD.predict_x0(x_t, t))                   (second application, PD frozen)
    L      = ‖y − (a ⊛ k)↓s‖² + ‖y − (b ⊛ k)↓s‖² + w·COM(k)

then x̂₀ ← b and x_{t} kept for the next step. ``kernel_steps`` > 0 follows every joint
step with that many steps on INR_φ alone, a and b held fixed; ``kernel_freeze`` > 0 holds
INR_φ over the last timesteps (:class:`ReconConfig`). The learning rate is
cosine-annealed from ``lr`` to ``lr_min`` within each t. Images are in model range
[−1, 1]; one kernel is shared by all colour channels (and by all crops, unless
``crop_kernels='each'``).

Ablations (paper Tables 3–4): ``mode`` = ``dip`` (U-Net on fixed noise, no diffusion),
``unet_only`` (diffusion without PD), ``pd_unet`` (PD then one U-Net), ``full``;
``kernel_model`` = ``inr`` | ``direct_relu`` | ``direct_sigmoid`` | ``linear_cnn``.
What comes after a run (the kernel checks, the final step, restarts) is
:class:`kfops.Reconstructor`'s.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .degradation import bicubic_upsample
from .diffusion.prior import PatchPrior, to_model
from .errors import DivergenceError
from .guard import Snapshot, checked_loss
from .kernel_inr import center_of_mass_loss, make_kernel_model, target_center
from .kernels import gaussian
from .ops import degrade
from .recon_config import ReconConfig
from .sparsity import kernel_sqrt_sparsity, normalized_sparsity
from .unet import UNet

__all__ = ["Algorithm1", "RunOutput", "consistency_loss"]


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


@dataclass
class RunOutput:
    """kernels: the run's final kernel(s), (K, K) each, on the CPU: one, or one per crop
    with ``crop_kernels='each'``; image: its last x̂₀ (B, C, s·h, s·w) in model range;
    path: the kernel model's output after every timestep (in ``dip`` mode after as many
    iterations), on the CPU; stopped: whether the deadline cut the run short."""

    kernels: list[torch.Tensor]
    image: torch.Tensor
    path: list[torch.Tensor]
    stopped: bool


class Algorithm1:
    """What every run of Algorithm 1 on one LR batch shares (the data, the schedule, the
    loss), and :meth:`run`, one run from fresh networks.

    lr: (B, C, h, w) LR crops in [0, 1]; prior: the trained :class:`PatchPrior` (None in
    modes without it), frozen here; generator: draws every run's initialisation and noise;
    history: the list each iteration's loss is appended to (shared by all runs);
    progress(done, total, loss): called after every iteration, done counted over
    ``history``."""

    def __init__(
        self,
        cfg: ReconConfig,
        scale: int,
        lr: torch.Tensor,
        prior: PatchPrior | None,
        kernel_size: int,
        generator: torch.Generator,
        history: list[float],
        progress=None,
    ) -> None:
        self.cfg, self.s = cfg, scale
        self.dev = lr.device
        self.ksize = kernel_size
        self.center = target_center(kernel_size, scale)
        self.prior = None if prior is None else prior.to(self.dev).eval().requires_grad_(False)
        self.y = to_model(lr)
        self.x0_init = to_model(bicubic_upsample(lr, scale).clamp(0, 1))
        schedule = prior.schedule if prior is not None else _default_schedule()
        t_start = min(cfg.t_start, len(schedule) - 1)
        self.sub = _sub_schedule(schedule, t_start, cfg.steps, max(min(cfg.t_end, t_start - 1), 0))
        self.g = generator
        self.history = history
        self.progress = progress
        self.total = cfg.total_iterations()
        self.n_kernels = lr.shape[0] if cfg.crop_kernels == "each" else 1
        self.recoveries = 0  # returns to the last good state, over all runs

    # ---------------------------------------------------------------- the loss
    def consistency(self, x0: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """:func:`consistency_loss` of (x0 ⊛ k)↓s against the LR batch; k (K, K) shared,
        or (B, K, K) one per batch element (the mean of their losses, which is the
        batch's)."""
        s, gw = self.s, self.cfg.grad_weight
        if k.dim() == 2:
            return consistency_loss(degrade(x0, k, s, "reflect", check_values=False), self.y, gw)
        terms = [
            consistency_loss(
                degrade(x0[i : i + 1], k[i], s, "reflect", check_values=False),
                self.y[i : i + 1],
                gw,
            )
            for i in range(k.shape[0])
        ]
        return torch.stack(terms).mean()

    def com(self, k: torch.Tensor) -> torch.Tensor:
        if k.dim() == 2:
            return center_of_mass_loss(k, self.center)
        return torch.stack([center_of_mass_loss(ki, self.center) for ki in k]).mean()

    def objective(self, images: tuple[torch.Tensor, ...], k: torch.Tensor) -> torch.Tensor:
        """Σ consistency over ``images`` + w·COM(k): the loss of Algorithm 1 (+
        ``sharp_weight`` × Σ normalised gradient sparsity of ``images``; with
        ``kernel_term='second'`` the first term sees the kernel detached)."""
        cfg = self.cfg
        first_k = k.detach() if cfg.kernel_term == "second" and len(images) > 1 else k
        loss = self.consistency(images[0], first_k)
        for im in images[1:]:
            loss = loss + self.consistency(im, k)
        if cfg.sharp_weight:
            loss = loss + cfg.sharp_weight * sum(normalized_sparsity(im) for im in images)
        if cfg.kernel_sparsity:
            loss = loss + cfg.kernel_sparsity * kernel_sqrt_sparsity(k)
        return loss + cfg.com_weight * self.com(k)

    def noise(self, shape) -> torch.Tensor:
        """Standard normal noise drawn on the CPU from the generator, then moved."""
        return torch.randn(shape, generator=self.g).to(self.dev)

    # ---------------------------------------------------------------- one run
    def run(self, deadline: float | None = None) -> RunOutput:
        """One run of Algorithm 1 from fresh networks; ``deadline`` (time.monotonic): no
        iteration is started that would end after it."""
        return _Run(self).go(deadline)


class _Run:
    """The state of one run: the networks, their optimiser and the kernel's path."""

    def __init__(self, algo: Algorithm1) -> None:
        self.a = algo
        cfg, dev = algo.cfg, algo.dev
        init_seed = int(torch.randint(0, 2**62, (1,), generator=algo.g))
        # initialisation driven by the generator: the networks are built on the CPU, so
        # only the CPU generator is seeded (and restored after); a CUDA RNG stays untouched
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(init_seed)
            self.kmodel = KernelSet(
                [
                    make_kernel_model(cfg.kernel_model, algo.ksize, cfg.kernel_extent)
                    for _ in range(algo.n_kernels)
                ]
            ).to(dev)
            self.unet = UNet(algo.y.shape[1], cfg.unet_base, cfg.unet_levels).to(dev)
        if cfg.kernel_init > 0:
            sigma = cfg.kernel_init * algo.s / 4
            target = gaussian(algo.ksize, sigma, torch.float32, (algo.center, algo.center))
            fit_kernel_model(self.kmodel, target.to(dev))
        # the kernel model may run at its own peak rate (annealed by the same factor)
        kernel_ratio = 1.0 if cfg.kernel_lr is None else cfg.kernel_lr / cfg.lr
        self.opt = torch.optim.Adam(
            [
                {"params": list(self.unet.parameters()), "ratio": 1.0},
                {"params": list(self.kmodel.parameters()), "ratio": kernel_ratio},
            ],
            lr=cfg.lr,
        )
        self.params = [p for group in self.opt.param_groups for p in group["params"]]
        self.snapshot = Snapshot([self.unet, self.kmodel], [self.opt])
        self.lr_scale = 1.0
        self.recoveries = 0
        self.path: list[torch.Tensor] = []  # the kernel after every timestep
        self.last = [time.monotonic(), 0.0]  # when the last iteration ended, and its length

    def set_lr(self, it: int, n: int) -> None:
        cfg = self.a.cfg
        frac = it / max(n - 1, 1)
        lr_now = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * frac))
        for group in self.opt.param_groups:
            group["lr"] = lr_now * self.lr_scale * group["ratio"]

    def optimise(self, loss: torch.Tensor) -> None:
        """One Adam step; a non-finite loss or gradient restores the state at the start of
        this timestep and halves the learning rate (at most max_recoveries times, then
        DivergenceError)."""
        a, cfg = self.a, self.a.cfg
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        value = checked_loss(loss, self.params)  # the step's one wait for the device
        if value is None:
            a.recoveries += 1
            self.recoveries += 1
            if self.recoveries > cfg.max_recoveries:
                raise DivergenceError(
                    f"Phase 2 diverged (NaN/inf) after {cfg.max_recoveries} returns to "
                    "the last good state with a lower learning rate"
                )
            self.snapshot.restore()
            self.lr_scale *= 0.5
            warnings.warn(
                "non-finite loss in Phase 2: restored the last good state, learning rate halved",
                RuntimeWarning,
                stacklevel=6,
            )
        else:
            self.opt.step()
        a.history.append(float(loss.detach()) if value is None else value)
        if a.progress is not None:
            a.progress(len(a.history), a.total, a.history[-1])

    def kernel_only(self, images: tuple[torch.Tensor, ...]) -> None:
        steps = self.a.cfg.kernel_steps
        if steps:
            fixed = tuple(im.detach() for im in images)
            kernel_only_steps(self.kmodel, self.opt, lambda k: self.a.objective(fixed, k), steps)

    def kernel(self, frozen: bool) -> torch.Tensor:
        if not frozen:
            return self.kmodel()
        with torch.no_grad():  # no gradient: Adam leaves the kernel model alone
            return self.kmodel()

    def mark(self) -> None:
        with torch.no_grad():
            self.path.append(self.kmodel().detach().cpu())

    def past(self, limit: float | None) -> bool:
        """Whether the next iteration, as long as the last, would end after ``limit``."""
        now = time.monotonic()
        self.last[:] = [now, now - self.last[0]]
        return limit is not None and now + self.last[1] > limit

    def go(self, deadline: float | None) -> RunOutput:
        loop = self.dip if self.a.cfg.mode == "dip" else self.diffusion
        out, stopped = loop(deadline)
        with torch.no_grad():  # kernels are small: checked and combined on the CPU
            k = self.kmodel().detach().cpu()
        finals = list(k.reshape(-1, self.a.ksize, self.a.ksize))
        return RunOutput(finals, out.detach(), self.path, stopped)

    def dip(self, deadline: float | None) -> tuple[torch.Tensor, bool]:
        """``mode='dip'``: the U-Net on fixed noise, no diffusion; (last image, stopped)."""
        a, cfg = self.a, self.a.cfg
        out = a.x0_init
        z = a.noise(a.x0_init.shape) * 0.1
        n_dip = cfg.schedule_iterations()
        n_learn = cfg.kernel_iterations()  # then the kernel is held
        self.snapshot.take(0)
        for it in range(cfg.run_iterations()):
            if it % 20 == 0 and it:
                self.snapshot.take(it)
            self.set_lr(it, n_dip)
            frozen = it >= n_learn  # (never, unless the image is kept)
            k = self.kernel(frozen)
            out = self.unet(z)
            self.optimise(a.objective((out,), k))
            if not frozen:
                self.kernel_only((out,))
            done = it + 1 - cfg.iters_first
            if done >= 0 and done % max(cfg.iters, 1) == 0:
                self.mark()
            if self.past(deadline):
                return out, True
        return out, False

    def diffusion(self, deadline: float | None) -> tuple[torch.Tensor, bool]:
        """The reverse diffusion of Algorithm 1 (``full``, ``unet_only``, ``pd_unet``);
        (last x̂₀, stopped)."""
        a, cfg, sub = self.a, self.a.cfg, self.a.sub
        x0_prev = a.x0_init
        x_next = None
        n = len(sub)
        for i in reversed(range(n)):
            iters = cfg.iters_first if i == n - 1 else cfg.iters
            t_model = sub.timesteps[i : i + 1].to(a.dev).expand(x0_prev.shape[0])
            frozen = i < cfg.kernel_freeze  # one of the last kernel_freeze timesteps
            if frozen and not cfg.image_used:
                break
            xi = a.noise(x0_prev.shape)
            self.snapshot.take(i)
            stopped = False
            for it in range(iters):
                self.set_lr(it, iters)
                k = self.kernel(frozen)
                if cfg.mode == "full":
                    first = self.unet(x0_prev)
                    x_t = _next_xt(sub, first, x_next, i, xi)
                    b = self.unet(a.prior.predict_x0(x_t, t_model))
                    images = (first, b)
                else:
                    x_t = _next_xt(sub, x0_prev, x_next, i, xi)
                    inp = a.prior.predict_x0(x_t, t_model) if cfg.mode == "pd_unet" else x_t
                    b = self.unet(inp)
                    images = (b,)
                self.optimise(a.objective(images, k))
                if not frozen:
                    self.kernel_only(images)
                if self.past(deadline):
                    stopped = True
                    break
            x0_prev = b.detach()
            x_next = x_t.detach()
            if stopped:
                return x0_prev, True
            self.mark()
        return x0_prev, False


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
