"""Can the LR image tell a kernel's size by comparing itself with itself downscaled?

The principle behind KernelGAN and nonparametric blind SR (Michaeli & Irani 2013): if
natural images look alike across scales, then the LR image downscaled ×s with the right
kernel, D = (y ⊛ k)↓s, has the statistics of the LR image y, as y has those of the HR
image. For every saved estimate (as :mod:`benchmarks.final_step`) and every true kernel,
the kernel is dilated by each factor (:func:`kfops.kernels.dilate_kernel`) and scored by
:func:`scale_scores` on the LR luma, and put through the ``cpu``
preset's final step for its gain over bicubic.

    python -m benchmarks.kernel_scale DIR [DIR ...] --alphas 0.7,0.85,1,1.2,1.4 \\
        --out kernel_scale.tsv

Rows (tab-separated): folder, image, kernel, source (``est`` or ``true``), factor, gain over
bicubic in dB, RMS radius over the true one, then one column per score. At the end, per
source: the mean gain of the undilated kernel, of the best factor per case (an oracle) and
of the factor each score picks (the least ``spec``, ``ns``, ``nn`` or ``bi``; the least absolute
``slope``),
and how often that factor is 1 for the true kernels.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

from kfops import degrade
from kfops.consensus import kernel_spread
from kfops.kernels import dilate_kernel
from kfops.metrics import psnr_y, rgb_to_y
from kfops.nonblind import tv_refine
from kfops.presets import recon_config
from kfops.sparsity import normalized_sparsity

from .final_step import saved_cases


def _phases(y: torch.Tensor, k: torch.Tensor, s: int) -> torch.Tensor:
    """(s², 1, H//s, W//s): ``y`` (1, 1, H, W) correlated with ``k`` at stride 1, every
    phase of the ×s decimation."""
    z = degrade(y, k, 1, "reflect", check_values=False)
    h, w = (z.shape[-2] // s) * s, (z.shape[-1] // s) * s
    z = z[..., :h, :w]
    return torch.cat([z[..., i::s, j::s] for i in range(s) for j in range(s)])


def _tiles(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, 1, h, w): the non-overlapping h×w tiles of ``y`` (1, 1, H, W)."""
    t = y.unfold(-2, h, h).unfold(-2, w, w)  # (1, 1, nH, nW, h, w)
    return t.reshape(-1, 1, h, w)


def _radial_power(x: torch.Tensor, bins: int) -> torch.Tensor:
    """(bins,) mean power spectrum of the (N, 1, h, w) images, Hann-windowed, mean removed,
    averaged in rings of width 1/min(h, w) cycles per pixel from 2/min(h, w) to 0.5."""
    h, w = x.shape[-2:]
    win = torch.outer(
        torch.hann_window(h, periodic=False, dtype=x.dtype),
        torch.hann_window(w, periodic=False, dtype=x.dtype),
    )
    x = (x - x.mean(dim=(-2, -1), keepdim=True)) * win
    p = torch.fft.fft2(x).abs().pow(2).mean(dim=(0, 1))
    fy = torch.fft.fftfreq(h, dtype=x.dtype)[:, None]
    fx = torch.fft.fftfreq(w, dtype=x.dtype)[None, :]
    fr = torch.sqrt(fy**2 + fx**2) * min(h, w)
    idx = (fr.round() - 2).long()
    out = torch.zeros(bins, dtype=x.dtype)
    cnt = torch.zeros(bins, dtype=x.dtype)
    ok = (idx >= 0) & (idx < bins)
    out.index_add_(0, idx[ok], p[ok])
    cnt.index_add_(0, idx[ok], torch.ones_like(p[ok]))
    return out / cnt.clamp_min(1)


def _patches(x: torch.Tensor, p: int) -> torch.Tensor:
    """(M, p²) all p×p patches of the (N, 1, h, w) images."""
    return F.unfold(x, p).transpose(1, 2).reshape(-1, p * p)


def _nn_dist(q: torch.Tensor, ref: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """(M,) squared distance from each row of ``q`` to its nearest row of ``ref``."""
    out = []
    rn = ref.pow(2).sum(1)
    for c in q.split(chunk):
        d = c.pow(2).sum(1, keepdim=True) - 2 * c @ ref.T + rn[None]
        out.append(d.min(1).values.clamp_min(0))
    return torch.cat(out)


def scale_scores(
    y: torch.Tensor, k: torch.Tensor, s: int, patch: int = 5, max_patches: int = 4000
) -> dict[str, float]:
    """Scores of kernel ``k`` (K, K) for the LR luma ``y`` (1, 1, H, W) in [0, 1] at scale
    ``s`` (lower = D more like y):

    * ``spec`` — variance over frequency of log(P_D / P_y), the radial power spectra of D
      and of D-sized tiles of y (the ratio is flat when k is right and the image's
      spectrum follows a power law);
    * ``slope`` — the least-squares slope of that log ratio against frequency (signed:
      negative when k is too wide, positive when too narrow);
    * ``ns`` — |NS(D) − NS(y)|, NS the normalised gradient sparsity
      (:func:`kfops.sparsity.normalized_sparsity`; for D the mean over its phases);
    * ``offset`` — the mean of that log ratio (for reference; no direction is better);
    * ``nn`` — mean squared distance of D's p×p patches to their nearest patch of y, over
      the mean patch variance of y;
    * ``bi`` — ``nn`` plus the same distance the other way, from y's patches to their
      nearest patch of D (all s² phases): bidirectional similarity (Simakov et al. 2008).
      ``nn`` alone falls with every widening, since a blurred patch finds a smooth match;
      the reverse term grows when k is too wide, as the sharp patches of y find no match in
      a D that is too blurred.
    """
    y = y.double()
    k = k.double()
    d = _phases(y, k, s)
    h, w = d.shape[-2:]
    bins = min(h, w) // 2 - 1
    ratio = (
        _radial_power(d, bins).clamp_min(1e-30).log()
        - _radial_power(_tiles(y, h, w), bins).clamp_min(1e-30).log()
    )
    f = torch.arange(bins, dtype=y.dtype)
    fc = f - f.mean()
    slope = float((fc * ratio).sum() / fc.pow(2).sum()) * min(h, w)
    ns = abs(float(normalized_sparsity(d) - normalized_sparsity(y)))
    qd = _patches(d.float(), patch)
    ref = _patches(y.float(), patch)
    g = torch.Generator().manual_seed(0)
    qd_all = qd
    if qd.shape[0] > max_patches:
        qd = qd[torch.randperm(qd.shape[0], generator=g)[:max_patches]]
    qy = ref
    if qy.shape[0] > max_patches:
        qy = qy[torch.randperm(qy.shape[0], generator=g)[:max_patches]]
    var = ref.var(1).mean().clamp_min(1e-12)
    nn = float(_nn_dist(qd, ref).mean() / (patch * patch) / var)
    back = float(_nn_dist(qy, qd_all).mean() / (patch * patch) / var)
    return {
        "spec": float(ratio.var()),
        "slope": slope,
        "ns": ns,
        "nn": nn,
        "offset": float(ratio.mean()),
        "bi": nn + back,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--alphas", default="0.6,0.7,0.85,1,1.2,1.4,1.6")
    ap.add_argument("--sources", default="est,true")
    ap.add_argument("--out", type=Path, default=Path("kernel_scale.tsv"))
    args = ap.parse_args()
    cfg = recon_config("cpu")
    alphas = [float(a) for a in args.alphas.split(",")]
    runs: dict[tuple[str, str, str, str], list[tuple[float, float, dict]]] = defaultdict(list)
    for d in args.dirs:
        for image, kname, hr, lr, k_true, k_est, base in saved_cases([d]):
            y = rgb_to_y(lr)
            for source in args.sources.split(","):
                k0 = k_est if source == "est" else k_true.float()
                for a in alphas:
                    k = dilate_kernel(k0, a)
                    sr = tv_refine(lr, k, 4, cfg.final_tv, cfg.final_iters, step=cfg.final_lr)
                    gain = psnr_y(sr, hr) - base
                    ratio = kernel_spread(k) / kernel_spread(k_true)
                    scores = scale_scores(y, k, 4)
                    cols = "\t".join(f"{v:.6g}" for v in scores.values())
                    line = (
                        f"{d.name}\t{image}\t{kname}\t{source}\t{a:g}\t{gain:+.3f}"
                        f"\t{ratio:.2f}\t{cols}"
                    )
                    print(line, flush=True)
                    runs[(d.name, image, kname, source)].append((a, gain, scores))
                    with open(args.out, "a") as fh:
                        fh.write(line + "\n")
    summarise(runs)


def summarise(runs: dict[tuple[str, str, str, str], list[tuple[float, float, dict]]]) -> None:
    """Print, per source, the mean gain of factor 1, of the oracle and of each score's pick."""
    picks = {
        "spec": lambda sc: sc["spec"],
        "|slope|": lambda sc: abs(sc["slope"]),
        "ns": lambda sc: sc["ns"],
        "nn": lambda sc: sc["nn"],
        "bi": lambda sc: sc["bi"],
    }
    for source in sorted({key[3] for key in runs}):
        cases = [rows for key, rows in runs.items() if key[3] == source]
        one = [g for rows in cases for a, g, _ in rows if a == 1]
        best = [max(g for _, g, _ in rows) for rows in cases]
        print(
            f"{source}: {len(cases)} cases; factor 1 {sum(one) / max(len(one), 1):+.3f} dB,"
            f" oracle {sum(best) / len(best):+.3f}"
        )
        for name, key in picks.items():
            chosen = [min(rows, key=lambda r: key(r[2])) for rows in cases]
            mean = sum(g for _, g, _ in chosen) / len(chosen)
            at_one = sum(a == 1 for a, _, _ in chosen)
            print(f"  {name}: {mean:+.3f} dB, factor 1 picked in {at_one} of {len(chosen)}")


if __name__ == "__main__":
    main()
