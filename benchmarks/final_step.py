"""The final SR step of the ``cpu`` preset, scored on kernels already estimated: damped
back-projection against its TV refinement (``kfops.nonblind.tv_refine``) at a few
weights and peak step sizes, with the estimated and with the true kernel.

    python -m benchmarks.final_step DIR [DIR ...] --out final_step.tsv \\
        --weights 0,1e-3,2e-3,3e-3 --steps 2e-3,4e-3 --iters 100 --smooths 1e-2 \\
        [--scale 4 --factors 1]

Each DIR holds estimated kernels named ``IMAGE__KERNEL[__...].npy`` (the ``kernels/``
folder of ``kf bench``, ``--kernels`` of ``benchmarks.phase2_ablation``, or
``results/phase2_kernels_cpu/``; KERNEL as in :mod:`benchmarks.phase2_ablation`). The LR
image is rebuilt as in the benchmark ((128·s)² centre crop of the Set14, else Set5, image,
or the whole image when smaller, ×s, reflect; ``--scale`` s = 4 unless given). The damping
and TV weights are given for ×4 and multiplied by each of ``--factors`` (default 16/s², the
preset's scaling, ``ReconConfig.final_weights``). Rows (tab-separated: kernel source, variant,
image, kernel, Y-PSNR gain over bicubic in dB) are appended to ``--out``; the mean per
(source, variant) is printed at the end.

``--colour`` instead compares three ways to produce the colour output at the preset's TV
weight, all with the one shared kernel: the TV refinement of each RGB channel, of each
full-range BT.601 YCbCr channel, and of the luma alone with bicubic chroma. All are
scored by the gain over bicubic in Y-PSNR and in RGB PSNR (all three channels, 5% border).
"""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from kfops import backproject, bench, bicubic_upsample, degrade
from kfops.kernels import align_kernel
from kfops.metrics import default_crop_border, psnr_y
from kfops.nonblind import tv_refine
from kfops.presets import recon_config

from .devdata import hr_path
from .phase2_ablation import _kernels
from .rows import emit_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("final_step.tsv"))
    ap.add_argument("--weights", default="0,1e-3,2e-3,3e-3")
    ap.add_argument("--steps", default="4e-3", help="peak Adam step sizes of the refinement")
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--smooths", default="1e-2", help="Charbonnier δ of the TV prior")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument(
        "--factors",
        default="",
        help="multipliers of the damping and TV weights (default 16/s², the preset's scaling)",
    )
    ap.add_argument("--colour", action="store_true", help="compare the colour outputs")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    steps = [float(v) for v in args.steps.split(",")]
    smooths = [float(v) for v in args.smooths.split(",")]
    s = args.scale
    preset_factor = 16 / s**2
    factors = [float(v) for v in args.factors.split(",")] if args.factors else [preset_factor]
    gains: dict[tuple[str, str], list[float]] = defaultdict(list)
    for image, kname, hr, lr, k_true, k_est, base in saved_cases(args.dirs, s):
        for source, k in (("estimated", k_est), ("true", k_true)):
            if args.colour:
                _colour_rows(lr, hr, k, source, image, kname, args, gains)
                continue
            variants = {"backproject eps=1e-2": backproject(lr, k, s, eps=1e-2 * preset_factor)}
            if source == "true":
                variants["backproject eps=1e-3"] = backproject(lr, k, s, eps=1e-3 * preset_factor)
            for w, st, sm, f in itertools.product(weights, steps, smooths, factors):
                sr = tv_refine(lr, k, s, w * f, args.iters, eps=1e-2 * f, step=st, smooth=sm)
                name = f"tv weight={w:g} step={st:g}"
                name += "" if sm == 1e-2 else f" smooth={sm:g}"
                variants[name if f == preset_factor else f"{name} factor={f:g}"] = sr
            for name, sr in variants.items():
                gain = psnr_y(sr, hr) - base
                gains[(source, name)].append(gain)
                line = f"{source}\t{name}\t{image}\t{kname}\t{gain:+.3f}"
                emit_row(line, args.out)
    for (source, name), values in gains.items():
        print(f"mean\t{source}\t{name}\t{np.mean(values):+.3f}\t({len(values)} cases)")


def saved_cases(dirs: list[Path], scale: int = 4) -> Iterator[tuple]:
    """For every ``IMAGE__KERNEL[__...].npy`` in ``dirs`` (sorted): (image, kernel name, HR
    (1, 3, H, W), LR ×scale (reflect, clamped to [0, 1]), true kernel, estimated kernel,
    Y-PSNR of bicubic), the HR image rebuilt as in the benchmark (the (128·s)² centre crop,
    or the whole image when smaller; the kernel aligned where the name says ``@aligned``)."""
    hrs: dict[str, torch.Tensor] = {}
    for f in sorted(f for d in dirs for f in d.glob("*__*.npy")):
        image, kname = f.stem.split("__")[:2]
        if image not in hrs:
            hrs[image] = bench.load_hr(hr_path(image), 128 * scale, scale, None)
        hr, k_true = hrs[image], _kernels(kname, scale)[kname]
        if "@aligned" in f.stem:  # made by phase2_ablation --align
            k_true = align_kernel(k_true, scale)
        lr = degrade(hr, k_true, scale, "reflect").clamp(0, 1)
        base = psnr_y(bicubic_upsample(lr, scale).clamp(0, 1), hr)
        yield image, kname, hr, lr, k_true, torch.from_numpy(np.load(f)).float(), base


def _ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601: (1, 3, H, W) RGB in [0, 1] -> Y in [0, 1], Cb, Cr in [-0.5, 0.5]."""
    r, g, b = rgb.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack((y, (b - y) / 1.772, (r - y) / 1.402), 1)


def _rgb(ycc: torch.Tensor) -> torch.Tensor:
    y, cb, cr = ycc.unbind(1)
    r, b = y + 1.402 * cr, y + 1.772 * cb
    return torch.stack((r, (y - 0.299 * r - 0.114 * b) / 0.587, b), 1)


def psnr_rgb(sr: torch.Tensor, hr: torch.Tensor) -> float:
    """PSNR (dB) over the three channels in [0, 1], 5% border removed."""
    c = default_crop_border(*hr.shape[-2:])
    d = (sr.double() - hr.double())[..., c : hr.shape[-2] - c, c : hr.shape[-1] - c]
    return float(10 * torch.log10(1 / d.pow(2).mean()))


def _colour_rows(lr, hr, k, source, image, kname, args, gains) -> None:
    weight = recon_config("cpu").final_tv
    bic = bicubic_upsample(lr, 4).clamp(0, 1)
    ycc = _ycbcr(lr)
    luma = tv_refine(ycc[:, :1], k, 4, weight, args.iters)
    chroma = bicubic_upsample(ycc[:, 1:], 4)
    offset = torch.tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)  # chroma into [0, 1]
    variants = {
        "rgb tv": tv_refine(lr, k, 4, weight, args.iters),
        "luma tv + bicubic chroma": _rgb(torch.cat((luma, chroma), 1)).clamp(0, 1),
        "ycbcr tv": _rgb(tv_refine(ycc + offset, k, 4, weight, args.iters) - offset).clamp(0, 1),
    }
    for name, sr in variants.items():
        gy = psnr_y(sr, hr) - psnr_y(bic, hr)
        gc = psnr_rgb(sr, hr) - psnr_rgb(bic, hr)
        gains[(source, name + " (Y)")].append(gy)
        gains[(source, name + " (RGB)")].append(gc)
        line = f"{source}\t{name}\t{image}\t{kname}\t{gy:+.3f}\t{gc:+.3f}"
        emit_row(line, args.out)


if __name__ == "__main__":
    main()
