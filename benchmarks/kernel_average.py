"""Hedging the kernel's size in the final step: the mean of the final step's outputs for
the kernel dilated by several factors, against the output for the kernel as it is.

A pixel-wise mean of images can only lower the mean squared error of the worst of them, so
when the estimate's size is off, averaging over sizes around it should beat any one size
that is far from right. For every saved estimate (as :mod:`benchmarks.final_step`) and its
true kernel:

    python -m benchmarks.kernel_average DIR [DIR ...] --sets "1;1,1.2;0.85,1,1.2" \\
        --out kernel_average.tsv

Rows (tab-separated): folder, image, kernel, source (``est`` or ``true``), then the gain
over bicubic in dB of each set's mean output (Y-PSNR, 5% border), in the order given.
The means per source are printed at the end, with the number of cases each set beats the
first one on.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch

from kfops.kernels import dilate_kernel
from kfops.metrics import psnr_y
from kfops.nonblind import tv_refine
from kfops.presets import recon_config

from .final_step import saved_cases
from .rows import emit_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument(
        "--sets", default="1;1,1.2;0.85,1,1.2;1,1.2,1.4;0.85,1,1.2,1.4;0.7,0.85,1,1.2,1.4"
    )
    ap.add_argument("--out", type=Path, default=Path("kernel_average.tsv"))
    args = ap.parse_args()
    cfg = recon_config("cpu")
    sets = [[float(a) for a in group.split(",")] for group in args.sets.split(";")]
    factors = sorted({a for group in sets for a in group})
    gains: dict[str, list[list[float]]] = defaultdict(list)
    for d in args.dirs:
        for image, kname, hr, lr, k_true, k_est, base in saved_cases([d]):
            for source, k0 in (("est", k_est), ("true", k_true.float())):
                out = {
                    a: tv_refine(
                        lr,
                        dilate_kernel(k0, a),
                        4,
                        cfg.final_tv,
                        cfg.final_iters,
                        step=cfg.final_lr,
                    )
                    for a in factors
                }
                row = [psnr_y(torch.stack([out[a] for a in g]).mean(0), hr) - base for g in sets]
                gains[source].append(row)
                line = "\t".join([d.name, image, kname, source, *(f"{g:+.3f}" for g in row)])
                emit_row(line, args.out)
    for source, rows in gains.items():
        print(f"{source}: {len(rows)} cases")
        for i, group in enumerate(sets):
            mean = sum(r[i] for r in rows) / len(rows)
            won = sum(r[i] > r[0] for r in rows)
            name = ",".join(f"{a:g}" for a in group)
            print(f"  {name:>20}: {mean:+.3f} dB, better than the first on {won}")


if __name__ == "__main__":
    main()
