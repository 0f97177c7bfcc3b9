"""Measure the PD training curve on 2 cores: held-out v-loss and patch statistics of
samples against steps and seconds, for several widths, learning rates and batch sizes.

    python -m benchmarks.prior_curve --out benchmarks/results/prior_curve_cpu.csv
    python -m benchmarks.prior_curve --configs 32,1e-3,1 32,1e-3,4 --steps 0,500,2000 --out X.csv

``--configs`` takes HIDDEN,LR[,BATCH] items (batch 1 by default: the preset's);
``--steps`` the checkpoints.

The LR image is a Set14 image (or examples/butterfly.png) blurred with a random
camera-shake kernel and downscaled ×4. Held-out loss: a fixed set of (crop, t, noise)
triples drawn once. Patch statistics: L1 distance between the gradient-orientation and
gradient-magnitude histograms of 2 samples (64², 50 respaced steps) and of the LR image.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import kfops
from kfops.diffusion import PatchPrior, from_model, to_model

ROOT = Path(__file__).resolve().parents[1]


def lr_image() -> torch.Tensor:
    set14 = ROOT.parent / "shared" / "data" / "sr_testsets" / "Set14" / "HR" / "barbara.png"
    src = set14 if set14.exists() else ROOT / "examples" / "butterfly.png"
    hr = kfops.io.load_image(src).pixels
    k = kfops.kernels.camera_shake(24, torch.Generator().manual_seed(7)).float()
    return kfops.degrade(hr, k, 4).clamp(0, 1)


def grad_hists(img: torch.Tensor, bins: int = 18) -> tuple[torch.Tensor, torch.Tensor]:
    g = img.mean(1, keepdim=True)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(g, kx), F.conv2d(g, kx.transpose(-1, -2))
    mag = torch.sqrt(gx**2 + gy**2).flatten()
    ang = (torch.atan2(gy, gx) % math.pi).flatten()
    idx = (ang / math.pi * bins).long().clamp(max=bins - 1)
    ho = torch.zeros(bins).index_add_(0, idx, mag)
    hm = torch.histc(mag.clamp(max=2.0), bins=bins, min=0, max=2.0)
    return ho / ho.sum(), hm / hm.sum()


def heldout(prior: PatchPrior, img: torch.Tensor, n: int = 32) -> float:
    g = torch.Generator().manual_seed(123)
    x = to_model(img)
    c = min(64, *img.shape[-2:])
    total = 0.0
    with torch.no_grad():
        for _ in range(n):
            y = int(torch.randint(0, img.shape[-2] - c + 1, (1,), generator=g))
            xx = int(torch.randint(0, img.shape[-1] - c + 1, (1,), generator=g))
            x0 = x[..., y : y + c, xx : xx + c]
            t = torch.randint(0, 1000, (1,), generator=g)
            noise = torch.randn(x0.shape, generator=g)
            xt = prior.schedule.q_sample(x0, t, noise)
            total += float(F.mse_loss(prior(xt, t), prior.schedule.v_target(x0, t, noise)))
    return total / n


def run(configs, checkpoints, out: Path) -> None:
    img = lr_image()
    ref_o, ref_m = grad_hists(img)
    rows = []
    for hidden, lr, batch in configs:
        prior = PatchPrior(hidden=hidden)
        gen = torch.Generator().manual_seed(0)
        done, seconds = 0, 0.0
        for ck in checkpoints:
            if ck > done:
                t0 = time.perf_counter()
                prior.fit(
                    img,
                    steps=ck - done,
                    crop=64,
                    lr=lr,
                    batch=batch,
                    generator=gen,
                    progress=False,
                )
                seconds += time.perf_counter() - t0
                done = ck
            s = from_model(
                prior.sample((2, 3, 64, 64), steps=50, generator=torch.Generator().manual_seed(1))
            ).clamp(0, 1)
            so, sm = grad_hists(s)
            row = dict(
                hidden=hidden,
                lr=lr,
                batch=batch,
                steps=ck,
                seconds=round(seconds, 1),
                heldout_loss=round(heldout(prior, img), 5),
                orient_l1=round(float((so - ref_o).abs().sum()), 4),
                gradmag_l1=round(float((sm - ref_m).abs().sum()), 4),
            )
            rows.append(row)
            print(row, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/prior_curve_cpu.csv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", nargs="+", default=["32,1e-3", "32,1e-4", "64,1e-3"])
    ap.add_argument("--steps", default="0,250,500,1000,2000,3000")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    configs = []
    for item in args.configs:
        hidden, lr, *rest = item.split(",")
        configs.append((int(hidden), float(lr), int(rest[0]) if rest else 1))
    run(configs, [int(v) for v in args.steps.split(",")], args.out)


if __name__ == "__main__":
    main()
