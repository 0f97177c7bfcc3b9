"""Internal learning for the final step: a small CNN trained on the LR image alone to undo
the estimated degradation (ZSSR-style), scored against the preset's TV refinement on kernels
already estimated.

    python -m benchmarks.internal_sr DIR [DIR ...] --out internal_sr.tsv --iters 300 \\
        [--start bp|tv] [--only IMAGE__KERNEL,...] [--sources true,estimated]

Training pairs come from the LR image itself: a "father" is a random crop of the LR image
(randomly shrunk, flipped and rotated), its "son" is the father degraded by the kernel at
the same scale, and the net maps the son's back-projection (or its TV refinement,
``--start tv``) to the father. Applied to the LR image's own back-projection, it should map
it to the HR image where the image's patches recur across scales. Rows (kernel source,
variant, image, kernel, gain over bicubic in dB, seconds) are appended to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kfops import backproject, degrade
from kfops.metrics import psnr_y
from kfops.nonblind import tv_refine
from kfops.presets import recon_config

from .final_step import saved_cases
from .rows import emit_row


class ResidualCNN(nn.Module):
    """x + f(x): ``depth`` 3×3 convolutions of ``width`` channels with ReLU between."""

    def __init__(self, width: int = 32, depth: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _pairs(lr, k, scale, n, size, gen, eps, start):
    """n (input, target) pairs of size² from the LR image: targets are augmented crops,
    inputs the back-projection of their degradation."""
    _, _, h, w = lr.shape
    targets = []
    for _ in range(n):
        f = float(torch.empty(1).uniform_(0.5, 1.0, generator=gen))
        img = lr
        if f < 0.999:
            hh, ww = max(size, round(h * f)), max(size, round(w * f))
            img = F.interpolate(lr, size=(hh, ww), mode="bicubic", antialias=True).clamp(0, 1)
        i = int(torch.randint(0, img.shape[-2] - size + 1, (1,), generator=gen))
        j = int(torch.randint(0, img.shape[-1] - size + 1, (1,), generator=gen))
        c = img[..., i : i + size, j : j + size]
        r = int(torch.randint(0, 4, (1,), generator=gen))
        c = torch.rot90(c, r, (-2, -1))
        if bool(torch.randint(0, 2, (1,), generator=gen)):
            c = c.flip(-1)
        targets.append(c)
    t = torch.cat(targets)
    son = degrade(t, k, scale, "reflect").clamp(0, 1)
    return _start(son, k, scale, eps, start), t


def _start(y, k, scale, eps, start):
    """The net's input: the back-projection (``bp``), or its TV refinement (``tv``)."""
    if start == "tv":
        cfg = recon_config("cpu")
        return tv_refine(y, k, scale, cfg.final_tv, cfg.final_iters, step=cfg.final_lr)
    return backproject(y, k, scale, eps=eps)


def train_apply(
    lr, k, scale, iters, width, depth, size, batch, seed, start="bp", eps=1e-2, lr_peak=1e-3
):
    """Train the net on pairs from ``lr`` (1, 3, h, w) and kernel ``k``; return its output
    on the LR image's own start (1, 3, s·h, s·w)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    inp, tgt = _pairs(lr, k, scale, 256, size, gen, eps, start)
    net = ResidualCNN(width, depth)
    opt = torch.optim.Adam(net.parameters(), lr=lr_peak)
    for it in range(iters):
        for g in opt.param_groups:
            g["lr"] = lr_peak * 0.5 * (1 + np.cos(np.pi * it / iters))
        idx = torch.randint(0, inp.shape[0], (batch,), generator=gen)
        loss = F.l1_loss(net(inp[idx]), tgt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net(_start(lr, k, scale, eps, start)).clamp(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("internal_sr.tsv"))
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--only", default="", help="comma-separated IMAGE__KERNEL stems")
    ap.add_argument("--sources", default="true,estimated")
    ap.add_argument("--start", default="bp", choices=("bp", "tv"))
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    cfg = recon_config("cpu")
    gains: dict[tuple[str, str], list[float]] = defaultdict(list)
    for image, kname, hr, lr, k_true, k_est, base in saved_cases(args.dirs):
        if only and f"{image}__{kname}" not in only:
            continue
        for source, k in (("true", k_true), ("estimated", k_est)):
            if source not in args.sources:
                continue
            t0 = time.perf_counter()
            tv = tv_refine(lr, k, 4, cfg.final_tv, cfg.final_iters, step=cfg.final_lr)
            t_tv = time.perf_counter() - t0
            t0 = time.perf_counter()
            sr = train_apply(
                lr, k, 4, args.iters, args.width, args.depth, args.size, args.batch, 0, args.start
            )
            t_net = time.perf_counter() - t0
            net = f"w{args.width} d{args.depth} it{args.iters} s{args.size} b{args.batch}"
            tag = f"cnn {args.start} {net}"
            for name, img, sec in (("tv", tv, t_tv), (tag, sr, t_net)):
                gain = psnr_y(img, hr) - base
                gains[(source, name)].append(gain)
                emit_row(f"{source}\t{name}\t{image}\t{kname}\t{gain:+.3f}\t{sec:.1f}", args.out)
    for (source, name), values in gains.items():
        print(f"mean\t{source}\t{name}\t{np.mean(values):+.3f}\t({len(values)} cases)")


if __name__ == "__main__":
    main()
