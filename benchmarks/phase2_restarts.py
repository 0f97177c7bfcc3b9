"""Several Phase-2 runs per case and the rules that combine them (``ReconConfig.restarts``):
each run's kernel and every :data:`kfops.consensus.CONSENSUS_RULES` rule, scored through
the cpu preset's final step by Y-PSNR gain over bicubic, kernel NCC and kernel spread.

    python -m benchmarks.phase2_restarts barbara/levin_k4 lenna/levin_k8 --out runs.tsv

Cases are ``IMAGE/KERNEL`` (kernel names as in :mod:`benchmarks.phase2_ablation`), ×4 on
the 512² centre crop (LR 128²). The prior is trained once per case with ``--seed`` (cached
under ``--priors``, shared with phase2_ablation); run r is Phase 2 with the generator
seeded r (``--runs`` of them), its kernel cached under ``--kernels``. Rows are appended to
``--out`` (tab-separated: image, kernel, candidate, ΔPSNR dB, NCC, spread px), then the
mean of every candidate over the cases is printed, with ``single`` (the mean of the runs:
what one run gives on average), ``best`` (the best run: an oracle) and ``average`` (the
pixel-wise mean of the runs' final-step images, each made with its own kernel; its row
leaves NCC and spread empty). ``--set KEY=VALUE``
overrides a field of the cpu preset's Phase 2 (e.g. ``--set steps=6 --set iters=8`` for
shorter runs); the kernels of such runs are cached apart, under a name that lists the
overrides.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import torch

from kfops import bicubic_upsample, tv_refine
from kfops.consensus import CONSENSUS_RULES, consensus_kernel, kernel_spread
from kfops.kernels import pad_alike
from kfops.metrics import kernel_ncc, psnr_y
from kfops.presets import recon_config
from kfops.reconstructor import Reconstructor

from .phase2_ablation import cached_prior, config_digest, dev_case, parse_override
from .rows import emit_row

# the rules that pick or combine a kernel; ``average`` (the images' mean) is scored apart
KERNEL_RULES = tuple(rule for rule in CONSENSUS_RULES if rule != "average")


def case_parser(doc: str, out: str, runs: int) -> argparse.ArgumentParser:
    """The arguments of the per-case Phase-2 scripts: cases (``IMAGE/KERNEL``), ``--runs``,
    ``--seed`` of the prior, ``--out`` (default ``out``), the ``--priors`` and ``--kernels``
    caches, ``--set KEY=VALUE`` overrides of the cpu preset's Phase 2; the description is
    ``doc``'s first line."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("cases", nargs="+", help="IMAGE/KERNEL")
    ap.add_argument("--runs", type=int, default=runs)
    ap.add_argument("--seed", type=int, default=1, help="seed of the prior's training")
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--priors", type=Path, default=Path(".cache/ablation_priors"))
    ap.add_argument("--kernels", type=Path, default=Path(".cache/restart_kernels"))
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the cpu preset's Phase 2 (value read as JSON)",
    )
    return ap


def case_setup(args: argparse.Namespace, scale: int):
    """Make the ``--priors`` and ``--kernels`` folders; return the cpu preset's Phase-2
    config, its final step's (damping, TV weight) at ``scale``, the ``--set`` overrides
    and the tag that keeps the kernels of overridden runs apart in the cache (it ends with
    the run's config digest, so a changed preset does not reuse old kernels)."""
    args.priors.mkdir(parents=True, exist_ok=True)
    args.kernels.mkdir(parents=True, exist_ok=True)
    overrides = dict(parse_override(item) for item in args.set)
    tag = "".join(f"__{key}{value}" for key, value in sorted(overrides.items()))
    tag += f"__{config_digest(recon_config('cpu', **overrides))}"
    cfg = recon_config("cpu")
    return cfg, *cfg.final_weights(scale), overrides, tag


def main() -> None:
    ap = case_parser(__doc__, "phase2_restarts.tsv", runs=3)
    args = ap.parse_args()
    s = 4
    cfg, eps, tv_weight, overrides, tag = case_setup(args, s)
    totals: dict[str, list[float]] = collections.defaultdict(list)
    for case in args.cases:
        image, kname, k, hr, lr = dev_case(case, s)
        prior = cached_prior(args.priors / f"{image}_{kname}_{args.seed}.pt", lr, args.seed)
        runs = []
        for r in range(1, args.runs + 1):
            path = args.kernels / f"{image}__{kname}__prior{args.seed}{tag}__run{r}.npy"
            if not path.exists():
                run_cfg = recon_config("cpu", final="backproject", **overrides)
                res = Reconstructor(s, run_cfg).run(
                    lr, prior, generator=torch.Generator().manual_seed(r)
                )
                np.save(path, res.kernel.double().numpy())
            runs.append(torch.from_numpy(np.load(path)).float())
        runs = pad_alike(runs)  # the size check may have resampled them to different sizes
        candidates = {f"run{r + 1}": est for r, est in enumerate(runs)}
        for rule in KERNEL_RULES:
            candidates[rule] = consensus_kernel(runs, rule)[0]
        base = psnr_y(bicubic_upsample(lr, s).clamp(0, 1), hr)
        gains: dict[str, float] = {}
        by_kernel: dict[int, float] = {}  # widest and medoid return one of the runs' kernels
        outputs: list[torch.Tensor] = []
        for name, est in candidates.items():
            if id(est) not in by_kernel:
                sr = tv_refine(lr, est, s, tv_weight, cfg.final_iters, eps=eps, step=cfg.final_lr)
                by_kernel[id(est)] = psnr_y(sr, hr) - base
                if name.startswith("run"):
                    outputs.append(sr)
            gains[name] = by_kernel[id(est)]
            ncc = kernel_ncc(est.double(), k.double())
            line = (
                f"{image}\t{kname}\t{name}\t{gains[name]:+.3f}\t{ncc:.3f}\t{kernel_spread(est):.2f}"
            )
            emit_row(line, args.out)
        average = psnr_y(torch.stack(outputs).mean(0), hr) - base
        emit_row(f"{image}\t{kname}\taverage\t{average:+.3f}\t\t", args.out)
        totals["average"].append(average)
        run_gains = [gains[f"run{r}"] for r in range(1, args.runs + 1)]
        totals["single"].append(sum(run_gains) / len(run_gains))
        totals["best"].append(max(run_gains))
        for rule in KERNEL_RULES:
            totals[rule].append(gains[rule])
    print("mean gain over bicubic (dB):")
    for name, values in totals.items():
        print(f"  {name:8s} {sum(values) / len(values):+.3f}")


if __name__ == "__main__":
    main()
