"""Degradation op speed: fused kfops ops against PyTorch compositions computing the same
thing, forward and forward+backward (gradients for image and kernel), 24×24 kernel, s = 4.

Baselines:
  * ``stride``: ``F.conv2d(F.pad(x), k, stride=s, groups=C)`` — the best direct composition;
  * ``naive``: full-resolution ``conv2d`` then ``[::s, ::s]`` slicing;
  * ``fft``: ``rfft2`` correlation at full resolution, then subsampling.
Each baseline is checked against the fused result before it is timed.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import kfops
from benchmarks.conftest import note

S, K = 4, 24
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _pads(k: int, s: int, h: int):
    o = (s - k) // 2
    ho = h // s
    return -o, o + s * (ho - 1) + k - 1 - (h - 1)  # before, after


def stride_comp(x, w, s):
    c = x.shape[1]
    before, after = _pads(w.shape[-1], s, x.shape[-1])
    xp = F.pad(x, (before, after, before, after), mode="reflect")
    return F.conv2d(xp, w.expand(c, 1, *w.shape[-2:]), stride=s, groups=c)


def naive_comp(x, w, s):
    c = x.shape[1]
    before, after = _pads(w.shape[-1], s, x.shape[-1])
    xp = F.pad(x, (before, after, before, after), mode="reflect")
    full = F.conv2d(xp, w.expand(c, 1, *w.shape[-2:]), groups=c)
    return full[..., ::s, ::s]


def fft_comp(x, w, s):
    k = w.shape[-1]
    before, after = _pads(k, s, x.shape[-1])
    xp = F.pad(x, (before, after, before, after), mode="reflect")
    hp, wp = xp.shape[-2:]
    kp = F.pad(w.reshape(1, 1, k, k), (0, wp - k, 0, hp - k))
    corr = torch.fft.irfft2(torch.fft.rfft2(xp) * torch.conj(torch.fft.rfft2(kp)), s=(hp, wp))
    ho, wo = x.shape[-2] // s, x.shape[-1] // s
    return corr[..., : s * (ho - 1) + 1 : s, : s * (wo - 1) + 1 : s]


def fused(x, w, s):
    return kfops.degrade(x, w, s, "reflect", check_values=False)


METHODS = {"fused": fused, "stride": stride_comp, "naive": naive_comp, "fft": fft_comp}


def _sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def _inputs(n, dev):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, n, n, generator=g).to(dev)
    w = torch.rand(K, K, generator=g)
    return x, (w / w.sum()).to(dev)


CASES = [
    (n, m, dev)
    for dev in DEVICES
    for n in (384, 1024)
    for m in METHODS
    if not (m == "naive" and n == 1024 and dev == "cpu")
]


@pytest.mark.parametrize("n,method,dev", CASES)
def test_forward(benchmark, record_role, n, method, dev):
    x, w = _inputs(n, dev)
    fn = METHODS[method]
    torch.testing.assert_close(fn(x, w, S), fused(x, w, S), rtol=1e-4, atol=1e-4)
    record_role(f"forward {dev} 3x{n}x{n}", method)

    def run():
        fn(x, w, S)
        _sync(dev)

    benchmark.pedantic(run, rounds=40 if n == 384 else 5, warmup_rounds=1)


@pytest.mark.parametrize("n,method,dev", CASES)
def test_forward_backward(benchmark, record_role, n, method, dev):
    x, w = _inputs(n, dev)
    x.requires_grad_()
    w.requires_grad_()
    fn = METHODS[method]
    gy = torch.randn(1, 3, n // S, n // S, generator=torch.Generator().manual_seed(1)).to(dev)
    ref = torch.autograd.grad(fused(x, w, S), (x, w), gy)
    got = torch.autograd.grad(fn(x, w, S), (x, w), gy)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
    record_role(f"forward+backward {dev} 3x{n}x{n}", method)

    def run():
        torch.autograd.grad(fn(x, w, S), (x, w), gy)
        _sync(dev)

    benchmark.pedantic(run, rounds=30 if n == 384 else 3, warmup_rounds=1)


@pytest.mark.parametrize("dev", DEVICES)
def test_memory_bandwidth_reference(benchmark, record_role, dev):
    """Copy of the forward's input: with the output write, the memory traffic the fused
    forward cannot avoid. The summary reports forward time / this estimate."""
    x, _ = _inputs(1024, dev)
    record_role(f"bandwidth {dev} 3x1024x1024", "copy")
    out = torch.empty_like(x)

    def run():
        out.copy_(x)
        _sync(dev)

    benchmark.pedantic(run, rounds=30, warmup_rounds=2)
    if benchmark.disabled:  # --benchmark-disable: run once as a test, nothing timed
        return
    t = benchmark.stats.stats.mean
    gbps = 2 * x.numel() * 4 / t / 1e9
    bytes_fwd = x.numel() * 4 + x.numel() // (S * S) * 4
    note(
        f"bandwidth {dev}: copy {gbps:.1f} GB/s -> forward 3x1024² memory-bound estimate "
        f"{bytes_fwd / (gbps * 1e9) * 1e3:.2f} ms (compare with the fused forward above)"
    )
