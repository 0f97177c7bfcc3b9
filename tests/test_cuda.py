"""CUDA backend against the CPU backend; skipped without a GPU (run benchmarks/gpu_check.sh)."""

from __future__ import annotations

import pytest
import torch

import kfops
from kfops.ops.reference import degrade_adjoint_ref, degrade_kernel_grad_ref, degrade_ref

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(not kfops.HAS_EXT, reason="extension not built"),
]
PADDINGS = ["reflect", "replicate", "circular", "zeros", "valid"]


@pytest.mark.parametrize("pad", PADDINGS)
@pytest.mark.parametrize("s,k", [(1, 3), (2, 4), (3, 5), (4, 24), (4, 7)])
def test_cuda_matches_reference_fp64(pad, s, k):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 41, 38, generator=g, dtype=torch.float64)
    ker = torch.rand(3, k, k, generator=g, dtype=torch.float64)
    if min(kfops.ops.lr_size((41, 38), (k, k), s, pad)) < 1:
        pytest.skip("no output")
    y = kfops.degrade(x.cuda(), ker.cuda(), s, pad)
    torch.testing.assert_close(y.cpu(), degrade_ref(x, ker, s, pad))
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        kfops.degrade_adjoint(gy.cuda(), ker.cuda(), s, pad, (41, 38)).cpu(),
        degrade_adjoint_ref(gy, ker, s, pad, (41, 38)),
    )
    torch.testing.assert_close(
        kfops.degrade_kernel_grad(x.cuda(), gy.cuda(), s, pad, ker.shape).cpu(),
        degrade_kernel_grad_ref(x, gy, s, pad, ker.shape),
    )


@pytest.mark.parametrize(
    "dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-2), (torch.bfloat16, 1e-1)]
)
def test_cuda_dtypes_match_cpu(dtype, tol):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 64, 64, generator=g).to(dtype)
    ker = torch.rand(24, 24, generator=g).to(dtype)
    y_gpu = kfops.degrade(x.cuda(), ker.cuda(), 4, "reflect", check_values=False).cpu()
    y_cpu = kfops.degrade(x, ker, 4, "reflect", check_values=False)
    torch.testing.assert_close(y_gpu.double(), y_cpu.double(), rtol=tol, atol=tol * 10)


def test_cuda_gradcheck_and_opcheck():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 10, 11, generator=g, dtype=torch.float64).cuda().requires_grad_()
    ker = torch.rand(2, 4, 4, generator=g, dtype=torch.float64).cuda().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: kfops.degrade(a, b, 2, "reflect"), (x, ker))
    torch.library.opcheck(torch.ops.kfops.degrade.default, (x, ker, 2, "reflect"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_tv_grad_matches_the_reference(dtype):
    from kfops.ops import tv_grad
    from kfops.ops.reference import tv_grad_ref

    x = torch.rand(2, 3, 37, 41, generator=torch.Generator().manual_seed(4), dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    got = tv_grad(x.cuda(), 0.02).cpu()
    torch.testing.assert_close(got, tv_grad_ref(x, 0.02), rtol=tol, atol=tol)
    torch.library.opcheck(torch.ops.kfops.tv_grad.default, (x.cuda(), 0.02))


def test_cuda_reconstructor_runs_the_cpu_recipe_on_the_gpu():
    """Phase 2 with the cpu recipe's steps (two crops, the radius check, the resize check,
    restarts) on CUDA: the image stays on the GPU, the kernel comes back on the CPU."""
    from kfops.diffusion import PatchPrior
    from kfops.presets import recon_config
    from kfops.reconstructor import Reconstructor

    g = torch.Generator().manual_seed(5)
    lr = torch.rand(1, 3, 40, 40, generator=g).cuda()
    prior = PatchPrior(hidden=8).cuda()
    cfg = recon_config(
        "smoke",
        crop=16,
        crops=2,
        kernel_radius_at=1,
        kernel_radius_cv=True,
        resize_check="bicubic",
        resize_gate=None,
        restarts=2,
        final_noise_ref=0.025,
    )
    res = Reconstructor(4, cfg).run(lr, prior, generator=torch.Generator().manual_seed(0))
    assert res.hr.device.type == "cuda" and res.hr.shape == (1, 3, 160, 160)
    assert res.kernel.device.type == "cpu" and torch.isfinite(res.kernel).all()
    assert abs(float(res.kernel.sum()) - 1) < 1e-4


def test_cuda_operator_api_with_a_cpu_generator_and_filter():
    """Degradation on CUDA images: a CPU generator drives the random probes, a new filter
    of another shape stays on the operator's device, a CPU filter meets CUDA images."""
    g = torch.Generator().manual_seed(6)
    u = torch.rand(1, 3, 32, 32, generator=g, dtype=torch.float64).cuda()
    op = kfops.Degradation(torch.rand(5, 5, generator=g, dtype=torch.float64), 2)
    assert abs(float(op.adjointness_test(u, generator=g))) < 1e-10 * u.numel()
    assert float(op.compute_sqnorm(u, generator=g)) > 0
    learn = kfops.Degradation(torch.rand(5, 5, generator=g), 2, learnable=True).cuda()
    learn.update_parameters(filter=torch.rand(7, 7, generator=g))
    assert learn.filter.device.type == "cuda" and learn.filter.shape == (7, 7)


def test_cuda_prior_loads_and_samples_on_the_gpu(tmp_path):
    from kfops.diffusion import PatchPrior, receptive_field

    prior = PatchPrior(hidden=8)
    prior.fit(torch.rand(1, 3, 24, 24), steps=2, progress=False)
    prior.save(tmp_path / "p.pt")
    back = PatchPrior.load(tmp_path / "p.pt", map_location="cuda")
    x = torch.randn(1, 3, 16, 16).cuda()
    assert back.predict_x0(x, torch.tensor([10]).cuda()).device.type == "cuda"
    sample = back.sample((1, 3, 8, 8), steps=3, generator=torch.Generator().manual_seed(0))
    assert sample.device.type == "cuda"
    assert receptive_field(back.net).sum() == 15 * 15
