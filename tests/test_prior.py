"""Patch diffusion: schedule algebra, the 15×15 receptive field, training, sampling and
persistence of PatchPrior."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import kfops
from kfops.diffusion import DDPMSchedule, PatchPrior, from_model, receptive_field
from kfops.errors import KfopsError


def test_schedule_buffers_and_conversions_round_trip():
    s = DDPMSchedule.linear(1000)
    assert s.alphas_cumprod.dtype == torch.float64
    torch.testing.assert_close(s.betas[[0, -1]], torch.tensor([1e-4, 0.02], dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 999])
    xt = s.q_sample(x0, t, eps)
    v = s.v_target(x0, t, eps)
    torch.testing.assert_close(s.x0_from_v(xt, t, v), x0)
    torch.testing.assert_close(s.eps_from_v(xt, t, v), eps)


def test_posterior_is_the_gaussian_conditional():
    s = DDPMSchedule.linear(1000).respaced(25)
    i = torch.tensor([7])
    ac, ac_prev = s.alphas_cumprod[7], s.alphas_cumprod[6]
    a = ac / ac_prev  # alpha of this (respaced) step
    x0 = torch.tensor([[0.3]], dtype=torch.float64)
    xt = torch.tensor([[-0.8]], dtype=torch.float64)
    # q(x_{t-1}|x0) = N(sqrt(ac_prev) x0, 1-ac_prev); q(x_t|x_{t-1}) = N(sqrt(a) x_{t-1}, 1-a)
    prec = 1 / (1 - ac_prev) + a / (1 - a)
    mean = (math.sqrt(ac_prev) * x0 / (1 - ac_prev) + math.sqrt(a) * xt / (1 - a)) / prec
    m, var = s.posterior(x0, xt, i)
    torch.testing.assert_close(m, mean)
    torch.testing.assert_close(var.flatten(), (1 / prec).reshape(1))
    assert s.timesteps[0] == 0 and s.timesteps[-1] == 999 and len(s) == 25


@pytest.mark.parametrize("hidden", [128, 16])
def test_receptive_field_is_exactly_15x15(hidden):
    mask = receptive_field(PatchPrior(hidden=hidden).net, size=31)
    rows, cols = mask.nonzero(as_tuple=True)
    assert mask.sum() == 225
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (8, 22, 8, 22)


def _lr_image(size=48):
    hr = kfops.io.load_image("examples/butterfly.png").pixels
    return kfops.degrade(hr, kfops.kernels.gaussian(8, 1.2).float(), 4)[..., :size, :size]


def test_loss_falls_on_a_real_image():
    prior = PatchPrior(hidden=16)
    losses = prior.fit(
        _lr_image(),
        steps=150,
        crop=24,
        lr=3e-3,
        batch=2,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    assert sum(losses[-30:]) / 30 < 0.7 * sum(losses[:30]) / 30
    assert prior.trained_steps == 150 and prior.trained_on == kfops.diffusion.image_hash(
        _lr_image()
    )


def test_same_seed_same_weights_and_small_images():
    img = _lr_image(20)  # smaller than the crop: the crop is the whole image
    a, b = PatchPrior(hidden=8), PatchPrior(hidden=8)
    b.load_state_dict(a.state_dict())
    for p in (a, b):
        p.fit(img, steps=5, crop=64, generator=torch.Generator().manual_seed(3), progress=False)
    for (_, wa), (_, wb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(wa, wb)
    c = PatchPrior(hidden=8)
    c.load_state_dict(a.state_dict())
    c.fit(img, steps=5, crop=64, generator=torch.Generator().manual_seed(4), progress=False)
    assert not torch.equal(c.net.out.weight, a.net.out.weight)


def test_the_generator_draws_the_initial_weights():
    """``PatchPrior(generator=g)``: the same seed gives the same weights whatever the
    global RNG's state (which torch seeds at random in every process), another seed other
    weights, and the global RNG is left as it was."""

    def build(seed: int) -> PatchPrior:
        return PatchPrior(hidden=8, generator=torch.Generator().manual_seed(seed))

    torch.manual_seed(1)
    a = build(3)
    torch.manual_seed(2)
    state = torch.get_rng_state()
    b = build(3)
    assert torch.equal(torch.get_rng_state(), state)
    for (_, wa), (_, wb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(wa, wb)
    assert not torch.equal(build(4).net.out.weight, a.net.out.weight)


def test_save_load_gives_identical_outputs(tmp_path):
    prior = PatchPrior(hidden=8)
    prior.fit(_lr_image(), steps=3, progress=False)
    prior.save(tmp_path / "p.pt")
    back = PatchPrior.load(tmp_path / "p.pt")
    assert back.config == prior.config and back.trained_on == prior.trained_on
    x = torch.randn(2, 3, 17, 19, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([3, 900])
    assert torch.equal(back.predict_x0(x, t), prior.predict_x0(x, t))
    s1 = back.sample((1, 3, 8, 8), steps=5, generator=torch.Generator().manual_seed(1))
    s2 = prior.sample((1, 3, 8, 8), steps=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(s1, s2)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(KfopsError):
        PatchPrior.load(tmp_path / "bad.pt")


def test_sampling_on_another_device_than_the_prior_is_refused():
    with pytest.raises(ValueError, match="move it with"):
        PatchPrior(hidden=8).sample((1, 3, 8, 8), steps=2, device="meta")


def test_predict_x0_passes_gradients_to_its_input():
    prior = PatchPrior(hidden=8).requires_grad_(False)
    x = torch.randn(1, 3, 12, 12, requires_grad=True)
    prior.predict_x0(x, torch.tensor([100])).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_predict_x0_layout_does_not_change_values_or_gradients():
    """predict_x0 runs the network channels-last on the CPU: the values and the input
    gradient equal those of the network run on the default layout, and the output is
    contiguous."""
    prior = PatchPrior(hidden=8).requires_grad_(False).double()
    t = torch.tensor([40, 300])
    x = torch.randn(2, 3, 13, 10, dtype=torch.float64, requires_grad=True)
    out = prior.predict_x0(x, t)
    assert out.is_contiguous() and out.shape == x.shape
    (g,) = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), x)
    y = x.detach().clone().requires_grad_(True)
    ref = prior.schedule.x0_from_v(y, t, prior.net(y, t))
    (g_ref,) = torch.autograd.grad((ref * torch.linspace(-1, 1, ref.numel()).view_as(ref)).sum(), y)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


def _stripes(theta_deg, n=48, period=6.0):
    th = math.radians(theta_deg)
    yy, xx = torch.meshgrid(torch.arange(n).float(), torch.arange(n).float(), indexing="ij")
    s = 0.5 + 0.4 * torch.sin(2 * math.pi * (xx * math.cos(th) + yy * math.sin(th)) / period)
    return torch.stack([s, 0.8 * s + 0.1, 1 - s])[None]


def _orientation_hist(img, bins=18):
    g = img.mean(1, keepdim=True)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(g, kx), F.conv2d(g, kx.transpose(-1, -2))
    ang = torch.atan2(gy, gx) % math.pi
    idx = (ang / math.pi * bins).long().clamp(max=bins - 1).flatten()
    h = torch.zeros(bins).index_add_(0, idx, torch.sqrt(gx**2 + gy**2).flatten())
    return h / h.sum()


def test_prior_learns_the_dominant_orientation():
    """Samples of a prior trained on 30° stripes match the 30° orientation histogram far
    better than samples of a prior trained on the orthogonal (120°) stripes."""
    target = _orientation_hist(_stripes(30))
    dist = {}
    for angle in (30, 120):
        prior = PatchPrior(hidden=16)
        prior.fit(
            _stripes(angle),
            steps=400,
            crop=20,
            lr=4e-3,
            batch=2,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
        s = from_model(
            prior.sample((2, 3, 32, 32), steps=50, generator=torch.Generator().manual_seed(1))
        ).clamp(0, 1)
        dist[angle] = float((_orientation_hist(s) - target).abs().sum())
    assert dist[30] < 0.8 * dist[120], dist


def test_train_prior_cli(tmp_path):
    from click.testing import CliRunner

    from kfcli.main import cli

    src = tmp_path / "lr.png"
    kfops.io.save_image(_lr_image(40), src)
    out = tmp_path / "prior.pt"
    res = CliRunner().invoke(
        cli, ["train-prior", str(src), "-o", str(out), "--steps", "3", "--seed", "1", "-q"]
    )
    assert res.exit_code == 0, res.output
    prior = PatchPrior.load(out)
    assert prior.config.hidden == 32 and prior.trained_steps == 3
    bad = CliRunner().invoke(cli, ["train-prior", str(src), "-o", str(tmp_path / "p.txt")])
    assert bad.exit_code == 7 and "kf: error:" in bad.output
