"""Choices made per image by cross-validation, scored on kernels already estimated.

For every saved case (as :mod:`benchmarks.final_step`) and every factor f of ``--factors``:
``--what weights`` multiplies the final step's damping and TV weight
(``ReconConfig.final_weights`` at the case's scale) by f, the regularisation weight chosen
per image as in classical regularised deconvolution; ``--what dilation`` makes the kernel
f× wider (:func:`kfops.kernels.dilate_kernel`, cut back to its size), its size chosen per
image. Each f is scored twice: the cross-validation error with which the kernel predicts
held-out LR pixels (:func:`kfops.kernel_check.cv_error` on the image the reconstructor's
checks score on, :func:`kfops.crops.cv_luma`), and the Y-PSNR gain of the final
step over bicubic (needs the HR image, so it is the benchmark's side only). The ``pick``
is the f of least cross-validation error (ties to the first listed). With ``--mean`` the
pixel-wise mean of the factors' final images is scored too (a hedge over them rather than
a pick; its squared error never exceeds the factors' mean squared error).

    python -m benchmarks.cv_pick DIR [DIR ...] [--what weights|dilation] [--scale S] \\
        [--from-true] [--mean] --factors 1,0.5,2,4 --out cv_pick.tsv

Rows (tab-separated): folder, image, kernel, then per factor ``f:cv_error:gain``, then the
picked factor and its gain (and with ``--mean`` the mean image's gain). The means per
folder are printed at the end: every factor, the pick, the per-case best (an oracle) and
the mean image.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from kfops.crops import cv_luma
from kfops.kernel_check import cv_error
from kfops.kernels import dilate_kernel, fit_to
from kfops.metrics import psnr_y
from kfops.nonblind import tv_refine
from kfops.presets import recon_config

from .final_step import saved_cases
from .rows import emit_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--what", choices=("weights", "dilation"), default="weights")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--factors", default="1,0.5,2,4")
    ap.add_argument("--from-true", action="store_true", help="score the true kernels instead")
    ap.add_argument("--mean", action="store_true", help="also score the factors' mean image")
    ap.add_argument("--out", type=Path, default=Path("cv_pick.tsv"))
    args = ap.parse_args()
    cfg = recon_config("cpu")
    s = args.scale
    factors = [float(f) for f in args.factors.split(",")]
    eps0, tv0 = cfg.final_weights(s)
    sums: dict[str, list[list[float]]] = defaultdict(list)
    for d in args.dirs:
        for image, kname, hr, lr, k_true, k_est, base in saved_cases([d], s):
            k = k_true.float() if args.from_true else k_est
            y = cv_luma(lr)
            errors, gains, images = [], [], []
            for f in factors:
                if args.what == "weights":
                    kf, eps, tv = k, eps0 * f, tv0 * f
                else:
                    kf, eps, tv = fit_to(dilate_kernel(k, f), tuple(k.shape)), eps0, tv0
                errors.append(cv_error(y, kf, s, eps, tv))
                sr = tv_refine(lr, kf, s, tv, cfg.final_iters, eps=eps, step=cfg.final_lr)
                gains.append(psnr_y(sr, hr) - base)
                images.append(sr)
            pick = min(range(len(factors)), key=errors.__getitem__)
            cells = "\t".join(
                f"{f:g}:{e:.4e}:{g:+.3f}" for f, e, g in zip(factors, errors, gains, strict=True)
            )
            extra = [psnr_y(sum(images) / len(images), hr) - base] if args.mean else []
            tail = "".join(f"\t{g:+.3f}" for g in extra)
            emit_row(
                f"{d.name}\t{image}\t{kname}\t{cells}\t{factors[pick]:g}\t{gains[pick]:+.3f}{tail}",
                args.out,
            )
            sums[d.name].append([*gains, gains[pick], max(gains), *extra])
    names = [f"f={f:g}" for f in factors] + ["pick", "oracle"] + (["mean"] if args.mean else [])
    for folder, rows in sums.items():
        means = [sum(col) / len(rows) for col in zip(*rows, strict=True)]
        cells = "  ".join(f"{n} {m:+.3f}" for n, m in zip(names, means, strict=True))
        print(f"mean\t{folder}\t{len(rows)} cases\t{cells}")


if __name__ == "__main__":
    main()
