"""The final step on noisy LR images (``ReconConfig.final_noise_ref``), scored on kernels
already estimated: white Gaussian noise of standard deviation σ is added to the LR image
(clamped to [0, 1], rounded to 8 bits, seeded per case), then the ``cpu`` preset's final
step runs with its TV weight as it is and × (1 + (σ̂/σ_r)²), σ̂ the noise level
:func:`kfops.noise.noise_sigma` reads off the noisy LR image.

    python -m benchmarks.noise_step DIR [DIR ...] --sigmas 0,0.01,0.02,0.04 --ref 0.025 \\
        --out noise_step.tsv
    python -m benchmarks.noise_step DIR --sigmas 0.02 --factors 1,2,3,5   # fixed factors
    python -m benchmarks.noise_step DIR --sigmas 0 --jpeg 75   # JPEG-compressed LR instead

``--jpeg Q`` saves the (noisy) LR image as a JPEG of quality Q (PIL, 4:2:0 chroma) and
reads it back: compression artefacts in place of, or on top of, the noise. A variant
``jpeg`` is then added: the rule's factor + q̄/q_r (``--jpeg-ref`` q_r,
``ReconConfig.final_jpeg_ref``), q̄ the low-frequency luma step of that JPEG
(:func:`kfops.jpeg.quant_step`).

Each DIR holds kernels named ``IMAGE__KERNEL.npy`` as :mod:`benchmarks.final_step` reads
them. Rows appended to ``--out``, tab-separated: image, kernel, σ (suffixed ``/jpegQ``
with ``--jpeg``), σ̂, kernel source
(``estimated`` or ``true``), variant (``preset``, ``rule``, ``jpeg`` or ``xF``), its TV-weight
factor, Y-PSNR gain in dB over bicubic of the same noisy LR image (against the clean HR).
The means per (σ, source, variant) are printed at the end.
"""

from __future__ import annotations

import argparse
import collections
import io
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kfops import bicubic_upsample, tv_refine
from kfops.jpeg import quant_step
from kfops.metrics import psnr_y
from kfops.noise import noise_sigma
from kfops.presets import recon_config

from .final_step import saved_cases
from .rows import emit_row


def noisy(lr: torch.Tensor, sigma: float, key: str) -> torch.Tensor:
    """``lr`` + N(0, σ²) (a generator seeded by ``key``), clamped, rounded to 8 bits."""
    if sigma == 0:
        return lr
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    out = (lr + sigma * torch.randn(lr.shape, generator=g, dtype=lr.dtype)).clamp(0, 1)
    return (out * 255).round() / 255


def jpeg(lr: torch.Tensor, quality: int) -> tuple[torch.Tensor, float]:
    """(1, C, h, w) in [0, 1], C = 1 or 3, through a JPEG of ``quality`` and back; also the
    JPEG's low-frequency luma step (:func:`kfops.jpeg.quant_step`)."""
    arr = (lr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr if arr.shape[-1] == 3 else arr[..., 0]).save(
        buf, format="JPEG", quality=quality
    )
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        step = quant_step(im.quantization[0])
        back = np.asarray(im, dtype=np.float32) / 255
    back = back.reshape(*back.shape[:2], -1)  # (h, w, C) for grey images too
    return torch.from_numpy(back).permute(2, 0, 1)[None], step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--sigmas", default="0,0.01,0.02,0.04")
    ap.add_argument("--ref", type=float, default=0.025, help="σ_r of the rule")
    ap.add_argument("--factors", default="", help="fixed TV-weight factors to add, e.g. 2,3")
    ap.add_argument("--no-true", action="store_true", help="score the estimated kernels only")
    ap.add_argument("--jpeg", type=int, default=None, metavar="Q", help="JPEG quality Q")
    ap.add_argument("--jpeg-ref", type=float, default=0.025, help="q_r of the jpeg variant")
    ap.add_argument("--out", type=Path, default=Path("noise_step.tsv"))
    args = ap.parse_args()
    sigmas = [float(v) for v in args.sigmas.split(",")]
    factors = [float(v) for v in args.factors.split(",") if v]
    cfg = recon_config("cpu")
    eps, tv = cfg.final_weights(4)
    means: dict[tuple, list[float]] = collections.defaultdict(list)
    for image, kname, hr, lr, k_true, k_est, _ in saved_cases(args.dirs):
        for sigma in sigmas:
            lr_n = noisy(lr, sigma, f"{image}/{kname}/{sigma}")
            label, step = f"{sigma:g}", None
            if args.jpeg is not None:
                (lr_n, step), label = jpeg(lr_n, args.jpeg), f"{label}/jpeg{args.jpeg}"
            sigma_hat = noise_sigma(lr_n)
            base = psnr_y(bicubic_upsample(lr_n, 4).clamp(0, 1), hr)
            variants = {"preset": 1.0, "rule": 1.0 + (sigma_hat / args.ref) ** 2}
            if step is not None:
                variants["jpeg"] = variants["rule"] + step / args.jpeg_ref
            variants |= {f"x{f:g}": f for f in factors}
            sources = {"estimated": k_est} | ({} if args.no_true else {"true": k_true})
            for source, k in sources.items():
                for name, factor in variants.items():
                    sr = tv_refine(
                        lr_n, k, 4, tv * factor, cfg.final_iters, eps=eps, step=cfg.final_lr
                    )
                    gain = psnr_y(sr, hr) - base
                    means[(label, source, name)].append(gain)
                    line = (
                        f"{image}\t{kname}\t{label}\t{sigma_hat:.4f}\t{source}\t{name}\t"
                        f"{factor:.3f}\t{gain:+.3f}"
                    )
                    emit_row(line, args.out)
    for (label, source, name), values in sorted(means.items()):
        print(f"mean\tσ={label}\t{source}\t{name}\t{np.mean(values):+.3f}\t({len(values)} cases)")


if __name__ == "__main__":
    main()
