"""The ``cpu`` preset end to end on noisy LR images: prior and Phase 2 trained on the noisy
image, the noise-adaptive final step (``ReconConfig.final_noise_ref``) against the same
kernel through the noise-free weight, and the true kernel through both.

    python -m benchmarks.noise_e2e lenna/shake_140 zebra/levin_k5 --sigma 0.02 \\
        --out noise_e2e.tsv
    python -m benchmarks.noise_e2e woman/shake_150 --sigma 0 --jpeg 60   # a JPEG LR image

Cases are ``IMAGE/KERNEL`` as in :mod:`benchmarks.phase2_restarts` (×4, LR 128²); the
noise is added as in :mod:`benchmarks.noise_step` (clamped, 8-bit), and with ``--jpeg Q``
the LR image is then saved as a JPEG of quality Q and read back, its step passed to the
run (``ReconConfig.final_jpeg_ref``). Priors are cached under ``--priors`` (seed 1),
Phase 2 is seeded 1. Rows appended to ``--out``, tab-separated: image, kernel, σ (suffixed
``/jpegQ``), σ̂, the resize check's pick (None or the method), gain over bicubic in dB of
the preset's output, of its kernel with the weight before the adaptation (noise-free; with
``--jpeg``, the noise rule without the JPEG term), of the true kernel with the adapted and
with that weight, kernel NCC, Phase-2 seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from kfops import bicubic_upsample, tv_refine
from kfops.metrics import kernel_ncc, psnr_y
from kfops.presets import recon_config
from kfops.reconstructor import Reconstructor

from .noise_step import jpeg, noisy
from .phase2_ablation import cached_prior, dev_case
from .rows import emit_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--sigma", type=float, default=0.02)
    ap.add_argument("--jpeg", type=int, default=None, metavar="Q", help="JPEG quality Q")
    ap.add_argument("--priors", type=Path, default=Path(".cache/noise_priors"))
    ap.add_argument("--out", type=Path, default=Path("noise_e2e.tsv"))
    args = ap.parse_args()
    cfg = recon_config("cpu")
    for case in args.cases:
        image, kname, k_true, hr, lr = dev_case(case, 4)
        lr = noisy(lr.clamp(0, 1), args.sigma, f"{case}/{args.sigma}")
        label, step = f"{args.sigma:g}", 0.0
        if args.jpeg is not None:
            (lr, step), label = jpeg(lr, args.jpeg), f"{label}/jpeg{args.jpeg}"
        prior = cached_prior(args.priors / f"{image}_{kname}_{label.replace('/', '_')}.pt", lr, 1)
        t0 = time.perf_counter()
        res = Reconstructor(4, cfg).run(
            lr, prior, generator=torch.Generator().manual_seed(1), jpeg_step=step
        )
        seconds = time.perf_counter() - t0
        base = psnr_y(bicubic_upsample(lr, 4).clamp(0, 1), hr)
        eps0, tv0 = (
            cfg.final_weights(4, res.noise) if args.jpeg is not None else cfg.final_weights(4)
        )
        eps, tv = cfg.final_weights(4, res.noise, res.jpeg_step)

        def gain(kernel, weight, damping, lr=lr, hr=hr, base=base) -> float:
            sr = tv_refine(lr, kernel, 4, weight, cfg.final_iters, eps=damping, step=cfg.final_lr)
            return psnr_y(sr, hr) - base

        line = (
            f"{image}\t{kname}\t{label}\t{res.noise:.4f}\t{res.fallback}\t"
            f"{psnr_y(res.hr, hr) - base:+.3f}\t{gain(res.kernel, tv0, eps0):+.3f}\t"
            f"{gain(k_true, tv, eps):+.3f}\t{gain(k_true, tv0, eps0):+.3f}\t"
            f"{kernel_ncc(res.kernel, k_true):.3f}\t{seconds:.0f}"
        )
        emit_row(line, args.out)


if __name__ == "__main__":
    main()
