"""Helpers of the Phase-2 benchmark scripts (kernel names, config overrides)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.phase2_ablation import KERNELS, _kernels, _variant, parse_override
from kfops.consensus import kernel_spread
from kfops.errors import KernelError
from kfops.kernels.named import data_dir


@pytest.fixture
def dev_data():
    """The development data folder (``../shared/data`` or ``$KFOPS_DATA``): the scripts'
    kernel sets read the Levin kernels from it; the test is skipped where it is absent."""
    try:
        return data_dir()
    except KernelError:
        pytest.skip("the development data folder is not beside the repository")


def test_any_gaussian_can_be_named_and_scales_with_the_factor(dev_data):
    k4 = _kernels("gauss_1.2_1.2_0,levin_k3")["gauss_1.2_1.2_0"]
    assert k4.shape == (24, 24) and abs(float(k4.sum()) - 1) < 1e-5
    assert kernel_spread(k4) == pytest.approx(1.2 * math.sqrt(2), abs=0.02)
    k2 = _kernels("gauss_1.2_1.2_0", scale=2)["gauss_1.2_1.2_0"]
    assert kernel_spread(k2) == pytest.approx(0.6 * math.sqrt(2), abs=0.02)
    # standard deviations 1 and 3 px along the axes at angle 0: variances about 1 and 9
    k = _kernels("gauss_1.0_3.0_0")["gauss_1.0_3.0_0"].double()
    axis = torch.arange(24, dtype=torch.float64) - 11.5
    variances = sorted(float((k.sum(d) * axis**2).sum()) for d in (0, 1))
    assert variances == pytest.approx([1.0, 9.0], rel=0.1)


def test_default_kernel_set_is_the_documented_five(dev_data):
    table = _kernels(None)
    assert list(table)[: len(KERNELS)] == list(KERNELS) and len(table) == len(KERNELS) + 1
    assert list(table)[-1].startswith("gauss_")


@pytest.mark.parametrize(
    "item, expected",
    [
        ("steps=6", ("steps", 6)),
        ("lr=3e-4", ("lr", 3e-4)),
        ("consensus=mean", ("consensus", "mean")),
    ],
)
def test_overrides_are_read_as_numbers_when_they_are(item, expected):
    assert parse_override(item) == expected


def test_ablation_variants_take_bare_words_json_and_several_keys():
    assert _variant("base") == ("base", {})
    assert _variant("mode=dip")[1] == {"mode": "dip"}  # as the docstring's example writes it
    assert _variant("mode=dip,kernel_model=direct_relu")[1] == {
        "mode": "dip",
        "kernel_model": "direct_relu",
    }
    assert _variant('crop_kernels="each",crops=3')[1] == {"crop_kernels": "each", "crops": 3}
    assert _variant("resize_check=null")[1] == {"resize_check": None}


def test_dev_case_is_the_centre_crop_degraded_by_the_named_kernel(dev_data):
    from benchmarks.phase2_ablation import dev_case
    from kfops import degrade

    image, name, k, hr, lr = dev_case("baby/gauss_1.0_2.0_0.3", scale=2)
    assert (image, name) == ("baby", "gauss_1.0_2.0_0.3")
    assert hr.shape == (1, 3, 256, 256) and lr.shape == (1, 3, 128, 128)
    assert kernel_spread(k) == pytest.approx(0.5 * math.sqrt(5), abs=0.02)  # widths × s/4
    assert torch.equal(lr, degrade(hr, k, 2, "reflect"))


def test_cross_scale_scores_are_finite_and_the_slope_falls_as_the_kernel_widens():
    from benchmarks.kernel_scale import scale_scores
    from kfops.kernels import gaussian

    g = torch.Generator().manual_seed(0)
    y = torch.rand(1, 1, 64, 64, generator=g, dtype=torch.float64)
    narrow = scale_scores(y, gaussian(13, 0.8), 4)
    wide = scale_scores(y, gaussian(13, 3.0), 4)
    assert set(narrow) == {"spec", "slope", "ns", "nn", "offset", "bi"}
    assert all(math.isfinite(v) for v in (*narrow.values(), *wide.values()))
    assert wide["slope"] < narrow["slope"]
    # bi = nn + the reverse distance (LR patches to D's); on noise, a blurred D has no
    # patch near a sharp one, so the reverse term grows with the width
    back_narrow, back_wide = narrow["bi"] - narrow["nn"], wide["bi"] - wide["nn"]
    assert 0 <= back_narrow < back_wide


def test_synthesis_offset_of_the_scripts_kernels(dev_data):
    """The scripts' 6s-tap kernels are centred on the array: half a pixel off the aligned
    grid at ×3, on it at ×4; the resize filters are built on it at every scale."""
    from benchmarks.alignment import synthesis_offset

    at3 = _kernels("levin_k2,gauss_1.0_3.0_0,bicubic", scale=3)
    assert synthesis_offset(at3["levin_k2"], 3) == (-0.5, -0.5)
    assert synthesis_offset(at3["gauss_1.0_3.0_0"], 3) == (-0.5, -0.5)
    assert synthesis_offset(at3["bicubic"], 3) == (0.0, 0.0)
    assert synthesis_offset(_kernels("levin_k2")["levin_k2"], 4) == (0.0, 0.0)


def test_pnp_dct_denoiser_and_data_step():
    """benchmarks.pnp_dct: the DCT is orthonormal, a zero threshold gives the image back,
    shrinkage lowers the error of a noisy smooth image, and the data step solves its
    normal equations."""
    from benchmarks.pnp_dct import data_step, dct_denoise, dct_matrix
    from kfops.kernels import gaussian
    from kfops.ops import degrade, degrade_adjoint

    d = dct_matrix(8)
    assert torch.allclose(d @ d.T, torch.eye(8), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 40), torch.linspace(0, 1, 36), indexing="ij")
    clean = torch.stack([0.3 + 0.4 * xx * yy, 0.5 * yy, 0.2 + 0.3 * xx])[None]
    assert torch.allclose(dct_denoise(clean, 0.0), clean, atol=1e-5)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=g)
    err = lambda x: float(((x - clean) ** 2).mean())  # noqa: E731
    assert err(dct_denoise(noisy, 0.05)) < 0.3 * err(noisy)
    k = gaussian(8, 1.2).float()
    y = degrade(clean, k, 2, "reflect")
    z = torch.rand(clean.shape, generator=g)
    x = data_step(y, k, 2, z, 0.05, z, iters=60)
    normal = degrade_adjoint(degrade(x, k, 2, "reflect") - y, k, 2, "reflect", hr_size=(40, 36))
    assert float((normal + 0.05 * (x - z)).abs().max()) < 1e-4
