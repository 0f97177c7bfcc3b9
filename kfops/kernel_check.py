"""Cross-validated kernel check: does a kernel predict LR pixels it was not fitted to?

For a kernel k the HR image is fitted to one half of the LR pixels (a checkerboard): the
damped back-projection restricted to those pixels (conjugate gradients), then Adam steps
on the masked data term under a Charbonnier TV prior (the form of :func:`tv_refine`). The
mean squared error with which (x ⊛ k)↓s predicts the other half is the score; the halves
swap and the errors add. This is blur identification by cross-validation: a kernel of the
wrong size fits the kept pixels as well as the right one, but predicts the held-out ones
worse. It needs no reference image. (Without blur it favours kernels somewhat too wide:
an aliased image is predicted best by a smoother model; benchmarks/RESULTS.md, "Where the dB go".)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .degradation import bicubic_upsample, conjugate_gradient
from .nonblind import charbonnier_tv_grad
from .ops import degrade, degrade_adjoint


def checkerboard(h: int, w: int, parity: int) -> torch.Tensor:
    """(1, 1, h, w) float mask, 1 where (row + column) % 2 == parity."""
    i = torch.arange(h)[:, None]
    j = torch.arange(w)[None, :]
    return (((i + j) % 2) == parity).float()[None, None]


def masked_fit(
    y: torch.Tensor,
    mask: torch.Tensor,
    kernel: torch.Tensor,
    scale: int,
    eps: float,
    tv: float,
    iters: int = 100,
    cg: int = 20,
) -> torch.Tensor:
    """HR image (1, C, s·h, s·w) in [0, 1] fitted to the LR pixels of ``y`` (1, C, h, w)
    where ``mask`` (1, 1, h, w) is 1: bicubic start (held-out pixels filled by their kept
    neighbours' mean), ``cg`` conjugate-gradient steps on (AᵀMA + eps) d = AᵀM(y − A x₀),
    then ``iters`` Adam steps on the masked data term plus ``tv`` × Charbonnier TV."""
    k = kernel.to(y)

    def A(x: torch.Tensor) -> torch.Tensor:
        return degrade(x, k, scale, "reflect", check_values=False)

    def At(r: torch.Tensor) -> torch.Tensor:
        return degrade_adjoint(r, k, scale, "reflect", hr_size=hw)

    num = F.avg_pool2d(F.pad(y * mask, (1, 1, 1, 1), mode="replicate"), 3, 1)
    den = F.avg_pool2d(F.pad(mask, (1, 1, 1, 1), mode="replicate"), 3, 1)
    x0 = bicubic_upsample(torch.where(mask > 0, y, num / den.clamp_min(1e-6)), scale)
    hw = x0.shape[-2:]
    d = conjugate_gradient(
        lambda p: At(mask * A(p)) + eps * p, At(mask * (y - A(x0))), max_iter=cg, tol=0.0
    )
    x = (x0 + d).clamp(0, 1).requires_grad_(True)
    n = mask.sum() * y.shape[1]
    # peak step 2e-3, as the check was measured and fixed with; the final step now uses
    # 4e-3 (ReconConfig.final_lr): a scoring fit only has to treat every kernel alike
    opt = torch.optim.Adam([x], lr=2e-3)
    with torch.no_grad():
        for it in range(iters):
            opt.param_groups[0]["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * it / iters))
            grad = At(mask * (A(x) - y)).mul_(2 / n)
            x.grad = grad.add_(charbonnier_tv_grad(x, 1e-2), alpha=tv / n)
            opt.step()
    return x.detach().clamp(0, 1)


def cv_predictions(
    y: torch.Tensor, kernel: torch.Tensor, scale: int, eps: float, tv: float, border: int = 6
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """For each checkerboard half of ``y`` (1, C, h, w) in [0, 1]: (held-out mask, the
    prediction (x ⊛ k)↓s of the HR image x fitted to the other half, ``y``), all three
    without ``border`` LR pixels (none when the image is too small to spare them)."""
    if min(y.shape[-2:]) <= 4 * border:
        border = 0
    inner = (..., slice(border, y.shape[-2] - border), slice(border, y.shape[-1] - border))
    out = []
    for parity in (0, 1):
        mask = checkerboard(*y.shape[-2:], parity).to(y)
        x = masked_fit(y, mask, kernel, scale, eps, tv)
        out.append(((1 - mask)[inner], degrade(x, kernel.to(y), scale, "reflect")[inner], y[inner]))
    return out


def prediction_error(predictions: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> float:
    """Mean squared error over the held-out pixels of :func:`cv_predictions`' output."""
    total = count = 0.0
    for held, pred, y in predictions:
        err = pred - y
        total += float((held * err * err).sum())
        count += float(held.sum()) * y.shape[1]
    return total / count


def mean_predictions(a: list, b: list) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The predictions of two kernels' :func:`cv_predictions` averaged pixel by pixel: those
    of the mean of the two final images, each degraded by its own kernel."""
    return [(held, (pa + pb) / 2, y) for (held, pa, y), (_, pb, _) in zip(a, b, strict=True)]


def cv_error(
    y: torch.Tensor, kernel: torch.Tensor, scale: int, eps: float, tv: float, border: int = 6
) -> float:
    """Mean squared error with which ``kernel`` predicts held-out LR pixels of ``y``
    (1, C, h, w) in [0, 1], over both checkerboard halves, ``border`` LR pixels ignored
    (none when the image is too small to spare them)."""
    return prediction_error(cv_predictions(y, kernel, scale, eps, tv, border))


def best_by_cv(
    y: torch.Tensor, kernels: list[torch.Tensor], scale: int, eps: float, tv: float
) -> int:
    """Index of the kernel of least :func:`cv_error` on ``y`` (the first on ties)."""
    errors = [cv_error(y, k, scale, eps, tv) for k in kernels]
    return min(range(len(errors)), key=errors.__getitem__)


def resize_candidate(kernel: torch.Tensor, scale: int, method: str) -> torch.Tensor:
    """The ×scale ``method`` resize filter that :func:`resize_fallback` weighs against
    ``kernel`` (K, K): at least K and 4·scale taps wide, ``kernel``'s dtype and device."""
    from .kernels import resize_filter

    return resize_filter(scale, method, max(kernel.shape[-1], 4 * scale)).to(kernel)


def resize_fallback(
    y: torch.Tensor, kernel: torch.Tensor, scale: int, method: str, eps: float, tv: float
) -> tuple[torch.Tensor, bool]:
    """``(kernel, False)``, or ``(the ×scale resize filter, True)`` where the blur of that
    ordinary downscale (:func:`kfops.kernels.resize_filter`, ``method`` 'bicubic',
    'bilinear' or 'area', at least as large as ``kernel``) predicts held-out pixels of
    ``y`` (1, C, h, w) better than ``kernel`` (K, K) does (the first on ties)."""
    candidate = resize_candidate(kernel, scale, method)
    if best_by_cv(y, [kernel, candidate], scale, eps, tv) == 1:
        return candidate, True
    return kernel, False


RESIZE_CHOICES = ("estimate", "filter", "mean")


def resize_choice(
    y: torch.Tensor, kernel: torch.Tensor, scale: int, method: str, eps: float, tv: float
) -> tuple[str, torch.Tensor]:
    """Which of three models predicts held-out pixels of ``y`` (1, C, h, w) best: the
    ``estimate`` ``kernel`` (K, K), the ``filter`` of an ordinary ×scale ``method`` downscale
    (:func:`resize_candidate`), or the ``mean`` of the two (the final images of both kernels
    averaged; its prediction of a held-out pixel is the mean of theirs). Returns the name
    (the first on ties, in that order) and the filter."""
    candidate = resize_candidate(kernel, scale, method)
    own = cv_predictions(y, kernel, scale, eps, tv)
    other = cv_predictions(y, candidate, scale, eps, tv)
    errors = [prediction_error(p) for p in (own, other, mean_predictions(own, other))]
    return RESIZE_CHOICES[min(range(3), key=errors.__getitem__)], candidate
