"""The final kernel's shape at an earlier kernel's size (``ReconConfig.kernel_radius_at``):
one Phase-2 run of the cpu preset per case (its radius step and resize check off: the run is
the same; :mod:`benchmarks.resize_check` scores the check on ``--save``'s kernels), its
kernel after every timestep kept, then the final kernel resampled to the RMS radius of the
kernel after timestep m, for every m, each scored through the cpu preset's final step.

    python -m benchmarks.kernel_radius man/levin_k3 pepper/l_shape --out radius.tsv

Cases are ``IMAGE/KERNEL`` as in :mod:`benchmarks.phase2_restarts` (×4, LR 128², priors
cached under ``--priors``); run r is seeded r, and its kernel path is cached under
``--kernels``. Rows appended to ``--out``, tab-separated: image, kernel, run, m (0 = the
final kernel as it is), ΔPSNR dB over bicubic, NCC, spread px, true spread px. The mean
per m is printed at the end (of the rows written by this call). ``--cv M`` adds the row
``cvM``: the m = M kernel where cross-validation prefers it to the final kernel, else the
final kernel (what ``ReconConfig(kernel_radius_at=M, kernel_radius_cv=True)`` returns);
``--cv 2,5`` adds ``cv2`` and ``cv5``, the first M is the one the options below use.
``--factors 0.7,0.85,1.2`` adds the rows ``xF`` (the final kernel made F× wider) and, with
``--cv``, ``cvall``: the kernel of least CV error among the final one, the m = M one and
the ``xF`` ones, in that order. ``--save DIR`` keeps run 1's preset kernel for
:mod:`benchmarks.final_step`. ``--tail 2,3`` adds the rows ``tailJ``: the mean of the
kernels after the last J timesteps in place of the final one (and, with ``--cv``,
``tailJ+cvM``: that mean or, where CV prefers it, the mean resampled to the m = M radius).
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import torch

from kfops import bicubic_upsample, tv_refine
from kfops.consensus import kernel_spread
from kfops.crops import cv_luma
from kfops.kernel_check import best_by_cv, cv_error
from kfops.kernels import dilate_kernel
from kfops.metrics import kernel_ncc, psnr_y
from kfops.presets import recon_config
from kfops.reconstructor import Reconstructor, radius_factor

from .phase2_ablation import cached_prior, dev_case
from .phase2_restarts import case_parser, case_setup


def main() -> None:
    ap = case_parser(__doc__, "kernel_radius.tsv", runs=1)
    ap.add_argument(
        "--cv",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[],
        metavar="M[,M...]",
        help="add the CV-checked m = M rows (the first one is --save's, --tail's and cvall's)",
    )
    ap.add_argument(
        "--save",
        type=Path,
        default=None,
        metavar="DIR",
        help="save run 1's preset kernel (cvM, else the final one) as DIR/IMAGE__KERNEL.npy",
    )
    lists = {
        "--factors": (float, "F", "the final kernel made F× wider (and a CV pick among them)"),
        "--tail": (int, "J", "the mean of the kernels after the last J timesteps"),
    }
    for flag, (kind, meta, what) in lists.items():
        ap.add_argument(
            flag,
            type=lambda v, kind=kind: [kind(x) for x in v.split(",")],
            default=[],
            metavar=f"{meta},{meta},...",
            help=f"add rows for {what}",
        )
    args = ap.parse_args()
    cv = args.cv[0] if args.cv else 0
    s = 4
    cfg, eps, tv_weight, overrides, tag = case_setup(args, s)
    totals: dict[str, list[float]] = collections.defaultdict(list)
    for case in args.cases:
        image, kname, true, hr, lr = dev_case(case, s)
        base = psnr_y(bicubic_upsample(lr, s).clamp(0, 1), hr)
        prior = None
        for r in range(1, args.runs + 1):
            cache = args.kernels / f"{image}__{kname}__prior{args.seed}{tag}__run{r}__path.npy"
            if not cache.exists():
                if prior is None:
                    name = f"{image}_{kname}_{args.seed}.pt"
                    prior = cached_prior(args.priors / name, lr, args.seed)
                run_cfg = recon_config(
                    "cpu",
                    **dict(overrides, final="backproject", kernel_radius_at=0, resize_check=None),
                )
                res = Reconstructor(s, run_cfg).run(
                    lr, prior, generator=torch.Generator().manual_seed(r)
                )
                np.save(cache, torch.stack(res.kernel_path).double().numpy())
            path = torch.from_numpy(np.load(cache)).float()
            final = path[-1]
            factors = [None, *(radius_factor(early, final) for early in path[:-1])]
            kernels = {
                str(m): final if factor is None else dilate_kernel(final, factor)
                for m, factor in enumerate(factors)
            }
            scaled = [dilate_kernel(final, f) for f in args.factors]
            kernels |= {f"x{f:g}": k for f, k in zip(args.factors, scaled, strict=True)}
            if cv:
                # each kernel scored once; the least error wins, the first on ties (best_by_cv)
                y = cv_luma(lr)
                every = [final, *(kernels[str(m)] for m in args.cv), *scaled]
                errors = [cv_error(y, k, s, eps, tv_weight) for k in every]
                for i, m in enumerate(args.cv, start=1):
                    kernels[f"cv{m}"] = every[0] if errors[0] <= errors[i] else every[i]
                if scaled:
                    # among the final kernel, the first m's and the scaled ones
                    pool = [0, 1, *range(1 + len(args.cv), len(every))]
                    kernels["cvall"] = every[min(pool, key=lambda i: (errors[i], i))]
            for j in args.tail:
                mean = path[-j:].mean(0)
                kernels[f"tail{j}"] = mean = mean / mean.sum()
                if cv:
                    factor = radius_factor(path[cv - 1], mean)
                    if factor is not None:
                        pair = [mean, dilate_kernel(mean, factor)]
                        mean = pair[best_by_cv(y, pair, s, eps, tv_weight)]
                    kernels[f"tail{j}+cv{cv}"] = mean
            if args.save is not None and r == 1:
                args.save.mkdir(parents=True, exist_ok=True)
                chosen = kernels[f"cv{cv}"] if cv else final
                np.save(args.save / f"{image}__{kname}.npy", chosen.double().numpy())
            for m, k in kernels.items():
                sr = tv_refine(lr, k, s, tv_weight, cfg.final_iters, eps=eps, step=cfg.final_lr)
                gain = psnr_y(sr, hr) - base
                totals[m].append(gain)
                ncc = kernel_ncc(k.double(), true.double())
                row = [image, kname, f"run{r}", m, f"{gain:+.3f}", f"{ncc:.3f}"]
                row += [f"{kernel_spread(k):.2f}", f"{kernel_spread(true):.2f}"]
                print(*row, sep="\t", flush=True)
                with args.out.open("a") as fh:
                    fh.write("\t".join(row) + "\n")
    print("mean gain over bicubic (dB) by m (0 = the final kernel as it is):")
    for m, gains in totals.items():
        print(f"  {m:>4} {np.mean(gains):+.3f} ({len(gains)} runs)")


if __name__ == "__main__":
    main()
