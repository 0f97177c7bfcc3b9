"""Post-hoc changes to an estimated kernel, scored through the ``cpu`` preset's final step
on kernels already estimated (as :mod:`benchmarks.final_step`):

* ``power:P`` — the taps raised to the power P and renormalised, then dilated back to the
  estimate's RMS radius (:func:`kfops.kernels.dilate_kernel`): a diffuse estimate made
  more concentrated, its size kept (a Gaussian is left about as it was);
* ``refit:N`` — N rounds of alternating minimisation after Phase 2: the final step's HR
  image with the current kernel, then the kernel refitted to it by least squares on the LR
  luma (softmax taps, so non-negative and summing to 1; 150 Adam steps at 0.02).

    python -m benchmarks.kernel_posthoc DIR [DIR ...] --variants power:1.5,refit:1 \\
        --out kernel_posthoc.tsv

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

from kfops import degrade
from kfops.consensus import kernel_spread
from kfops.kernels import dilate_kernel, fit_to
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
        logit = k.clamp_min(1e-8).log().clone().requires_grad_(True)
        opt = torch.optim.Adam([logit], lr=0.02)
        for _ in range(150):
            kk = torch.softmax(logit.flatten(), 0).view_as(k)
            loss = (degrade(x, kk, 4, "reflect", check_values=False) - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        k = torch.softmax(logit.detach().flatten(), 0).view_as(k)
    return k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--variants", default="power:1.5,refit:1,refit:3")
    ap.add_argument("--out", type=Path, default=Path("kernel_posthoc.tsv"))
    ap.add_argument("--from-true", action="store_true", help="start from the true kernel")
    args = ap.parse_args()
    cfg = recon_config("cpu")
    variants = ["none", *args.variants.split(",")]
    unknown = [v for v in variants if v.partition(":")[0] not in ("none", "power", "refit")]
    if unknown:
        raise SystemExit(f"unknown variant(s): {', '.join(unknown)}")
    gains: dict[tuple[str, str], list[float]] = defaultdict(list)
    ncc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for d in args.dirs:
        for image, kname, hr, lr, k_true, k_est, base in saved_cases([d]):
            if args.from_true:
                k_est = k_true.float()
            for variant in variants:
                name, _, value = variant.partition(":")
                if name == "none":
                    k = k_est
                elif name == "power":
                    k = power(k_est, float(value))
                else:
                    k = refit(lr, k_est, int(value), cfg)
                sr = tv_refine(lr, k, 4, cfg.final_tv, cfg.final_iters, step=cfg.final_lr)
                gain = psnr_y(sr, hr) - base
                n = kernel_ncc(k, k_true)
                gains[(d.name, variant)].append(gain)
                ncc[(d.name, variant)].append(n)
                ratio = kernel_spread(k) / kernel_spread(k_true)
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
