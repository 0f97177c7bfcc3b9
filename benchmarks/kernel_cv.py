"""Cross-validated kernel check: does a kernel predict LR pixels it was not fitted to?

The score is :func:`kfops.kernel_check.cv_error` with the cpu final step's weights,
used here to ask whether a Phase-2 estimate has the right size: every kernel is dilated
by each ``--alphas`` factor (:func:`kfops.kernels.dilate_kernel`) and scored, next to the
gain its final step really gives.

    python -m benchmarks.kernel_cv man/levin_k3 bird/levin_k7 --out cv.tsv

Cases are ``IMAGE/KERNEL`` as in :mod:`benchmarks.phase2_restarts`, ×4 on the 512² centre
crop (LR 128²). Sources are the true kernel (``gt``) and every Phase-2 kernel cached for
the case by phase2_restarts (``--kernels``; full runs of the preset only). Rows appended
to ``--out``, tab-separated: image, kernel, source, alpha, ΔPSNR dB of the cpu final step
over bicubic, CV error (mean squared, ×1e5), spread px, true spread px, NCC. Then (or
alone, with no cases) the file is summarised: per source, the mean gain at alpha 1, at
the alpha of least CV error, and at the best alpha (an oracle), and how far the least-CV
alpha of the true kernel is from 1.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import torch

from kfops import bicubic_upsample, tv_refine
from kfops.consensus import kernel_spread
from kfops.kernel_check import cv_error
from kfops.kernels import dilate_kernel
from kfops.metrics import kernel_ncc, psnr_y, rgb_to_y
from kfops.presets import recon_config

from .phase2_ablation import dev_case


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", help="IMAGE/KERNEL")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.8, 1.0, 1.2, 1.4])
    ap.add_argument("--kernels", type=Path, default=Path(".cache/restart_kernels"))
    ap.add_argument("--out", type=Path, default=Path("kernel_cv.tsv"))
    args = ap.parse_args()
    if not args.cases:
        summarise(args.out)
        return
    s = 4
    eps, tv = recon_config("cpu").final_weights(s)
    iters = recon_config("cpu").final_iters
    for case in args.cases:
        image, name, true, hr, lr = dev_case(case, s)
        luma = rgb_to_y(lr).float()
        base = psnr_y(bicubic_upsample(lr, s).clamp(0, 1), hr)
        sources = {"gt": true}
        for path in sorted(args.kernels.glob(f"{image}__{name}__prior*__run*.npy")):
            if len(path.stem.split("__")) != 4:  # runs with overrides
                continue
            sources[path.stem.split("__")[-1]] = torch.from_numpy(np.load(path)).float()
        for source, kernel in sources.items():
            for alpha in args.alphas:
                k = dilate_kernel(kernel, alpha)
                gain = psnr_y(tv_refine(lr, k, s, tv, iters, eps=eps), hr) - base
                cv = cv_error(luma, k, s, eps, tv)
                ncc = kernel_ncc(k.double(), true.double())
                row = [image, name, source, f"{alpha:g}", f"{gain:+.3f}", f"{cv * 1e5:.3f}"]
                row += [f"{kernel_spread(k):.2f}", f"{kernel_spread(true):.2f}", f"{ncc:.3f}"]
                print(*row, sep="\t", flush=True)
                with args.out.open("a") as fh:
                    fh.write("\t".join(row) + "\n")
    summarise(args.out)


def summarise(path: Path) -> None:
    """Print what choosing the dilation by least CV error would give (rows of ``path``)."""
    table: dict[tuple, dict[float, tuple[float, float]]] = collections.defaultdict(dict)
    for line in path.read_text().splitlines():
        image, name, source, alpha, gain, cv, *_ = line.split("\t")
        table[(image, name, source)][float(alpha)] = (float(gain), float(cv))
    groups: dict[str, list[tuple[float, float, float, float]]] = collections.defaultdict(list)
    for (_, _, source), curve in table.items():
        picked = min(curve, key=lambda a: curve[a][1])
        one = curve.get(1.0, (float("nan"),))[0]
        best = max(g for g, _ in curve.values())
        groups["gt" if source == "gt" else "runs"].append((one, curve[picked][0], best, picked))
    for group, rows in groups.items():
        one, picked, best, alpha = (np.array(c) for c in zip(*rows, strict=True))
        print(
            f"{group}: {len(rows)} curves; gain at alpha 1 {one.mean():+.2f} dB, "
            f"at least CV error {picked.mean():+.2f}, best alpha {best.mean():+.2f}; "
            f"least-CV alpha median {np.median(alpha):g}, within 0.2 of 1 in "
            f"{int((abs(alpha - 1) <= 0.2 + 1e-9).sum())} of {len(rows)}"
        )


if __name__ == "__main__":
    main()
