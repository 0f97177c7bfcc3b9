"""``ReconConfig.resize_check`` scored on kernels already estimated: for every saved
kernel, the cross-validated choice between it and the blur of an ordinary downscale by the
scale (:func:`kfops.kernel_check.resize_fallback`), each scored through the ``cpu``
preset's final step.

    python -m benchmarks.resize_check DIR [DIR ...] --method bicubic --out resize.tsv
    python -m benchmarks.resize_check DIR --scale 2   # kernels of phase2_ablation --scale 2

Each DIR holds kernels named ``IMAGE__KERNEL.npy`` as :mod:`benchmarks.final_step` reads
them (``--save`` of :mod:`benchmarks.kernel_radius`, ``results/phase2_kernels_cpu/``).
Rows appended to ``--out``, tab-separated: folder, image, kernel, CV error of the saved
kernel and of the resize filter (×1e5), the pick (``saved`` or the method), then the Y-PSNR
gain over bicubic in dB of the saved kernel, of the resize filter and of the pick, then the
LR image's blur score (:func:`kfops.reconstructor.lr_blur`) and the gain of the gated pick
(``ReconConfig.resize_gate``: the pick where that score is below ``--gate``, else the saved
kernel), then the saved kernel's RMS radius (px) and the gain of the gated pick where that
radius is below ``--max-radius`` × s/4, else the saved kernel
(``ReconConfig.resize_max_radius``). With ``--mean``, four more: the CV error of the mean
of the two models (×1e5; :func:`kfops.kernel_check.resize_choice`), the gain of the mean
of the two final images, and the gains of the three-way pick (``ReconConfig.resize_mean``)
ungated and gated. The means and the numbers of switches are printed at the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kfops import tv_refine
from kfops.consensus import kernel_spread
from kfops.crops import cv_luma
from kfops.kernel_check import (
    cv_predictions,
    mean_predictions,
    prediction_error,
    resize_candidate,
)
from kfops.kernels import RESIZE_METHODS
from kfops.metrics import psnr_y
from kfops.presets import recon_config
from kfops.reconstructor import lr_blur

from .final_step import saved_cases
from .rows import emit_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--method", default="bicubic", choices=RESIZE_METHODS)
    ap.add_argument("--out", type=Path, default=Path("resize_check.tsv"))
    ap.add_argument("--scale", type=int, default=4, help="the kernels' SR factor")
    cfg = recon_config("cpu")
    ap.add_argument(
        "--gate",
        type=float,
        default=cfg.resize_gate or 0.4,
        help="blur score below which the check may switch (default: the cpu preset's, or 0.4)",
    )
    ap.add_argument(
        "--max-radius",
        type=float,
        default=cfg.resize_max_radius or float("inf"),
        help="RMS radius (HR px at ×4) from which the gated check keeps the saved kernel "
        "(default: the cpu preset's, or none)",
    )
    ap.add_argument(
        "--mean", action="store_true", help="score the mean of the two as a third candidate"
    )
    args = ap.parse_args()
    s = args.scale
    eps, tv = cfg.final_weights(s)
    rows = []
    for folder in args.dirs:
        for image, kname, hr, lr, _, k_est, base in saved_cases([folder], s):
            k_res = resize_candidate(k_est, s, args.method)
            y = cv_luma(lr)
            preds = [cv_predictions(y, k, s, eps, tv) for k in (k_est, k_res)]
            preds.append(mean_predictions(*preds))
            cv = [prediction_error(p) for p in preds]
            images = [
                tv_refine(lr, k, s, tv, cfg.final_iters, eps=eps, step=cfg.final_lr)
                for k in (k_est, k_res)
            ]
            gains = [psnr_y(im, hr) - base for im in images]
            gains.append(psnr_y((images[0] + images[1]) / 2, hr) - base)
            pick = 1 if cv[1] < cv[0] else 0
            blur = lr_blur(lr)
            gated = pick if blur < args.gate else 0
            radius = kernel_spread(k_est)
            capped = gated if radius < args.max_radius * s / 4 else 0
            three = min(range(3), key=cv.__getitem__)
            three_gated = three if blur < args.gate else 0
            rows.append(
                (*gains[:2], gains[pick], gains[gated], gains[capped], gains[2])
                + (gains[three], gains[three_gated], pick, gated, capped, three, three_gated)
            )
            line = (
                f"{folder.name}\t{image}\t{kname}\t{cv[0] * 1e5:.3f}\t{cv[1] * 1e5:.3f}\t"
                f"{('saved', args.method)[pick]}\t{gains[0]:+.3f}\t{gains[1]:+.3f}\t"
                f"{gains[pick]:+.3f}\t{blur:.4f}\t{gains[gated]:+.3f}\t{radius:.2f}\t"
                f"{gains[capped]:+.3f}"
            )
            if args.mean:
                line += (
                    f"\t{cv[2] * 1e5:.3f}\t{gains[2]:+.3f}\t{gains[three]:+.3f}\t"
                    f"{gains[three_gated]:+.3f}"
                )
            emit_row(line, args.out)
    if rows:
        # saved, filter, pick, gated, capped, mean image, three-way, three-way gated
        mean = np.mean([r[:8] for r in rows], axis=0)
        print(
            f"mean ({len(rows)} cases)\tsaved {mean[0]:+.3f}\t{args.method} {mean[1]:+.3f}\t"
            f"rule {mean[2]:+.3f}\tswitched {sum(r[8] for r in rows)}\t"
            f"gated {mean[3]:+.3f}\tswitched {sum(r[9] for r in rows)}\t"
            f"capped {mean[4]:+.3f}\tswitched {sum(r[10] for r in rows)}"
        )
        if args.mean:
            print(
                f"mean image {mean[5]:+.3f}\tthree-way {mean[6]:+.3f}\t"
                f"filter {sum(r[11] == 1 for r in rows)} mean {sum(r[11] == 2 for r in rows)}\t"
                f"gated {mean[7]:+.3f}\tfilter {sum(r[12] == 1 for r in rows)} "
                f"mean {sum(r[12] == 2 for r in rows)}"
            )


if __name__ == "__main__":
    main()
