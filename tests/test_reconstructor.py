"""Phase 2 pieces: kernel models, the U-Net, and Algorithm 1 on tiny problems."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import kfops
from kfops.consensus import kernel_spread
from kfops.diffusion import PatchPrior
from kfops.kernel_inr import (
    KernelINR,
    center_of_mass_loss,
    make_kernel_model,
    target_center,
)
from kfops.nonblind import tv_refine
from kfops.reconstructor import ReconConfig, Reconstructor
from kfops.unet import UNet


@pytest.mark.parametrize("kind", ["inr", "direct_relu", "direct_sigmoid", "linear_cnn"])
def test_kernel_models_give_normalised_kernels(kind):
    k = make_kernel_model(kind, 12)().detach()
    assert k.shape == (12, 12)
    assert abs(float(k.sum()) - 1) < 1e-5
    assert float(k.min()) > -1e-3


def test_siren_initialisation_and_frequency():
    inr = KernelINR(24, width=256, layers=5, omega=5.0)
    assert len(inr.linears) == 5
    first, hidden = inr.linears[0].weight.detach(), inr.linears[1].weight.detach()
    assert float(first.abs().max()) <= 1 / 2
    assert float(hidden.abs().max()) <= math.sqrt(6 / 256) / 5 + 1e-7


def test_inr_grid_keeps_the_papers_pitch_per_hr_pixel():
    # 24 taps (×4): exactly the paper's [−1, 1]; other sizes: the same 2/23 per tap
    paper = make_kernel_model("inr", 24)
    assert float(paper.grid.min()) == -1 and float(paper.grid.max()) == 1
    for size in (12, 18, 48):
        axis = make_kernel_model("inr", size).grid[::size, 0]
        torch.testing.assert_close(axis.diff(), torch.full((size - 1,), 2 / 23))
        assert float(axis.mean()) == pytest.approx(0, abs=1e-6)
    wide = make_kernel_model("inr", 12, extent=1.0).grid
    assert float(wide.min()) == -1 and float(wide.max()) == 1


def test_center_of_mass_target_and_loss():
    assert target_center(24, 4) == 11.5 and target_center(7, 4) == 3.5
    k = kfops.kernels.gaussian(24, 2.0)
    assert float(center_of_mass_loss(k, 11.5)) < 1e-12
    assert abs(float(center_of_mass_loss(torch.roll(k, 2, 0), 11.5)) - 4) < 1e-4


@pytest.mark.parametrize("hw", [(16, 16), (23, 37), (9, 12)])
def test_unet_any_size_and_range(hw):
    net = UNet(3, base=4, levels=4)
    out = net(torch.randn(1, 3, *hw)).detach()
    assert out.shape == (1, 3, *hw) and float(out.abs().max()) <= 1


def _problem():
    hr = kfops.io.load_image("examples/butterfly.png").pixels[..., 64:128, 64:128]
    k = kfops.kernels.anisotropic_gaussian(8, 1.6, 0.7, 0.5).float()
    return kfops.degrade(hr, k, 2), k


TINY = dict(
    t_start=100,
    steps=3,
    iters_first=12,
    iters=4,
    lr=3e-3,
    lr_min=1e-3,
    unet_base=4,
    unet_levels=3,
    kernel_size=8,
)


@pytest.mark.parametrize("mode", ["full", "pd_unet", "unet_only", "dip"])
def test_algorithm_runs_and_the_consistency_loss_falls(mode):
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=10, crop=16, progress=False)
    res = Reconstructor(2, ReconConfig(mode=mode, **TINY)).run(
        lr, prior, generator=torch.Generator().manual_seed(0)
    )
    assert res.hr.shape == (1, 3, 64, 64)
    assert float(res.hr.min()) >= 0 and float(res.hr.max()) <= 1
    assert res.kernel.shape == (8, 8) and abs(float(res.kernel.sum()) - 1) < 1e-5
    n = len(res.history)
    assert n == ReconConfig(**TINY).total_iterations()
    assert sum(res.history[-4:]) < sum(res.history[:4])


def test_same_seed_reproduces():
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    runs = [
        Reconstructor(2, ReconConfig(**TINY)).run(
            lr, prior, generator=torch.Generator().manual_seed(5)
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0].hr, runs[1].hr) and torch.equal(runs[0].kernel, runs[1].kernel)
    assert runs[0].final_seconds == 0.0  # the Phase-2 image is returned: no final step


def test_a_known_kernel_is_recovered_better_than_by_the_bicubic_assumption():
    # An easy case at ×2: a 48² LR image blurred by an 8-px linear motion, which the
    # bicubic filter (isotropic, 2 px) matches poorly. Algorithm 1 alone (no check may
    # swap in the resize filter) has to estimate a kernel closer to the truth. Seeds 0-6
    # gave NCC 0.71-0.79 against 0.56 for the bicubic filter, ~11 s each on 2 cores.
    scale, size = 2, 12
    hr = kfops.io.load_image("examples/butterfly.png").pixels[..., 64:160, 64:160]
    truth = kfops.kernels.align_kernel(kfops.kernels.linear_motion(size, 8.0, 0.6), scale)
    lr = kfops.degrade(hr, truth.float(), scale)
    prior = PatchPrior(hidden=16, generator=torch.Generator().manual_seed(0))
    prior.fit(lr, steps=500, crop=16, progress=False, generator=torch.Generator().manual_seed(0))
    cfg = ReconConfig(
        **dict(TINY, t_start=200, steps=6, iters_first=60, iters=15, unet_base=8, kernel_size=size)
    )
    res = Reconstructor(scale, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    bicubic = kfops.kernels.resize_filter(scale, "bicubic", size=size)
    ncc_bicubic = kfops.metrics.kernel_ncc(bicubic, truth)
    assert ncc_bicubic < 0.6  # the case is one the bicubic assumption gets wrong
    assert kfops.metrics.kernel_ncc(res.kernel.double(), truth) > ncc_bicubic + 0.1


@pytest.mark.parametrize("final", ["backproject", "tv"])
def test_crop_then_final_sr_returns_full_size(final):
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    cfg = ReconConfig(crop=16, final=final, final_iters=5, **TINY)
    steps = []
    res = Reconstructor(2, cfg).run(lr, prior, final_progress=lambda d, t: steps.append((d, t)))
    assert res.hr.shape == (1, 3, 64, 64)
    assert float(res.hr.min()) >= 0 and float(res.hr.max()) <= 1
    assert 0 < res.final_seconds < res.seconds
    # the TV refinement reports its start (back-projection first) and each of its steps;
    # a plain back-projection has none to report
    assert steps == ([(i, 5) for i in range(0, 6)] if final == "tv" else [])


def test_unknown_final_step_or_crop_rule_is_refused():
    with pytest.raises(ValueError, match="final"):
        Reconstructor(2, ReconConfig(final="wiener"))
    with pytest.raises(ValueError, match="crop_rule"):
        Reconstructor(2, ReconConfig(crop_rule="random"))
    with pytest.raises(ValueError, match="crops"):
        Reconstructor(2, ReconConfig(crops=0))
    with pytest.raises(ValueError, match="crop_fill"):
        Reconstructor(2, ReconConfig(crop_fill=1))


def test_several_crops_share_one_kernel():
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    cfg = ReconConfig(crop=12, crops=2, final="backproject", **TINY)
    res = Reconstructor(2, cfg).run(lr, prior)
    assert res.hr.shape == (1, 3, 64, 64) and res.kernel.dim() == 2
    assert res.history[-1] < res.history[0]


def test_kernel_learning_rate_applies_to_the_kernel_model_only():
    """kernel_lr=0 freezes the kernel at its initialisation while the U-Net still learns;
    the default (None) trains both at ``lr``."""
    lr, _ = _problem()

    def run(kernel_lr):
        cfg = ReconConfig(mode="dip", kernel_lr=kernel_lr, **dict(TINY, iters_first=6))
        return Reconstructor(2, cfg).run(lr, None, generator=torch.Generator().manual_seed(3))

    # Phase 2 seeds its initialisation with the generator's first draw
    init_seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(3)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        k_init = make_kernel_model("inr", 8)().detach()
    frozen, free = run(0.0), run(None)
    assert torch.allclose(frozen.kernel, k_init, atol=1e-7)
    assert not torch.allclose(free.kernel, k_init, atol=1e-4)
    assert frozen.history[-1] < frozen.history[0]  # the U-Net still fits


def _poisoning_run(when):
    """Run TINY Phase 2 and set the U-Net's weights to NaN after the iterations in
    ``when(done)``; returns the Reconstructor and its result."""
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    rec = Reconstructor(2, ReconConfig(**TINY))
    orig_unet = kfops.algorithm1.UNet
    made = []

    def unet_factory(*args, **kwargs):
        made.append(orig_unet(*args, **kwargs))
        return made[-1]

    def progress(done, total, loss):
        if when(done):
            with torch.no_grad():
                next(made[0].parameters()).fill_(float("nan"))

    kfops.algorithm1.UNet = unet_factory
    try:
        return rec, rec.run(lr, prior, progress=progress)
    finally:
        kfops.algorithm1.UNet = orig_unet


def test_phase2_nan_restores_the_last_good_state():
    with pytest.warns(RuntimeWarning, match="restored the last good state"):
        rec, res = _poisoning_run(lambda done: done == 14)
    assert rec.recoveries == 1
    assert torch.isfinite(res.hr).all() and torch.isfinite(res.kernel).all()


def test_phase2_persistent_nan_fails_clearly():
    from kfops.errors import DivergenceError

    with pytest.warns(RuntimeWarning), pytest.raises(DivergenceError, match="diverged"):
        _poisoning_run(lambda done: True)


def test_final_step_weights_follow_the_scale(monkeypatch):
    """Damping and TV weight are set for ×4 and scaled by 16/s²: AAᵀ maps a constant LR
    image c to about c/s² (exactly when the kernel's mass is spread evenly over the s²
    sampling phases), so this keeps the data term and the prior in the same balance."""
    import kfops.reconstructor as rec

    cfg = ReconConfig(final_eps=1e-2, final_tv=1e-3)
    assert cfg.final_weights(4) == pytest.approx((1e-2, 1e-3))
    assert cfg.final_weights(2) == pytest.approx((4e-2, 4e-3))
    k = kfops.kernels.gaussian(16, 2.5)
    for s in (2, 4):
        y = torch.full((1, 1, 16, 16), 0.5, dtype=torch.float64)
        aat = kfops.Degradation(k, s, "circular").A_A_adjoint(y)
        torch.testing.assert_close(aat, y / s**2, rtol=1e-3, atol=0)
    seen = {}

    def spy(lr, kernel, scale, weight, iters, *, eps, **kw):
        seen.update(scale=scale, weight=weight, eps=eps, step=kw["step"])
        return kfops.bicubic_upsample(lr, scale)

    monkeypatch.setattr(rec, "tv_refine", spy)
    lr, _ = _problem()
    run_cfg = ReconConfig(crop=16, final="tv", final_lr=3e-3, **TINY)
    Reconstructor(2, run_cfg).run(lr, PatchPrior(hidden=8))
    assert seen["scale"] == 2 and seen["step"] == 3e-3  # the step size is not scaled
    assert (seen["eps"], seen["weight"]) == pytest.approx(run_cfg.final_weights(2))


@pytest.mark.parametrize("mode", ["full", "dip"])
def test_kernel_steps_refit_the_kernel_to_the_images_of_the_step(monkeypatch, mode):
    """kernel_steps=N adds N Adam steps on the kernel model alone after every joint step:
    the kernel model runs 1 + N times per iteration, the U-Net no more often, the progress
    count is unchanged and the kernel comes out different."""
    import kfops.algorithm1 as alg

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    calls = {"unet": 0, "kernel": 0}
    unet_forward, inr_forward = alg.UNet.forward, KernelINR.forward

    def count_unet(self, x):
        calls["unet"] += 1
        return unet_forward(self, x)

    def count_kernel(self):
        calls["kernel"] += 1
        return inr_forward(self)

    monkeypatch.setattr(alg.UNet, "forward", count_unet)
    monkeypatch.setattr(KernelINR, "forward", count_kernel)
    counts = []
    for steps in (0, 3):
        calls.update(unet=0, kernel=0)
        cfg = ReconConfig(mode=mode, kernel_steps=steps, **TINY)
        res = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
        n = cfg.total_iterations()
        assert len(res.history) == n  # progress counts the joint steps only
        # + one evaluation after every timestep (kernel_path) and the final one
        assert calls["kernel"] == n * (1 + steps) + TINY["steps"] + 1
        counts.append((calls["unet"], res.kernel))
    assert counts[0][0] == counts[1][0]
    assert not torch.allclose(counts[0][1], counts[1][1], atol=1e-5)


@pytest.mark.parametrize("mode", ["full", "dip"])
def test_kernel_freeze_holds_the_kernel_over_the_last_timesteps(monkeypatch, mode):
    """kernel_freeze=1: the run is the unfrozen one until the last timestep starts (same
    losses), then the kernel stays where it was while the U-Net goes on learning (the
    losses still change); freezing every timestep returns the initial kernel."""
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    seen: list[torch.Tensor] = []
    inr_forward = KernelINR.forward

    def record(self):
        out = inr_forward(self)
        seen.append(out.detach().clone())
        return out

    monkeypatch.setattr(KernelINR, "forward", record)
    runs = {}
    for freeze in (0, 1, TINY["steps"]):
        seen.clear()
        cfg = ReconConfig(mode=mode, kernel_freeze=freeze, kernel_steps=2, **TINY)
        res = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
        runs[freeze] = (res, list(seen))
    n_free = TINY["iters_first"] + (TINY["steps"] - 2) * TINY["iters"]
    free, last = runs[0], runs[1]
    assert free[0].history[:n_free] == last[0].history[:n_free]
    held = last[1][-(TINY["iters"] + 1) :]  # the last timestep's kernels and the final one
    assert all(torch.equal(held[0], k) for k in held)
    assert not torch.equal(free[0].kernel, last[0].kernel)
    assert len(set(last[0].history[n_free:])) > 1  # the U-Net still learns
    all_frozen = runs[TINY["steps"]]
    assert all(torch.equal(all_frozen[1][0], k) for k in all_frozen[1])
    # when only the kernel is kept, the run stops where the kernel is held: same kernel
    seen.clear()
    cfg = ReconConfig(mode=mode, kernel_freeze=1, kernel_steps=2, final="backproject", **TINY)
    assert cfg.run_iterations() == n_free
    short = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    assert short.history == last[0].history[:n_free]
    assert torch.equal(short.kernel, last[0].kernel)
    with pytest.raises(ValueError, match="kernel_freeze"):
        Reconstructor(2, ReconConfig(kernel_freeze=-1))


def test_kernel_only_steps_lower_the_loss_and_leave_the_unet_alone():
    """The kernel-only steps share Phase 2's Adam with the U-Net: a U-Net that took a joint
    step before (so Adam holds momentum for it) must not move during them, and each step
    lowers the consistency of the fixed image (small steps on a smooth loss)."""
    import kfops.algorithm1 as alg

    torch.manual_seed(0)
    unet, kmodel = UNet(3, 4, 3), make_kernel_model("inr", 8)
    opt = torch.optim.Adam(
        [{"params": list(unet.parameters())}, {"params": list(kmodel.parameters())}], lr=1e-4
    )
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    y = kfops.degrade(x, kfops.kernels.anisotropic_gaussian(8, 1.5, 0.8, 0.3).float(), 2)

    opt.zero_grad()
    out = unet(x)
    (torch.nn.functional.mse_loss(kfops.degrade(out, kmodel(), 2), y)).backward()
    opt.step()  # a joint step: Adam now has momentum for the U-Net
    fixed = out.detach()

    def loss_fn(k):
        return torch.nn.functional.mse_loss(kfops.degrade(fixed, k, 2), y)

    before = [p.detach().clone() for p in unet.parameters()]
    losses = alg.kernel_only_steps(kmodel, opt, loss_fn, 5)
    assert len(losses) == 5 and all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert all(torch.equal(a, b) for a, b in zip(before, unet.parameters(), strict=True))


@pytest.mark.parametrize("final", ["phase2", "tv"])
def test_restarts_run_independently_and_combine_their_kernels(final):
    """restarts=3 runs Algorithm 1 three times from different initialisations (different
    kernels), reports every estimate, and returns their consensus: the medoid's own kernel
    and image for final='phase2', the pixel-wise median through the final step for 'tv'.
    The first run is the single run of restarts=1 (same draws from the generator)."""
    from kfops.consensus import consensus_kernel

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    extra = dict(final=final, consensus="median")
    if final == "tv":
        extra.update(crop=16, final_iters=3)

    def run(restarts):
        cfg = ReconConfig(restarts=restarts, **extra, **TINY)
        return cfg, Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(2))

    _, one = run(1)
    cfg, res = run(3)
    assert len(res.history) == cfg.total_iterations() == 3 * cfg.run_iterations()
    assert len(res.estimates) == 3 and torch.equal(res.estimates[0], one.kernel)
    assert not torch.allclose(res.estimates[0], res.estimates[1], atol=1e-5)
    median, medoid = consensus_kernel(res.estimates, "median")
    if final == "phase2":
        assert torch.equal(res.kernel, res.estimates[medoid])
    else:
        assert torch.equal(res.kernel, median)
    assert res.hr.shape == one.hr.shape
    with pytest.raises(ValueError, match="restarts"):
        Reconstructor(2, ReconConfig(restarts=0))
    with pytest.raises(ValueError, match="consensus"):
        Reconstructor(2, ReconConfig(consensus="vote"))


def test_average_consensus_averages_the_final_images_of_every_run():
    """consensus='average': the final step runs with every run's kernel and the output is
    the mean of those images; the kernel reported is the medoid's; the final progress counts
    the steps of all runs once, in order."""
    from kfops.consensus import consensus_kernel

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    cfg = ReconConfig(restarts=3, consensus="average", final="tv", crop=16, final_iters=3, **TINY)
    shown: list[tuple[int, int]] = []
    res = Reconstructor(2, cfg).run(
        lr,
        prior,
        generator=torch.Generator().manual_seed(2),
        final_progress=lambda done, total: shown.append((done, total)),
    )
    eps, weight = cfg.final_weights(2)
    images = [
        tv_refine(lr, k, 2, weight, cfg.final_iters, eps=eps, step=cfg.final_lr)
        for k in res.estimates
    ]
    assert len(images) == 3 and not torch.allclose(images[0], images[1], atol=1e-4)
    torch.testing.assert_close(res.hr, torch.stack(images).mean(0), atol=1e-5, rtol=0)
    _, medoid = consensus_kernel(res.estimates, "average")
    assert torch.equal(res.kernel, res.estimates[medoid])
    assert [d for d, _ in shown] == sorted(d for d, _ in shown)
    assert {t for _, t in shown} == {9} and shown[-1] == (9, 9)


def test_a_restart_cut_short_by_the_deadline_is_dropped(monkeypatch):
    """The deadline stops Phase 2 inside the second restart: only the complete first run's
    kernel counts."""
    import kfops.reconstructor as rec

    lr, _ = _problem()
    clock = iter(range(10**6))
    cfg = ReconConfig(mode="dip", restarts=3, **TINY)
    n = cfg.run_iterations()
    monkeypatch.setattr(rec.time, "monotonic", lambda: float(next(clock)))
    res = Reconstructor(2, cfg).run(
        lr, None, generator=torch.Generator().manual_seed(0), deadline=n + 2.5
    )
    assert len(res.estimates) == 1 and torch.equal(res.kernel, res.estimates[0])
    assert n < len(res.history) < 2 * n


@pytest.mark.parametrize("mode", ["full", "dip"])
def test_kernel_radius_at_keeps_the_run_and_resizes_its_kernel(mode):
    """The kernel after every timestep is kept (the last one is the run's kernel);
    kernel_radius_at=1 changes nothing in the run but gives the final kernel, resampled to
    the first timestep's RMS radius."""
    from kfops.kernels import dilate_kernel

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False, generator=torch.Generator().manual_seed(0))
    res = {}
    for at in (0, 1):
        cfg = ReconConfig(mode=mode, kernel_radius_at=at, final="backproject", **TINY)
        res[at] = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    plain, sized = res[0], res[1]
    assert len(plain.kernel_path) == TINY["steps"]
    assert torch.equal(plain.kernel_path[-1], plain.kernel)
    assert sized.history == plain.history
    assert all(torch.equal(a, b) for a, b in zip(sized.kernel_path, plain.kernel_path, strict=True))
    first = kernel_spread(plain.kernel_path[0])
    # these tiny runs' kernels fill their 8-tap grid, and resampling loses a little mass at
    # its edge: within 3% over unseeded priors (1% for kernels inside their grid)
    assert kernel_spread(sized.kernel) == pytest.approx(first, rel=0.05)
    ratio = first / kernel_spread(plain.kernel)
    assert ratio != 1
    assert torch.allclose(sized.kernel, dilate_kernel(plain.kernel, ratio))
    with pytest.raises(ValueError, match="kernel_radius_at"):
        Reconstructor(2, ReconConfig(kernel_radius_at=-1))


def test_kernel_radius_cv_keeps_the_kernel_that_predicts_held_out_pixels_better(monkeypatch):
    """kernel_radius_cv: the run is unchanged and its kernel is the resampled one exactly
    when cross-validation on the LR luma scores it lower than the final kernel; past the
    deadline the final kernel is kept."""
    import time
    from types import SimpleNamespace

    from kfops.crops import cv_luma
    from kfops.kernel_check import cv_error
    from kfops.kernels import dilate_kernel

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    res = {}
    for cv in (False, True):
        cfg = ReconConfig(kernel_radius_at=1, kernel_radius_cv=cv, final="backproject", **TINY)
        res[cv] = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    final, resized = res[False].kernel_path[-1], res[False].kernel
    assert res[True].history == res[False].history
    eps, tv = ReconConfig().final_weights(2)
    y = cv_luma(lr)
    assert y.shape == (1, 1, *lr.shape[-2:])
    errors = [cv_error(y, k, 2, eps, tv) for k in (final, resized)]
    expected = resized if errors[1] < errors[0] else final
    assert torch.equal(res[True].kernel, expected)

    # a deadline that passes once the run is over (a clock that jumps at the resampling)
    import kfops.reconstructor as rec

    clock = {"now": 0.0}

    def dilate_then_late(*args):
        clock["now"] = 2.0
        return dilate_kernel(*args)

    fake = SimpleNamespace(monotonic=lambda: clock["now"], perf_counter=time.perf_counter)
    monkeypatch.setattr(rec, "time", fake)
    monkeypatch.setattr(kfops.algorithm1, "time", fake)  # the run's own deadline checks
    monkeypatch.setattr(rec, "dilate_kernel", dilate_then_late)
    cfg = ReconConfig(kernel_radius_at=1, kernel_radius_cv=True, final="backproject", **TINY)
    late = Reconstructor(2, cfg).run(
        lr, prior, generator=torch.Generator().manual_seed(0), deadline=1.0
    )
    assert late.history == res[False].history
    assert torch.equal(late.kernel, final) and not torch.equal(final, resized)
    with pytest.raises(ValueError, match="kernel_radius_cv"):
        Reconstructor(2, ReconConfig(kernel_radius_cv="yes"))


def test_sharp_weight_adds_the_sparsity_of_every_unet_output(monkeypatch):
    """sharp_weight > 0 evaluates the normalised sparsity of both U-Net outputs in every
    full-mode step (and changes the result); 0 (the default) never evaluates it."""
    import kfops.algorithm1 as alg

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    seen = []
    original = alg.normalized_sparsity

    def spy(x):
        seen.append(tuple(x.shape))
        return original(x)

    monkeypatch.setattr(alg, "normalized_sparsity", spy)
    kernels = []
    for weight in (0.0, 1.0):
        seen.clear()
        cfg = ReconConfig(sharp_weight=weight, **TINY)
        res = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
        assert len(seen) == (2 * cfg.total_iterations() if weight else 0)
        assert all(shape == (1, 3, 64, 64) for shape in seen)
        kernels.append(res.kernel)
    assert not torch.allclose(kernels[0], kernels[1], atol=1e-5)


@pytest.mark.parametrize("t_end", [0, 40])
def test_t_end_stops_the_reverse_diffusion_at_that_timestep(monkeypatch, t_end):
    """The prior is called at the respaced timesteps t_start … t_end, first to last, and
    a run visits as many iterations as its config says; t_end >= t_start is refused."""
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    seen: list[int] = []
    original = prior.predict_x0

    def spy(x_t, t):
        seen.append(int(t[0]))
        return original(x_t, t)

    monkeypatch.setattr(prior, "predict_x0", spy)
    cfg = ReconConfig(**dict(TINY, t_end=t_end))
    res = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    visited = list(dict.fromkeys(seen))
    assert visited == [100, (100 + t_end + 1) // 2, t_end]
    assert len(res.history) == cfg.total_iterations() == len(seen)
    with pytest.raises(ValueError, match="t_end"):
        Reconstructor(2, ReconConfig(**dict(TINY, t_end=100)))


def test_crop_kernels_each_gives_every_crop_its_own_kernel():
    """With crop_kernels='each' every crop fits a kernel model of its own: the run returns
    one estimate per crop (they differ), its path holds them all, and the kernel kept is
    the consensus rule's choice among them (the widest by default)."""
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    cfg = ReconConfig(crop=12, crops=2, crop_kernels="each", final="backproject", **TINY)
    res = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    assert len(res.estimates) == 2 and not torch.allclose(*res.estimates, atol=1e-4)
    assert all(abs(float(k.sum()) - 1) < 1e-5 for k in res.estimates)
    assert len(res.kernel_path) == cfg.steps and res.kernel_path[-1].shape == (2, 8, 8)
    spreads = [kernel_spread(k) for k in res.estimates]
    assert torch.equal(res.kernel, res.estimates[spreads.index(max(spreads))])
    assert res.hr.shape == (1, 3, 64, 64) and res.history[-1] < res.history[0]
    with pytest.raises(ValueError, match="crop_kernels"):
        Reconstructor(2, ReconConfig(crop_kernels="per_crop", **TINY))


def test_kernel_init_starts_the_kernel_model_from_a_centred_gaussian():
    """fit_kernel_model brings a SIREN's almost flat initial kernel close to the target
    Gaussian (centred where the degradation stays aligned); kernel_init > 0 uses it before
    each run, which changes the result."""
    from kfops.algorithm1 import fit_kernel_model

    c = target_center(24, 4)
    target = kfops.kernels.gaussian(24, 1.2, torch.float32, (c, c))
    assert abs(float(target.sum()) - 1) < 1e-6
    torch.manual_seed(0)
    model = make_kernel_model("inr", 24)
    flat = kernel_spread(model().detach())
    fit_kernel_model(model, target)
    fitted = model().detach()
    assert flat > 9 and kernel_spread(fitted) < 0.25 * flat
    assert kfops.metrics.kernel_ncc(fitted.double(), target.double()) > 0.99
    assert float(center_of_mass_loss(fitted, target_center(24, 4))) < 0.01

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    kernels = [
        Reconstructor(2, ReconConfig(kernel_init=init, **TINY))
        .run(lr, prior, generator=torch.Generator().manual_seed(0))
        .kernel
        for init in (0.0, 1.2)
    ]
    assert not torch.allclose(kernels[0], kernels[1], atol=1e-4)
    with pytest.raises(ValueError, match="kernel_init"):
        Reconstructor(2, ReconConfig(kernel_init=-1.0, **TINY))


def test_radius_factor_skips_kernels_collapsed_to_one_tap():
    """A kernel collapsed to one tap, with the leaky sigmoid's slightly negative taps
    around it, has a radius of 0, not NaN, and gets no radius factor (nothing to dilate);
    other kernels get the ratio of their radii."""
    from kfops.reconstructor import radius_factor

    wide, narrow = (kfops.kernels.gaussian(24, sd, torch.float32) for sd in (3.0, 1.5))
    delta = torch.full((24, 24), -1e-4)
    delta[12, 12] = 1.0
    assert kernel_spread(delta) == 0.0
    assert radius_factor(wide, delta) is None and radius_factor(delta, wide) is None
    assert abs(radius_factor(wide, narrow) - 2.0) < 0.02


@pytest.mark.parametrize("mode", ["full", "dip"])
def test_kernel_term_second_trains_the_kernel_on_the_output_after_the_prior(monkeypatch, mode):
    """With kernel_term='second' the first consistency term of every full-mode step sees
    the kernel detached and the second sees it live; 'both' (the default) lets both train
    it; in dip mode, with one term, the kernel is live either way."""
    import kfops.algorithm1 as alg

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    live = []
    original = alg.degrade

    def spy(x, k, *args, **kwargs):
        if torch.is_grad_enabled() and x.requires_grad:
            live.append(k.requires_grad)
        return original(x, k, *args, **kwargs)

    monkeypatch.setattr(alg, "degrade", spy)
    cfg = dict(TINY, mode=mode)
    for term in ("both", "second"):
        live.clear()
        Reconstructor(2, ReconConfig(kernel_term=term, **cfg)).run(
            lr, prior, generator=torch.Generator().manual_seed(0)
        )
        n = ReconConfig(**cfg).total_iterations()
        if mode == "dip" or term == "both":
            assert live == [True] * (n if mode == "dip" else 2 * n)
        else:
            assert live == [False, True] * n
    with pytest.raises(ValueError, match="kernel_term"):
        Reconstructor(2, ReconConfig(kernel_term="first"))


def test_resize_check_swaps_in_the_resize_blur_only_when_the_check_says_so(monkeypatch):
    """resize_check: the run is unchanged; its kernel is replaced by the ×s resize filter
    exactly when kernel_check.resize_fallback says so (here on the run's own kernel and the
    LR luma), and never when the Phase-2 image is the output."""
    import kfops.reconstructor as rec
    from kfops.crops import cv_luma
    from kfops.kernel_check import resize_fallback
    from kfops.kernels import resize_filter

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    plain = Reconstructor(2, ReconConfig(final="backproject", **TINY)).run(
        lr, prior, generator=torch.Generator().manual_seed(0)
    )
    cfg = ReconConfig(final="backproject", resize_check="bicubic", **TINY)
    checked = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    assert checked.history == plain.history
    eps, tv = ReconConfig().final_weights(2)
    expected, used = resize_fallback(cv_luma(lr), plain.kernel, 2, "bicubic", eps, tv)
    assert torch.equal(checked.kernel, expected)
    assert checked.fallback == ("bicubic" if used else None) and plain.fallback is None

    calls = []

    def always(y, kernel, scale, method, eps, tv):
        calls.append(method)
        return resize_filter(scale, method, kernel.shape[-1]).to(kernel), True

    monkeypatch.setattr(rec, "resize_fallback", always)
    cfg = ReconConfig(final="backproject", resize_check="area", **TINY)
    res = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    assert res.fallback == "area" and torch.equal(res.kernel, resize_filter(2, "area", 8).float())
    res = Reconstructor(2, ReconConfig(resize_check="area", **TINY)).run(lr, prior)
    assert res.fallback is None and calls == ["area"]  # the Phase-2 image is the output
    with pytest.raises(ValueError, match="resize_check"):
        Reconstructor(2, ReconConfig(resize_check="lanczos"))


def test_resize_mean_averages_the_two_final_images_where_the_check_says_so(monkeypatch):
    """resize_mean: the run is unchanged; where kernel_check.resize_choice picks the mean,
    the output is the mean of the final images of the estimate and of the filter, the
    kernel stays the estimate and ``mixed`` names the method; 'filter' swaps the kernel as
    the two-way check does."""
    import kfops.reconstructor as rec
    from kfops.kernels import resize_filter

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    plain = Reconstructor(2, ReconConfig(final="backproject", **TINY)).run(
        lr, prior, generator=gen()
    )
    picks = []

    def pick(name):
        def choice(y, kernel, scale, method, eps, tv):
            picks.append(method)
            return name, resize_filter(scale, method, kernel.shape[-1]).to(kernel)

        return choice

    cfg = ReconConfig(final="backproject", resize_check="area", resize_mean=2, **TINY)
    eps, _ = cfg.final_weights(2)
    monkeypatch.setattr(rec, "resize_choice", pick("mean"))
    mixed = Reconstructor(2, cfg).run(lr, prior, generator=gen())
    assert mixed.history == plain.history and torch.equal(mixed.kernel, plain.kernel)
    assert mixed.mixed == "area" and mixed.fallback is None
    filt = resize_filter(2, "area", plain.kernel.shape[-1]).float()
    expected = (
        kfops.backproject(lr, plain.kernel, 2, eps=eps) + kfops.backproject(lr, filt, 2, eps=eps)
    ) / 2
    assert torch.allclose(mixed.hr, expected, atol=1e-6)
    monkeypatch.setattr(rec, "resize_choice", pick("filter"))
    swapped = Reconstructor(2, cfg).run(lr, prior, generator=gen())
    assert (
        swapped.fallback == "area" and swapped.mixed is None and torch.equal(swapped.kernel, filt)
    )
    monkeypatch.setattr(rec, "resize_choice", pick("estimate"))
    kept = Reconstructor(2, cfg).run(lr, prior, generator=gen())
    assert kept.fallback is None and kept.mixed is None and torch.equal(kept.hr, plain.hr)
    assert picks == ["area"] * 3
    two_way = Reconstructor(2, dataclasses.replace(cfg, resize_mean=3)).run(
        lr, prior, generator=gen()
    )
    assert picks == ["area"] * 3 and two_way.mixed is None  # below its scale: resize_fallback
    with pytest.raises(ValueError, match="resize_mean"):
        Reconstructor(2, ReconConfig(resize_mean=-1))


def test_resize_gate_lets_the_check_run_only_below_the_lr_blur_score(monkeypatch):
    """resize_gate g: the check runs only where lr_blur(LR) < g; the run is unchanged."""
    import kfops.reconstructor as rec
    from kfops.kernels import resize_filter
    from kfops.reconstructor import lr_blur

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    score = lr_blur(lr)
    assert 0 < score < 1
    calls = []

    def always(y, kernel, scale, method, eps, tv):
        calls.append(method)
        return resize_filter(scale, method, kernel.shape[-1]).to(kernel), True

    monkeypatch.setattr(rec, "resize_fallback", always)
    runs = {}
    for gate in (None, score * 1.01, score * 0.99):
        cfg = ReconConfig(final="backproject", resize_check="bicubic", resize_gate=gate, **TINY)
        runs[gate] = Reconstructor(2, cfg).run(
            lr, prior, generator=torch.Generator().manual_seed(0)
        )
    assert calls == ["bicubic", "bicubic"]
    assert [r.fallback for r in runs.values()] == ["bicubic", "bicubic", None]
    assert runs[score * 0.99].history == runs[None].history
    assert lr_blur(lr[..., :8, :]) == 1.0  # too small to score: treated as blurred
    for bad in (0, 1.5, "0.4"):
        with pytest.raises(ValueError, match="resize_gate"):
            Reconstructor(2, ReconConfig(resize_gate=bad))


def test_resize_max_radius_skips_the_check_for_wide_estimates(monkeypatch):
    """resize_max_radius R: the check runs only where the estimate's RMS radius is below
    R·s/4 HR pixels; the run is unchanged."""
    import kfops.reconstructor as rec
    from kfops.consensus import kernel_spread

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    radii = []

    def spy(y, kernel, scale, method, eps, tv):
        radii.append(kernel_spread(kernel))
        return kernel, False

    monkeypatch.setattr(rec, "resize_fallback", spy)
    runs = {}
    for cap in (None, "above", "below"):
        r = None if cap is None else radii[0] * 2 * (1.01 if cap == "above" else 0.99)
        cfg = ReconConfig(final="backproject", resize_check="bicubic", resize_max_radius=r, **TINY)
        runs[cap] = Reconstructor(2, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    assert len(radii) == 2 and radii[0] == radii[1] > 0  # None and "above" ran the check
    assert runs["below"].history == runs[None].history
    assert torch.equal(runs["below"].kernel, runs[None].kernel)
    for bad in (0, -1.0, float("inf"), "5"):
        with pytest.raises(ValueError, match="resize_max_radius"):
            Reconstructor(2, ReconConfig(resize_max_radius=bad))


def test_preset_overrides_apply_as_given_none_included():
    """recon_config: an override of None is a value, so a preset's check can be turned off
    and the full schedule asked for; other fields keep the preset's values."""
    from kfops.presets import RECON_PRESETS, recon_config

    cpu = recon_config("cpu")
    assert cpu.resize_check == RECON_PRESETS["cpu"]["resize_check"] is not None
    off = recon_config("cpu", resize_check=None, steps=None)
    assert off.resize_check is None and off.steps is None
    assert off.crop == cpu.crop and off.kernel_lr == cpu.kernel_lr
    with pytest.raises(ValueError, match="unknown preset"):
        recon_config("gpu")


def test_final_noise_ref_raises_the_tv_weight_with_the_lr_images_noise(monkeypatch):
    """final_noise_ref σ_r: the final step's TV weight × (1 + (σ̂/σ_r)²), σ̂ read off the LR
    image by kfops.noise.noise_sigma; the run and the damping are unchanged."""
    import kfops.reconstructor as rec
    from kfops.noise import noise_sigma

    cfg = ReconConfig(final_eps=1e-2, final_tv=1e-3, final_noise_ref=0.02)
    assert cfg.final_weights(4, 0.0) == pytest.approx((1e-2, 1e-3))
    assert cfg.final_weights(4, 0.04) == pytest.approx((1e-2, 5e-3))
    assert cfg.final_weights(2, 0.02) == pytest.approx((4e-2, 8e-3))
    assert ReconConfig().final_weights(4, 0.04) == ReconConfig().final_weights(4)
    for bad in (-0.01, math.nan):
        with pytest.raises(ValueError, match="noise"):
            cfg.final_weights(4, bad)
    seen = []

    def spy(lr, kernel, scale, weight, iters, *, eps, **kw):
        seen.append((weight, eps))
        return kfops.bicubic_upsample(lr, scale)

    monkeypatch.setattr(rec, "tv_refine", spy)
    lr, _ = _problem()
    noisy = (lr + 0.03 * torch.randn(lr.shape, generator=torch.Generator().manual_seed(5))).clamp(
        0, 1
    )
    prior = PatchPrior(hidden=8)
    results = []
    for image, ref in ((lr, None), (noisy, None), (noisy, 0.02)):
        run_cfg = ReconConfig(crop=16, final="tv", final_noise_ref=ref, **TINY)
        results.append(
            Reconstructor(2, run_cfg).run(image, prior, generator=torch.Generator().manual_seed(0))
        )
    sigma = noise_sigma(noisy)
    assert 0.02 < sigma < 0.04
    assert [r.noise for r in results] == [0.0, 0.0, pytest.approx(sigma)]
    base_eps, base_tv = ReconConfig().final_weights(2)
    assert seen[1] == pytest.approx((base_tv, base_eps))
    assert seen[2] == pytest.approx((base_tv * (1 + (sigma / 0.02) ** 2), base_eps))
    assert results[1].history == results[2].history
    for bad in (0, -1.0, "0.02"):
        with pytest.raises(ValueError, match="final_noise_ref"):
            Reconstructor(2, ReconConfig(final_noise_ref=bad))


def test_final_jpeg_ref_adds_the_jpeg_step_to_the_tv_weights_factor(monkeypatch):
    """final_jpeg_ref q_r: the factor of the final step's TV weight grows by q̄/q_r for an
    image read from a JPEG of low-frequency step q̄ (on top of the noise term); without it,
    or for lossless input (q̄ = 0), the weight is unchanged."""
    import kfops.reconstructor as rec

    cfg = ReconConfig(final_eps=1e-2, final_tv=1e-3, final_noise_ref=0.02, final_jpeg_ref=0.025)
    assert cfg.final_weights(4, 0.0, 0.0) == pytest.approx((1e-2, 1e-3))
    assert cfg.final_weights(4, 0.0, 0.05) == pytest.approx((1e-2, 3e-3))
    assert cfg.final_weights(4, 0.04, 0.05) == pytest.approx((1e-2, 7e-3))
    assert ReconConfig().final_weights(4, 0.0, 0.05) == ReconConfig().final_weights(4)
    for bad in (-0.01, math.inf):
        with pytest.raises(ValueError, match="jpeg_step"):
            cfg.final_weights(4, 0.0, bad)
    seen = []

    def spy(lr, kernel, scale, weight, iters, *, eps, **kw):
        seen.append(weight)
        return kfops.bicubic_upsample(lr, scale)

    monkeypatch.setattr(rec, "tv_refine", spy)
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    results = []
    for ref, step in ((None, 0.05), (0.025, 0.0), (0.025, 0.05)):
        run_cfg = ReconConfig(crop=16, final="tv", final_jpeg_ref=ref, **TINY)
        results.append(
            Reconstructor(2, run_cfg).run(
                lr, prior, generator=torch.Generator().manual_seed(0), jpeg_step=step
            )
        )
    base_tv = ReconConfig().final_weights(2)[1]
    assert seen == pytest.approx([base_tv, base_tv, base_tv * 3])
    assert [r.jpeg_step for r in results] == [0.0, 0.0, 0.05]
    assert results[0].history == results[2].history  # only the final step changes
    with pytest.raises(ValueError, match="jpeg_step"):
        Reconstructor(2, ReconConfig(crop=16, **TINY)).run(lr, prior, jpeg_step=-1.0)
    with pytest.raises(ValueError, match="final_jpeg_ref"):
        Reconstructor(2, ReconConfig(final_jpeg_ref=0))


def test_kernel_floor_clears_the_estimates_pedestal_and_nothing_else(monkeypatch):
    """kernel_floor: the run is unchanged; the kernel returned and used by the final step is
    the estimate less its floor (kernels.remove_floor), so its outermost ring's median is
    0; a resize filter that replaced the estimate keeps its negative lobes."""
    from kfops.kernels import remove_floor, resize_filter

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    cfg = ReconConfig(final="backproject", **TINY)
    plain = Reconstructor(2, cfg).run(lr, prior, generator=gen())
    floored = Reconstructor(2, dataclasses.replace(cfg, kernel_floor=True)).run(
        lr, prior, generator=gen()
    )
    k = floored.kernel
    ring = torch.cat((k[0], k[-1], k[1:-1, 0], k[1:-1, -1]))
    assert floored.history == plain.history
    assert float(ring.median()) == 0.0 < float(plain.kernel[0].median())
    assert torch.equal(k, remove_floor(plain.kernel))
    eps, _ = cfg.final_weights(2)
    assert torch.allclose(floored.hr, kfops.backproject(lr, k, 2, eps=eps), atol=1e-6)
    import kfops.reconstructor as rec

    def to_filter(y, kernel, scale, method, eps, tv):
        return resize_filter(scale, method, kernel.shape[-1]).to(kernel), True

    monkeypatch.setattr(rec, "resize_fallback", to_filter)
    cfg_f = dataclasses.replace(cfg, kernel_floor=True, resize_check="bicubic")
    swapped = Reconstructor(2, cfg_f).run(lr, prior, generator=gen())
    assert swapped.fallback == "bicubic" and float(swapped.kernel.min()) < 0


def test_consistency_loss_weighs_the_residuals_differences():
    """grad_weight 0 is the MSE of Algorithm 1; w > 0 adds w × the MSEs of the residual's
    differences: nothing for a constant residual, 8·w·a² for one alternating ±a."""
    from kfops.algorithm1 import consistency_loss

    target = torch.rand(2, 3, 8, 10, dtype=torch.float64)
    pred = target + 0.1 * torch.randn(2, 3, 8, 10, dtype=torch.float64)
    assert torch.equal(consistency_loss(pred, target), torch.mean((pred - target) ** 2))
    shift = target + 0.05
    assert float(consistency_loss(shift, target, 3.0)) == pytest.approx(0.05**2)
    ii, jj = torch.meshgrid(torch.arange(8), torch.arange(10), indexing="ij")
    checker = 0.05 * (1 - 2 * ((ii + jj) % 2)).to(torch.float64)
    loss = consistency_loss(target + checker, target, 0.5)
    assert float(loss) == pytest.approx(0.05**2 * (1 + 8 * 0.5))


def test_grad_weight_enters_phase2_and_is_validated():
    """A run with grad_weight > 0 takes another path than the MSE alone (the same seed),
    still fits the LR image, and a negative or infinite weight is refused."""
    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    runs = [
        Reconstructor(2, ReconConfig(grad_weight=w, **TINY)).run(
            lr, prior, generator=torch.Generator().manual_seed(0)
        )
        for w in (0.0, 2.0)
    ]
    assert not torch.allclose(runs[0].kernel, runs[1].kernel, atol=1e-5)
    assert sum(runs[1].history[-4:]) < sum(runs[1].history[:4])
    for bad in (-1.0, math.inf, float("nan")):
        with pytest.raises(ValueError, match="grad_weight"):
            Reconstructor(2, ReconConfig(grad_weight=bad))


def test_a_deadline_keeps_time_back_for_the_checks_and_the_final_step(monkeypatch):
    """Phase 2 stops the estimated post-Phase-2 time before the deadline (one tick of a fake
    clock per call), and the whole-image refinement then runs all its steps."""
    import kfops.reconstructor as rec

    lr, _ = _problem()
    prior = PatchPrior(hidden=8)
    prior.fit(lr, steps=5, crop=16, progress=False)
    cfg = ReconConfig(crop=16, final="tv", final_iters=5, **TINY)
    clock = iter(range(10**6))
    monkeypatch.setattr(rec.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(rec, "post_phase2_seconds", lambda *a, **k: 1000.0)
    steps = []
    res = Reconstructor(2, cfg).run(
        lr,
        prior,
        generator=torch.Generator().manual_seed(0),
        deadline=1010.0,
        final_progress=lambda d, t: steps.append(d),
    )
    assert 0 < len(res.history) < cfg.total_iterations()
    assert steps[-1] == 5


def test_post_phase2_estimate_follows_the_work():
    from kfops.budget import post_phase2_seconds
    from kfops.presets import recon_config

    cpu = torch.device("cpu")
    cfg = recon_config("cpu")
    assert post_phase2_seconds(recon_config("paper"), (1, 3, 64, 64), 4, 24, cpu) == 0
    small = post_phase2_seconds(cfg, (1, 3, 24, 24), 4, 24, cpu)
    large = post_phase2_seconds(cfg, (1, 3, 300, 300), 4, 24, cpu)
    gated = post_phase2_seconds(cfg, (1, 3, 300, 300), 4, 24, cpu, resize_check=False)
    assert 0 < small < gated < large
    averaged = dataclasses.replace(cfg, restarts=3, consensus="average")
    assert post_phase2_seconds(averaged, (1, 3, 300, 300), 4, 24, cpu) > 1.5 * large


def test_post_phase2_estimate_checks_every_averaged_run(monkeypatch):
    """With ``consensus='average'`` each run's kernel meets the resize check and gets a
    final image, so what the check adds to the reserve is three times one run's."""
    import kfops.budget as budget
    from kfops.presets import recon_config

    monkeypatch.setattr(budget, "iteration_seconds", lambda *a, **k: 1.0)
    cpu = torch.device("cpu")

    def added_by_check(cfg):
        on = budget.post_phase2_seconds(cfg, (1, 3, 64, 64), 4, 24, cpu)
        off = budget.post_phase2_seconds(cfg, (1, 3, 64, 64), 4, 24, cpu, resize_check=False)
        return on - off

    cfg = recon_config("cpu")
    averaged = dataclasses.replace(cfg, restarts=3, consensus="average")
    assert added_by_check(cfg) > 0
    assert added_by_check(averaged) == pytest.approx(3 * added_by_check(cfg))
