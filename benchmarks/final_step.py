"""The final SR step of the ``cpu`` preset, scored on kernels already estimated: damped
back-projection against its TV refinement (``kfops.nonblind.tv_refine``) at a few
weights, with the estimated and with the true kernel.

    python -m benchmarks.final_step DIR [DIR ...] --out final_step.tsv \\
        --weights 0,1e-3,2e-3,3e-3 --iters 100

Each DIR holds estimated kernels named ``IMAGE__KERNEL[__...].npy`` (the ``kernels/``
folder of ``kf bench``, or ``--kernels`` of ``benchmarks.phase2_ablation``). The LR image
is rebuilt as in the benchmark (512² Set14 centre crop, ×4, reflect). Rows (tab-separated:
kernel source, variant, image, kernel, Y-PSNR gain over bicubic in dB) are appended to
``--out``; the mean per (source, variant) is printed at the end.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from kfops import backproject, bench, bicubic_upsample, degrade
from kfops.kernels import data_dir
from kfops.metrics import psnr_y
from kfops.nonblind import tv_refine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("final_step.tsv"))
    ap.add_argument("--weights", default="0,1e-3,2e-3,3e-3")
    ap.add_argument("--iters", type=int, default=100)
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    table = bench.load_kernel_set("levin,stress,gauss", size=24)
    hr_dir = data_dir() / "sr_testsets" / "Set14" / "HR"
    gains: dict[tuple[str, str], list[float]] = defaultdict(list)
    hrs: dict[str, torch.Tensor] = {}
    files = sorted(f for d in args.dirs for f in d.glob("*__*.npy"))
    for f in files:
        image, kname = f.stem.split("__")[:2]
        if image not in hrs:
            hrs[image] = bench._load_hr(hr_dir / f"{image}.png", 512, 4, None)
        hr, k_true = hrs[image], table[kname].float()
        lr = degrade(hr, k_true, 4, "reflect").clamp(0, 1)
        base = psnr_y(bicubic_upsample(lr, 4).clamp(0, 1), hr)
        k_est = torch.from_numpy(np.load(f)).float()
        for source, k in (("estimated", k_est), ("true", k_true)):
            variants = {"backproject eps=1e-2": backproject(lr, k, 4, eps=1e-2)}
            if source == "true":
                variants["backproject eps=1e-3"] = backproject(lr, k, 4, eps=1e-3)
            for w in weights:
                variants[f"tv weight={w:g}"] = tv_refine(lr, k, 4, w, args.iters)
            for name, sr in variants.items():
                gain = psnr_y(sr, hr) - base
                gains[(source, name)].append(gain)
                line = f"{source}\t{name}\t{image}\t{kname}\t{gain:+.3f}"
                print(line, flush=True)
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")
    for (source, name), values in gains.items():
        print(f"mean\t{source}\t{name}\t{np.mean(values):+.3f}\t({len(values)} cases)")


if __name__ == "__main__":
    main()
