"""kfops.metrics: PSNR/SSIM on Y against scikit-image, and the kernel metrics."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import kfops
from kfops import kernels as K
from kfops import metrics as M
from kfops.errors import KernelError, ShapeError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "butterfly.png"


def _y_numpy(img: torch.Tensor) -> np.ndarray:
    """Independent Y of a (B, 3, H, W) tensor, float64 numpy (B, H, W)."""
    a = img.to(torch.float64).numpy()
    return (16.0 + 65.481 * a[:, 0] + 128.553 * a[:, 1] + 24.966 * a[:, 2]) / 255.0


def _skimage_scores(sr: torch.Tensor, hr: torch.Tensor, c: int) -> tuple[list, list]:
    ys, yh = _y_numpy(sr), _y_numpy(hr)
    if c:
        ys, yh = ys[:, c:-c, c:-c], yh[:, c:-c, c:-c]
    psnr = [peak_signal_noise_ratio(yh[i], ys[i], data_range=1.0) for i in range(len(ys))]
    ssim = [
        structural_similarity(
            ys[i],
            yh[i],
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
        for i in range(len(ys))
    ]
    return psnr, ssim


def test_rgb_to_y_range_and_grey():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(3, 2, 2)
    assert torch.allclose(M.rgb_to_y(white), torch.full((1, 1, 2, 2), 235 / 255))
    assert M.rgb_to_y(black).shape == (1, 2, 2)
    assert torch.allclose(M.rgb_to_y(black), torch.full((1, 2, 2), 16 / 255))
    grey = torch.rand(2, 1, 5, 4)
    assert torch.equal(M.rgb_to_y(grey), grey)


@pytest.mark.parametrize("crop_border", [None, 0, 4])
def test_psnr_ssim_match_skimage_random(crop_border):
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 48, 53, generator=g, dtype=torch.float64)
    sr = (hr + 0.08 * torch.randn(hr.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    c = M.default_crop_border(48, 53) if crop_border is None else crop_border
    ref_p, ref_s = _skimage_scores(sr, hr, c)
    got_p = M.psnr_y(sr, hr, crop_border, reduction="none")
    got_s = M.ssim_y(sr, hr, crop_border, reduction="none")
    assert got_p.shape == (2,) and got_s.shape == (2,)
    np.testing.assert_allclose(got_p.numpy(), ref_p, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_s.numpy(), ref_s, rtol=0, atol=1e-6)
    assert M.psnr_y(sr, hr, crop_border) == pytest.approx(np.mean(ref_p), abs=1e-6)
    assert M.ssim_y(sr, hr, crop_border) == pytest.approx(np.mean(ref_s), abs=1e-6)


def test_psnr_ssim_match_skimage_real_image():
    hr = kfops.io.load_image(EXAMPLE).pixels  # (1, 3, 256, 256) float32
    crops = [hr[..., 20:116, 30:126], hr[..., 140:236, 100:196]]
    for crop in crops:
        lr = F.avg_pool2d(crop, 2)
        sr = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
        ref_p, ref_s = _skimage_scores(sr, crop, M.default_crop_border(96, 96))
        assert M.psnr_y(sr, crop) == pytest.approx(ref_p[0], abs=1e-6)
        assert M.ssim_y(sr, crop) == pytest.approx(ref_s[0], abs=1e-6)
        assert 15 < ref_p[0] < 40 and 0.5 < ref_s[0] < 1
    # a (C, H, W) input is one image
    assert M.psnr_y(sr[0], crop[0]) == pytest.approx(M.psnr_y(sr, crop), abs=1e-12)


def test_identical_images_give_inf_psnr_and_unit_ssim():
    x = torch.rand(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.psnr_y(x, x) == math.inf
        assert torch.isinf(M.psnr_y(x, x, reduction="none")).all()
        assert M.ssim_y(x, x) == pytest.approx(1.0, abs=1e-12)
        # one perfect image in the batch: the mean is inf
        y = x.clone()
        y[1] = 0.5
        assert M.psnr_y(y, x) == math.inf


def test_psnr_analytic():
    g = torch.Generator().manual_seed(1)
    hr = 0.25 + 0.5 * torch.rand(1, 1, 40, 40, generator=g, dtype=torch.float64)
    noise = (torch.rand(hr.shape, generator=g, dtype=torch.float64) - 0.5) * 0.1  # U(-.05, .05)
    c = M.default_crop_border(40, 40)
    mse = float(noise[..., c:-c, c:-c].pow(2).mean())
    assert M.psnr_y(hr + noise, hr) == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)
    # a constant offset d on R, G, B moves Y by d * 219 / 255
    rgb = torch.rand(1, 3, 30, 30, generator=g, dtype=torch.float64) * 0.9
    d = 0.02
    assert M.psnr_y(rgb + d, rgb) == pytest.approx(-20 * math.log10(d * 219 / 255), abs=1e-9)
    assert M.psnr_y(hr + 0.01, hr, data_range=2.0) == pytest.approx(
        10 * math.log10(4 / 1e-4), abs=1e-9
    )


def test_default_crop_border_is_five_percent():
    assert M.default_crop_border(512, 512) == 26  # 25.6
    assert M.default_crop_border(256, 300) == 13  # 12.8
    assert M.default_crop_border(200, 240) == 10
    assert M.default_crop_border(30, 50) == 2  # 1.5 rounds half up
    hr = torch.rand(1, 3, 200, 240)
    sr = hr.clone()
    sr[..., :10, :] = 0  # errors only in the default border: invisible by default
    assert M.psnr_y(sr, hr) == math.inf
    assert M.psnr_y(sr, hr, crop_border=9) < 40
    assert M.ssim_y(sr, hr) == pytest.approx(1.0, abs=1e-12)


def test_shape_errors():
    a = torch.rand(1, 3, 32, 32)
    with pytest.raises(ShapeError):
        M.psnr_y(a, torch.rand(1, 3, 32, 31))
    with pytest.raises(ShapeError):
        M.ssim_y(a, torch.rand(3, 32, 32))
    with pytest.raises(ShapeError):
        M.psnr_y(torch.rand(1, 2, 32, 32), torch.rand(1, 2, 32, 32))
    with pytest.raises(ShapeError):
        M.psnr_y(a, a, crop_border=16)
    with pytest.raises(ShapeError):
        M.ssim_y(a, a, crop_border=11)  # 10x10 left < 11x11 window
    with pytest.raises(ShapeError):
        M.psnr_y(a, a, crop_border=-1)
    with pytest.raises(ValueError):
        M.psnr_y(a, a, reduction="sum")
    assert issubclass(ShapeError, kfops.KfopsError)


def test_kernel_ncc_shift_and_rotation():
    k = K.l_shape(12)
    shifted = torch.roll(F.pad(k, (4, 4, 4, 4)), shifts=(3, -2), dims=(0, 1))  # 20x20
    assert M.kernel_ncc(k, k) == pytest.approx(1.0, abs=1e-12)
    assert M.kernel_ncc(shifted, k) == pytest.approx(1.0, abs=1e-12)
    assert M.kernel_ncc(k, shifted) == pytest.approx(1.0, abs=1e-12)
    assert M.kernel_ncc(3.0 * shifted, k) == pytest.approx(1.0, abs=1e-12)
    assert M.kernel_mse(shifted, k) == pytest.approx(0.0, abs=1e-15)
    # the shift is (3, -2) from the centred position: a search up to 1 px misses it
    assert M.kernel_ncc(shifted, k, max_shift=1) < 0.9
    assert M.kernel_ncc(shifted, k, max_shift=3) == pytest.approx(1.0, abs=1e-12)

    g0 = K.anisotropic_gaussian(21, 1.5, 4.0, 0.0)
    g90 = K.anisotropic_gaussian(21, 1.5, 4.0, math.pi / 2)
    ncc = M.kernel_ncc(g90, g0)
    assert ncc < 0.9
    assert ncc == pytest.approx(12 / 18.25, abs=0.01)  # continuous Gaussians: 12 / 18.25
    assert M.kernel_mse(g90, g0) > 0
    # leading singleton dims and numpy arrays are accepted
    assert M.kernel_ncc(k[None, None], k.numpy()) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(KernelError):
        M.kernel_ncc(torch.zeros(5, 5), k)
    with pytest.raises(KernelError):
        M.kernel_ncc(torch.rand(2, 5, 5), k)


def test_sr_with_kernel_psnr():
    hr = kfops.io.load_image(EXAMPLE).pixels[..., 64:128, 64:128].double()
    k = K.l_shape(8)
    lr = kfops.degrade(hr, k, 2)
    same = M.sr_with_kernel_psnr(lr, hr, k, k, 2)
    assert set(same) == {"psnr_y_est", "psnr_y_gt", "delta"}
    assert same["delta"] == 0.0
    assert same["psnr_y_gt"] == pytest.approx(M.psnr_y(kfops.backproject(lr, k, 2), hr))
    wrong = M.sr_with_kernel_psnr(lr, hr, K.gaussian(8, 0.5), k, 2)
    assert wrong["psnr_y_gt"] == same["psnr_y_gt"] and wrong["delta"] < 0
    with pytest.raises(ShapeError):
        M.sr_with_kernel_psnr(lr, hr[..., :60, :], k, k, 2)
