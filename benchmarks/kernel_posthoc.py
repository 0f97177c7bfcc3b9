"""Post-hoc changes to an estimated kernel, scored through the ``cpu`` preset's final step
on kernels already estimated (as :mod:`benchmarks.final_step`):

* ``floor`` — :func:`kfops.kernels.remove_floor`: the median of the kernel's outermost
  ring of taps subtracted from every tap (negative taps set to 0) and the rest
  renormalised: a support that holds the blur has about nothing on its border, so a
  pedestal there is diffuse mass, not blur;
* ``power:P`` — the taps raised to the power P and renormalised, then dilated back to the
  estimate's RMS radius (:func:`kfops.kernels.dilate_kernel`): a diffuse estimate made
  more concentrated, its size kept (a Gaussian is left about as it was);
* ``refit:N`` — N rounds of alternating minimisation after Phase 2: the final step's HR
  image with the current kernel, then the kernel refitted to it by least squares on the LR
  luma (softmax taps, so non-negative and summing to 1; 150 Adam steps at 0.02);
* ``shock:N`` — the same rounds on salient edges, as in two-phase blind deblurring (Xu and
  Jia 2010): the HR luma shock-filtered (5 steps, Gaussian pre-smoothing of 1 px), its
  stride-s differences kept only where their magnitude is in the top 10%, and the kernel
  fitted so that those edges, blurred and downscaled, give the LR luma's differences
  (x(i) − x(i − s) on the HR grid maps to y(j) − y(j − 1) on the LR one);
* ``edge:N`` — ``shock:N`` without the shock filter;
* ``cvrefit:N`` — N rounds of the refit made cross-validated: for each checkerboard half of
  the LR luma the HR image fitted to that half alone (:func:`kfops.kernel_check.masked_fit`,
  the final step's weights), then the kernel that best predicts, from those two images, the
  halves they were *not* fitted to (softmax taps, 150 Adam steps at 0.02, 6 LR pixels of
  border left out). An image fitted to its own pixels returns its kernel; one fitted to the
  other half has to predict these pixels through the kernel.

    python -m benchmarks.kernel_posthoc DIR [DIR ...] --variants power:1.5,refit:1 \\
        --out kernel_posthoc.tsv [--scale 4]

The refits are written for ×4; ``none``, ``floor`` and ``power`` take ``--scale`` (the
final step's weights scaled as the preset scales them, ``ReconConfig.final_weights``).

Rows (tab-separated): folder, image, kernel, variant, Y-PSNR gain over bicubic in dB,
kernel NCC, RMS radius over the true kernel's; ``none`` is the estimate itself (with
``--from-true`` every variant starts from the true kernel instead). The mean
per (folder, variant) is printed at the end, with the number of cases that gained.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

from kfops import degrade
from kfops.consensus import kernel_spread
from kfops.kernel_check import checkerboard, masked_fit
from kfops.kernels import dilate_kernel, fit_to, remove_floor
from kfops.metrics import kernel_ncc, psnr_y, rgb_to_y
from kfops.nonblind import tv_refine
from kfops.presets import recon_config
from kfops.reconstructor import ReconConfig

from .final_step import saved_cases
from .rows import emit_row


def power(k: torch.Tensor, p: float) -> torch.Tensor:
    """``k`` ** p renormalised and dilated back to ``k``'s RMS radius, cut to its size."""
    kp = k.clamp_min(0) ** p
    kp = kp / kp.sum()
    return fit_to(dilate_kernel(kp, kernel_spread(k) / kernel_spread(kp)), tuple(k.shape))


def refit(lr: torch.Tensor, k: torch.Tensor, rounds: int, cfg: ReconConfig) -> torch.Tensor:
    """``rounds`` of: HR = the final step of ``cfg`` (×4) with ``k``; ``k`` = the
    least-squares kernel for that HR on the LR luma (softmax taps, 150 Adam steps at 0.02)."""
    y = rgb_to_y(lr)
    for _ in range(rounds):
        x = rgb_to_y(tv_refine(lr, k, 4, cfg.final_tv, cfg.final_iters, step=cfg.final_lr))
        k = fit_taps(
            k, lambda kk, x=x: (degrade(x, kk, 4, "reflect", check_values=False) - y).pow(2).mean()
        )
    return k


def cv_refit(lr: torch.Tensor, k: torch.Tensor, rounds: int, cfg: ReconConfig) -> torch.Tensor:
    """``rounds`` of: for each checkerboard half of the LR luma, the HR image fitted to that
    half with ``k`` (:func:`masked_fit`, the final step's weights at ×4); ``k`` = the
    least-squares kernel with which those images predict the other halves."""
    s, c = 4, 6
    eps, tv = cfg.final_weights(s)
    y = rgb_to_y(lr)
    inner = (..., slice(c, -c), slice(c, -c))
    for _ in range(rounds):
        fits = []
        for parity in (0, 1):
            mask = checkerboard(*y.shape[-2:], parity).to(y)
            fits.append((1 - mask, masked_fit(y, mask, k, s, eps, tv)))

        def held_out_loss(kk: torch.Tensor, fits=fits) -> torch.Tensor:
            total = 0.0
            for held, x in fits:
                err = degrade(x, kk, s, "reflect", check_values=False) - y
                total = total + (held * err.pow(2))[inner].sum() / held[inner].sum()
            return total

        k = fit_taps(k, held_out_loss)
    return k


def fit_taps(k: torch.Tensor, loss_of) -> torch.Tensor:
    """The kernel (softmax taps, so non-negative and summing to 1), started from ``k``,
    that minimises the scalar ``loss_of(kernel)``: 150 Adam steps at 0.02."""
    logit = k.clamp_min(1e-8).log().clone().requires_grad_(True)
    opt = torch.optim.Adam([logit], lr=0.02)
    for _ in range(150):
        loss = loss_of(torch.softmax(logit.flatten(), 0).view_as(k))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.softmax(logit.detach().flatten(), 0).view_as(k)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 1, H, W), reflect-padded (the shock filter's
    pre-smoothing: a separable pass, where ``degrade(x, gaussian(7, σ), 1)`` rounds
    differently and the filter's sign() turns that into other results)."""
    r = int(3 * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), g.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), g.view(1, 1, -1, 1))


def shock_filter(x: torch.Tensor, iters: int = 5, dt: float = 0.3) -> torch.Tensor:
    """Osher–Rudin shock filter of (B, 1, H, W): x −= dt · sign(Δ(G₁ * x)) · |∇x|."""
    for _ in range(iters):
        xs = _blur(x, 1.0)
        p = F.pad(xs, (1, 1, 1, 1), mode="replicate")
        lap = p[..., 1:-1, 2:] + p[..., 1:-1, :-2] + p[..., 2:, 1:-1] + p[..., :-2, 1:-1] - 4 * xs
        q = F.pad(x, (1, 1, 1, 1), mode="replicate")
        gx = (q[..., 1:-1, 2:] - q[..., 1:-1, :-2]) / 2
        gy = (q[..., 2:, 1:-1] - q[..., :-2, 1:-1]) / 2
        x = x - dt * torch.sign(lap) * (gx**2 + gy**2).sqrt()
    return x


def edge_refit(
    lr: torch.Tensor, k: torch.Tensor, rounds: int, cfg: ReconConfig, shock: bool
) -> torch.Tensor:
    """``rounds`` of: HR = the final step (×4) with ``k`` (shock-filtered if ``shock``); its
    stride-4 differences kept on the top 10% by magnitude; ``k`` = the least-squares kernel
    mapping them to the LR luma's unit differences (softmax taps, 150 Adam steps at 0.02,
    6 LR pixels of border left out)."""
    s, c = 4, 6
    y = rgb_to_y(lr)
    dyx, dyy = y[..., :, 1:] - y[..., :, :-1], y[..., 1:, :] - y[..., :-1, :]
    for _ in range(rounds):
        x = rgb_to_y(tv_refine(lr, k, s, cfg.final_tv, cfg.final_iters, step=cfg.final_lr))
        if shock:
            x = shock_filter(x)
        gx, gy = torch.zeros_like(x), torch.zeros_like(x)
        gx[..., :, s:] = x[..., :, s:] - x[..., :, :-s]
        gy[..., s:, :] = x[..., s:, :] - x[..., :-s, :]
        mag = (gx**2 + gy**2).sqrt()
        keep = (mag >= torch.quantile(mag.flatten(), 0.9)).to(x.dtype)
        gx, gy = gx * keep, gy * keep

        def edge_loss(kk: torch.Tensor, gx=gx, gy=gy) -> torch.Tensor:
            px = degrade(gx, kk, s, "zeros", check_values=False)[..., :, 1:]
            py = degrade(gy, kk, s, "zeros", check_values=False)[..., 1:, :]
            ex, ey = (px - dyx)[..., c:-c, c:-c], (py - dyy)[..., c:-c, c:-c]
            return ex.pow(2).mean() + ey.pow(2).mean()

        k = fit_taps(k, edge_loss)
    return k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--variants", default="power:1.5,refit:1,refit:3")
    ap.add_argument("--out", type=Path, default=Path("kernel_posthoc.tsv"))
    ap.add_argument("--from-true", action="store_true", help="start from the true kernel")
    ap.add_argument("--scale", type=int, default=4)
    args = ap.parse_args()
    cfg = recon_config("cpu")
    s = args.scale
    eps, tv = cfg.final_weights(s)
    variants = ["none", *args.variants.split(",")]
    refits = ("refit", "cvrefit", "shock", "edge")  # written for ×4
    known = ("none", "floor", "power", *refits)
    unknown = [v for v in variants if v.partition(":")[0] not in known]
    if unknown:
        raise SystemExit(f"unknown variant(s): {', '.join(unknown)}")
    if s != 4 and any(v.partition(":")[0] in refits for v in variants):
        raise SystemExit("the refits are written for --scale 4")
    gains: dict[tuple[str, str], list[float]] = defaultdict(list)
    ncc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for d in args.dirs:
        for image, kname, hr, lr, k_true, k_est, base in saved_cases([d], s):
            if args.from_true:
                k_est = k_true.float()
            for variant in variants:
                name, _, value = variant.partition(":")
                if name == "none":
                    k = k_est
                elif name == "floor":
                    k = remove_floor(k_est)
                elif name == "power":
                    k = power(k_est, float(value))
                elif name == "refit":
                    k = refit(lr, k_est, int(value), cfg)
                elif name == "cvrefit":
                    k = cv_refit(lr, k_est, int(value), cfg)
                else:
                    k = edge_refit(lr, k_est, int(value), cfg, shock=name == "shock")
                sr = tv_refine(lr, k, s, tv, cfg.final_iters, eps=eps, step=cfg.final_lr)
                gain = psnr_y(sr, hr) - base
                n = kernel_ncc(k, k_true)
                gains[(d.name, variant)].append(gain)
                ncc[(d.name, variant)].append(n)
                true_spread = kernel_spread(k_true)  # 0 for a one-tap kernel
                ratio = kernel_spread(k) / true_spread if true_spread > 0 else float("nan")
                line = f"{d.name}\t{image}\t{kname}\t{variant}\t{gain:+.3f}\t{n:.3f}\t{ratio:.2f}"
                emit_row(line, args.out)
    for (folder, variant), values in gains.items():
        ref = gains[(folder, "none")]
        won = sum(a > b for a, b in zip(values, ref, strict=True))
        mean_ncc = sum(ncc[(folder, variant)]) / len(values)
        print(
            f"mean\t{folder}\t{variant}\t{sum(values) / len(values):+.3f}\tNCC {mean_ncc:.3f}"
            f"\tbetter on {won} of {len(values)}"
        )


if __name__ == "__main__":
    main()
