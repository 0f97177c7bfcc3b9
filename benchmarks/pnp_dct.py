"""A stronger image prior for the final step: plug-and-play half-quadratic splitting with a
sliding-DCT shrinkage denoiser, scored against the preset's TV refinement on kernels already
estimated and on the true kernels.

    python -m benchmarks.pnp_dct DIR [DIR ...] --out pnp_dct.tsv \\
        --configs 'A0,SIG0,SIG1;...' [--scale 4] [--iters 12] [--sources estimated,true]

Each iteration solves the data step argmin ‖(x ⊛ k)↓s − y‖² + α‖x − z‖² by a few conjugate
gradient steps (warm-started), then denoises x at level σ into z: 8×8 patches on a stride
of 2 in an orthonormal opponent colour space, orthonormal DCT, coefficients below 2.7σ set
to 0 (the DC kept), patches put back with weights 1/(coefficients kept). σ falls
geometrically from SIG0 to SIG1 over the iterations and α = A0·(SIG1/σ)². The start is the
preset's TV refinement. Variants per kernel: ``tv`` (the preset's final step), ``pnp
A0,SIG0,SIG1`` and ``mean A0,SIG0,SIG1`` (the pixel-wise mean of the two). Rows (kernel
source, variant, image, kernel, Y-PSNR gain over bicubic in dB, seconds) are appended to
``--out``; the means are printed at the end. Images as in :mod:`benchmarks.final_step`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kfops.metrics import psnr_y
from kfops.nonblind import tv_refine
from kfops.ops import degrade, degrade_adjoint
from kfops.presets import recon_config

from .final_step import saved_cases
from .rows import emit_row

_OPPONENT = torch.tensor(
    [
        [3**-0.5, 3**-0.5, 3**-0.5],
        [2**-0.5, 0.0, -(2**-0.5)],
        [6**-0.5, -2 * 6**-0.5, 6**-0.5],
    ]
)


def dct_matrix(n: int) -> torch.Tensor:
    """(n, n) orthonormal DCT-II matrix (rows are the basis vectors)."""
    i = torch.arange(n, dtype=torch.float64)
    c = torch.cos(math.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * n)) * math.sqrt(2 / n)
    c[0] /= math.sqrt(2)
    return c.float()


def dct_denoise(
    x: torch.Tensor, sigma: float, patch: int = 8, stride: int = 2, thr: float = 2.7
) -> torch.Tensor:
    """Sliding-DCT hard thresholding of (B, C, H, W) at noise level ``sigma``."""
    b, c, h, w = x.shape
    colour = _OPPONENT.to(x) if c == 3 else torch.eye(c, dtype=x.dtype)
    z = torch.einsum("ij,bjhw->bihw", colour, x)
    pad = patch - 1
    zp = F.pad(z, (pad, pad, pad, pad), mode="reflect").reshape(b * c, 1, h + 2 * pad, w + 2 * pad)
    size = zp.shape[-2:]
    d = torch.kron(dct_matrix(patch), dct_matrix(patch)).to(x)
    coef = d @ F.unfold(zp, patch, stride=stride)
    keep = coef.abs() > thr * sigma
    keep[:, 0] = True
    weight = 1.0 / keep.sum(1, keepdim=True).to(x.dtype)
    num = F.fold((d.T @ (coef * keep)) * weight, size, patch, stride=stride)
    den = F.fold(weight.expand(-1, patch * patch, -1).contiguous(), size, patch, stride=stride)
    out = (num / den.clamp_min(1e-12))[..., pad : pad + h, pad : pad + w].reshape(b, c, h, w)
    return torch.einsum("ij,bjhw->bihw", colour.T, out)


def data_step(y, k, s, z, alpha, x, iters=8):
    """argmin ‖A x − y‖² + α‖x − z‖² by ``iters`` conjugate-gradient steps from x."""
    hw = z.shape[-2:]

    def normal(v):
        av = degrade(v, k, s, "reflect", check_values=False)
        return degrade_adjoint(av, k, s, "reflect", hr_size=hw) + alpha * v

    x = x.clone()
    r = degrade_adjoint(y, k, s, "reflect", hr_size=hw) + alpha * z - normal(x)
    p, rs = r.clone(), (r * r).sum()
    for _ in range(iters):
        ap = normal(p)
        a = rs / (p * ap).sum().clamp_min(1e-30)
        x += a * p
        r -= a * ap
        rs_new = (r * r).sum()
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def pnp_refine(y, k, s, start, a0, sig0, sig1, iters=12):
    """Plug-and-play HQS from ``start`` (see the module docstring); (B, C, s·h, s·w) in [0, 1]."""
    k = k.float()
    x, z = start.clone(), start.clone()
    for sigma in np.geomspace(sig0, sig1, iters):
        x = data_step(y, k, s, z, a0 * (sig1 / sigma) ** 2, x)
        z = dct_denoise(x, float(sigma))
    return x.clamp(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("pnp_dct.tsv"))
    ap.add_argument("--configs", default="0.01,0.15,0.03;0.03,0.2,0.05")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--sources", default="estimated,true")
    args = ap.parse_args()
    s = args.scale
    cfg = recon_config("cpu")
    eps, tv_w = cfg.final_weights(s, 0.0, 0.0)
    configs = [tuple(float(v) for v in c.split(",")) for c in args.configs.split(";")]
    sources = args.sources.split(",")
    gains: dict[tuple[str, str], list[float]] = defaultdict(list)
    for image, kname, hr, lr, k_true, k_est, base in saved_cases(args.dirs, s):
        for source, k in (("estimated", k_est), ("true", k_true)):
            if source not in sources:
                continue
            t0 = time.monotonic()
            tv = tv_refine(lr, k.float(), s, tv_w, cfg.final_iters, eps=eps, step=cfg.final_lr)
            results = {"tv": (tv, time.monotonic() - t0)}
            for a0, sig0, sig1 in configs:
                t0 = time.monotonic()
                x = pnp_refine(lr, k, s, tv, a0, sig0, sig1, args.iters)
                name = f"{a0:g},{sig0:g},{sig1:g}"
                results[f"pnp {name}"] = (x, time.monotonic() - t0)
                results[f"mean {name}"] = ((x + tv) / 2, 0.0)
            for variant, (sr, sec) in results.items():
                gain = psnr_y(sr, hr) - base
                gains[source, variant].append(gain)
                emit_row(f"{source}\t{variant}\t{image}\t{kname}\t{gain:+.3f}\t{sec:.1f}", args.out)
    for (source, variant), values in gains.items():
        print(f"mean\t{source}\t{variant}\t{np.mean(values):+.3f}\t({len(values)} cases)")


if __name__ == "__main__":
    main()
