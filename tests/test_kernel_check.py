"""Cross-validated kernel check (kfops.kernel_check)."""

from __future__ import annotations

import torch

import kfops
from kfops.kernel_check import (
    best_by_cv,
    checkerboard,
    cv_error,
    cv_predictions,
    masked_fit,
    mean_predictions,
    prediction_error,
    resize_choice,
    resize_fallback,
)
from kfops.kernels import dilate_kernel, gaussian, resize_filter


def _blurred_lr(size: int, kernel: torch.Tensor) -> torch.Tensor:
    hr = kfops.io.load_image("examples/butterfly.png").pixels[..., :size, :size]
    return kfops.metrics.rgb_to_y(kfops.degrade(hr, kernel, 4)).float()


def test_checkerboard_halves_tile_the_image():
    m0, m1 = checkerboard(5, 6, 0), checkerboard(5, 6, 1)
    assert torch.equal(m0 + m1, torch.ones(1, 1, 5, 6)) and m0[0, 0, 0, 0] == 1
    assert m0[0, 0, 0, 1] == 0 and m0[0, 0, 1, 1] == 1


def test_masked_fit_fits_the_kept_pixels_better_than_the_held_out_ones():
    true = gaussian(24, 2.0).float()
    y = _blurred_lr(96, true)
    mask = checkerboard(*y.shape[-2:], 0)
    x = masked_fit(y, mask, true, 4, eps=1e-2, tv=1e-3)
    assert x.shape == (1, 1, 96, 96) and 0 <= float(x.min()) and float(x.max()) <= 1
    err = (kfops.degrade(x, true, 4, "reflect") - y) ** 2
    kept = float((err * mask).sum() / mask.sum())
    held = float((err * (1 - mask)).sum() / (1 - mask).sum())
    assert kept < held


def test_held_out_pixels_are_best_predicted_by_the_true_kernel():
    """Cross-validation on a blurred LR image (48², ×4): the true kernel predicts the held-out
    half better than the same kernel 1.5× wider and than an almost sharp one."""
    true = gaussian(24, 2.5).float()
    y = _blurred_lr(192, true)
    errors = {
        name: cv_error(y, k, 4, eps=1e-2, tv=1e-3)
        for name, k in [
            ("true", true),
            ("wide", dilate_kernel(true, 1.5)),
            ("sharp", gaussian(24, 0.6).float()),
        ]
    }
    assert errors["true"] < 0.9 * errors["wide"] and errors["true"] < 0.9 * errors["sharp"], errors


def test_cv_error_keeps_its_border_only_where_the_image_can_spare_it():
    y = _blurred_lr(64, gaussian(24, 2.0).float())  # 16² LR: no border ignored
    assert cv_error(y, gaussian(24, 2.0).float(), 4, eps=1e-2, tv=1e-3) > 0


def test_best_by_cv_names_the_true_kernel_and_prefers_the_first_on_ties():
    true = gaussian(24, 2.5).float()
    y = _blurred_lr(192, true)
    wide = dilate_kernel(true, 1.5)
    assert best_by_cv(y, [wide, true], 4, eps=1e-2, tv=1e-3) == 1
    assert best_by_cv(y, [true, true.clone()], 4, eps=1e-2, tv=1e-3) == 0


def test_resize_fallback_takes_the_resize_blur_only_where_it_predicts_better():
    """On a bicubic-downscaled image the bicubic filter beats a too-wide estimate; on a
    blurred image the true blur is kept."""
    resized = _blurred_lr(192, resize_filter(4, "bicubic").float())
    wide = gaussian(24, 3.0).float()
    kernel, used = resize_fallback(resized, wide, 4, "bicubic", eps=1e-2, tv=1e-3)
    assert used and torch.equal(kernel, resize_filter(4, "bicubic", 24).float())
    blurred = _blurred_lr(192, wide)
    kernel, used = resize_fallback(blurred, wide, 4, "bicubic", eps=1e-2, tv=1e-3)
    assert not used and kernel is wide


def test_the_mean_of_two_models_predicts_no_worse_than_their_average_error():
    """mean_predictions averages the two kernels' held-out predictions pixel by pixel, so
    its error is at most the mean of theirs (strictly less where they differ)."""
    y = _blurred_lr(96, gaussian(24, 2.0).float())
    a = cv_predictions(y, gaussian(24, 1.0).float(), 4, eps=1e-2, tv=1e-3)
    b = cv_predictions(y, gaussian(24, 3.0).float(), 4, eps=1e-2, tv=1e-3)
    ea, eb, em = (prediction_error(p) for p in (a, b, mean_predictions(a, b)))
    assert em < (ea + eb) / 2
    assert prediction_error(a) == cv_error(y, gaussian(24, 1.0).float(), 4, eps=1e-2, tv=1e-3)
    for (ha, pa, ya), (_, pb, _), (hm, pm, ym) in zip(a, b, mean_predictions(a, b), strict=True):
        assert torch.equal(ha, hm) and torch.equal(ya, ym) and torch.allclose(pm, (pa + pb) / 2)


def test_resize_choice_keeps_the_true_blur_and_leaves_a_too_wide_estimate():
    """Three candidates: a blurred image keeps its true kernel; on a bicubic downscale a
    too-wide estimate is replaced by the filter or hedged with it, never kept alone."""
    wide = gaussian(24, 3.0).float()
    choice, candidate = resize_choice(_blurred_lr(192, wide), wide, 4, "bicubic", 1e-2, 1e-3)
    assert choice == "estimate"
    assert torch.equal(candidate, resize_filter(4, "bicubic", 24).float())
    resized = _blurred_lr(192, resize_filter(4, "bicubic").float())
    choice, _ = resize_choice(resized, wide, 4, "bicubic", 1e-2, 1e-3)
    assert choice in ("filter", "mean")
