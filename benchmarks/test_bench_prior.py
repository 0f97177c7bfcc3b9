"""Patch-diffusion network speed (one 64² crop, 2 threads): a training step (forward,
backward, Adam) of the eager module at the paper's width and at the CPU preset's width,
channels-last as the alternative memory layout, and the Phase-2 uses: forward only, and
forward + gradient w.r.t. the input with frozen weights. Reference: the eager 128-channel
training step (``eager``)."""

from __future__ import annotations

import pytest
import torch

from kfops.diffusion import PDNet


def _setup(hidden: int, channels_last: bool = False):
    net = PDNet(3, hidden)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return net, x, torch.tensor([321])


@pytest.mark.parametrize("hidden", [128, 32])
@pytest.mark.parametrize("variant", ["eager", "channels_last"])
def test_pd_train_step(benchmark, record_role, hidden, variant):
    net, x, t = _setup(hidden, variant == "channels_last")
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    is_ref = hidden == 128 and variant == "eager"
    role = "eager" if is_ref else f"train {hidden}ch {variant}"
    record_role("PD 64² crop, 128 ch", role, reference=is_ref)

    def step():
        loss = (net(x, t) - x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    benchmark.pedantic(step, rounds=8 if hidden == 128 else 20, warmup_rounds=2)


@pytest.mark.parametrize("hidden", [128, 32])
@pytest.mark.parametrize("mode", ["forward", "forward+input-grad"])
def test_pd_phase2_use(benchmark, record_role, hidden, mode):
    net, x, t = _setup(hidden)
    net.requires_grad_(False)
    record_role("PD 64² crop, 128 ch", f"{mode} {hidden}ch")

    if mode == "forward":

        def run():
            with torch.no_grad():
                net(x, t)
    else:
        xi = x.clone().requires_grad_()

        def run():
            torch.autograd.grad(net(xi, t).square().sum(), xi)

    benchmark.pedantic(run, rounds=10 if hidden == 128 else 30, warmup_rounds=2)
