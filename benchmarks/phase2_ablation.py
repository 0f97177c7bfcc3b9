"""Phase-2 ablation on a few images (the paper's Tables 3–4 at CPU scale): the cpu preset
with one setting changed per variant, scored by Y-PSNR gain over bicubic and kernel NCC.

    python -m benchmarks.phase2_ablation --images barbara --out results.tsv \\
        base mode=dip mode=unet_only mode=pd_unet kernel_model=direct_relu crop=64

Each variant is ``NAME`` (``base`` = the preset) or ``KEY=VALUE`` (a ReconConfig override,
the value read as JSON or else kept as text; several joined by commas, e.g.
``crop=32,crops=3``).
Kernels: Levin k1, k4, k7, the L-shape stress kernel and one anisotropic Gaussian (or those
named in ``--kernel-names``), ×4 (or ``--scale``), on (128·s)² centre crops of Set14 (or
Set5) images (LR 128²).
One prior is trained per (image, kernel) with the cpu recipe and cached under ``--priors``,
so every variant sees the same prior. Rows are appended to ``--out`` as they finish
(tab-separated: variant, image, kernel, ΔPSNR dB, NCC, seconds). ``--kernels DIR`` also
saves every estimated kernel there as ``IMAGE__KERNEL__VARIANT.npy`` (the input of
``benchmarks.final_step``). ``--luma`` trains the prior and runs Phase 2 on the BT.601
luma of the LR image alone, then applies the preset's final step to the RGB image with
that kernel (variant names get ``@y``). ``--prior-steps N`` trains (and caches) priors
for N steps instead of the preset's (variant names get ``@prior=N``). ``--seed`` seeds the
prior's training and Phase 2; ``--phase2-seed N`` gives Phase 2 a seed of its own (the
network initialisations and the noise; variant names get ``@phase2_seed=N``). ``--align``
moves each kernel to where the degradation is bicubic-aligned before the LR image is made
(:func:`kfops.kernels.align_kernel`; it matters where the support's parity differs from
the scale's, as the 6s supports at ×3; variant names get ``@aligned``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from kfops import bench, bicubic_upsample, degrade, tv_refine
from kfops.diffusion import PatchPrior
from kfops.kernel_inr import default_kernel_size
from kfops.kernels import (
    RESIZE_METHODS,
    align_kernel,
    anisotropic_gaussian,
    camera_shake,
    disk,
    linear_motion,
    resize_filter,
)
from kfops.metrics import kernel_ncc, psnr_y
from kfops.presets import prior_config, recon_config
from kfops.reconstructor import Reconstructor

from .devdata import hr_path
from .rows import emit_row

KERNELS = ("levin_k1", "levin_k4", "levin_k7", "l_shape")


def _kernels(names: str | None, scale: int = 4) -> dict[str, torch.Tensor]:
    """The named kernels (comma-separated), or the default five, at the scale's default
    support (24 at ×4). ``gauss_SX_SY_THETA`` is any anisotropic Gaussian (standard
    deviations in HR pixels at ×4, angle in radians; e.g. ``gauss_1.2_1.2_0`` blurs about
    as much as averaging 4×4 pixels); the Gaussians' widths scale with s / 4. ``shake_SEED``
    is the :func:`kfops.kernels.camera_shake` kernel drawn with a generator seeded SEED;
    ``disk_R`` the defocus :func:`kfops.kernels.disk` of radius R and ``motion_L_THETA`` the
    :func:`kfops.kernels.linear_motion` of length L at angle THETA (radians), both in HR
    pixels at ×4 and scaled with s / 4 like the Gaussians; ``bicubic``, ``bilinear`` and
    ``area`` are the blurs of an ordinary downscale by the scale
    (:func:`kfops.kernels.resize_filter`)."""
    size = default_kernel_size(scale)
    table = bench.load_kernel_set("levin,stress", size=size)
    gauss_names = list(bench.load_kernel_set("gauss", size=24))
    chosen = names.split(",") if names else (*KERNELS, sorted(gauss_names)[0])
    for name in {*gauss_names, *(n for n in chosen if n.startswith("gauss_"))}:
        sx, sy, th = (float(v) for v in name.split("_")[1:])
        table[name] = anisotropic_gaussian(size, sx * scale / 4, sy * scale / 4, th)
    for name in (n for n in chosen if n in RESIZE_METHODS):
        table[name] = resize_filter(scale, name, size)
    for name in (n for n in chosen if n.startswith("disk_")):
        table[name] = disk(size, float(name.split("_")[1]) * scale / 4)
    for name in (n for n in chosen if n.startswith("motion_")):
        length, theta = (float(v) for v in name.split("_")[1:])
        table[name] = linear_motion(size, length * scale / 4, theta)
    for name in (n for n in chosen if n.startswith("shake_")):
        seed = int(name.split("_")[1])
        table[name] = camera_shake(size, generator=torch.Generator().manual_seed(seed))
    return {k: table[k].float() for k in chosen}


def dev_case(
    case: str, scale: int = 4
) -> tuple[str, str, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``IMAGE/KERNEL`` → (image, kernel name, true kernel, HR: the (128·s)² centre crop,
    LR = (HR ⊛ k)↓s with reflect padding): a case of the Phase-2 benchmark scripts."""
    image, name = case.split("/")
    kernel = _kernels(name, scale)[name]
    hr = bench.load_hr(hr_path(image), 128 * scale, scale, None)
    return image, name, kernel, hr, degrade(hr, kernel, scale, "reflect")


def parse_override(item: str) -> tuple[str, object]:
    """``'steps=6'`` -> ``('steps', 6)``: the value read as JSON, a bare word that is not
    JSON (``mode=dip``) kept as text."""
    key, _, text = item.partition("=")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text


def _variant(spec: str) -> tuple[str, dict]:
    """``base`` or ``KEY=VALUE[,KEY=VALUE...]`` (values as :func:`parse_override` reads
    them) -> (name, ReconConfig overrides)."""
    if spec == "base":
        return spec, {}
    return spec, dict(parse_override(part) for part in re.split(r",(?=\w+=)", spec))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--images", default="barbara")
    ap.add_argument("--out", type=Path, default=Path("phase2_ablation.tsv"))
    ap.add_argument("--priors", type=Path, default=Path(".cache/ablation_priors"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--phase2-seed", type=int, default=None, help="seed of Phase 2 alone (default: --seed)"
    )
    ap.add_argument("--kernels", type=Path, default=None)
    ap.add_argument("--luma", action="store_true", help="prior and Phase 2 on the luma only")
    ap.add_argument("--kernel-names", default=None, help="comma-separated, instead of the 5")
    ap.add_argument(
        "--prior-steps", type=int, default=None, help="train the prior this long (cpu recipe)"
    )
    ap.add_argument(
        "--scale", type=int, default=4, help="SR factor (HR crop 128·s, so LR stays 128²)"
    )
    ap.add_argument("--align", action="store_true", help="bicubic-aligned kernels")
    args = ap.parse_args()
    s = args.scale
    phase2_seed = args.seed if args.phase2_seed is None else args.phase2_seed
    args.priors.mkdir(parents=True, exist_ok=True)
    if args.kernels is not None:
        args.kernels.mkdir(parents=True, exist_ok=True)
    kernels = _kernels(args.kernel_names, s)
    if args.align:
        kernels = {name: align_kernel(k, s) for name, k in kernels.items()}
    variants = [_variant(spec) for spec in args.variants]
    for image in args.images.split(","):
        hr = bench.load_hr(hr_path(image), 128 * s, s, None)
        for kname, k in kernels.items():
            lr = degrade(hr, k, s, "reflect")
            src = _luma(lr) if args.luma else lr
            tag = "_y" if args.luma else ""
            if s != 4:
                tag += f"_x{s}"
            if args.prior_steps is not None:
                tag += f"_steps{args.prior_steps}"
            if args.align:
                tag += "_aligned"
            cached = args.priors / f"{image}_{kname}_{args.seed}{tag}.pt"
            prior = cached_prior(cached, src, args.seed, args.prior_steps)
            for name, overrides in variants:
                name = f"{name}@y" if args.luma else name
                if args.prior_steps is not None:
                    name = f"{name}@prior={args.prior_steps}"
                if s != 4:
                    name = f"{name}@x{s}"
                if phase2_seed != args.seed:
                    name = f"{name}@phase2_seed={phase2_seed}"
                if args.align:
                    name = f"{name}@aligned"
                cfg = recon_config("cpu", **overrides)
                # with --luma the final step runs below, on the RGB image
                run_cfg = (
                    recon_config("cpu", **dict(overrides, final="backproject"))
                    if args.luma
                    else cfg
                )
                t0 = time.perf_counter()
                res = Reconstructor(s, run_cfg).run(
                    src, prior, generator=torch.Generator().manual_seed(phase2_seed)
                )
                sr = res.hr
                if args.luma:
                    eps, tv_weight = cfg.final_weights(s)
                    sr = tv_refine(
                        lr, res.kernel, s, tv_weight, cfg.final_iters, eps=eps, step=cfg.final_lr
                    )
                seconds = time.perf_counter() - t0
                gain = psnr_y(sr, hr) - psnr_y(bicubic_upsample(lr, s).clamp(0, 1), hr)
                ncc = kernel_ncc(res.kernel.double(), k.double())
                if args.kernels is not None:
                    stem = f"{image}__{kname}__{name.replace('/', '_')}"
                    np.save(args.kernels / f"{stem}.npy", res.kernel.double().numpy())
                line = f"{name}\t{image}\t{kname}\t{gain:+.2f}\t{ncc:.3f}\t{seconds:.0f}"
                emit_row(line, args.out)


def config_digest(*configs: object) -> str:
    """8 hex digits of the configs' reprs: cache names change when a preset does."""
    return hashlib.sha256(repr(configs).encode()).hexdigest()[:8]


def cached_prior(path: Path, lr: torch.Tensor, seed: int, steps: int | None = None) -> PatchPrior:
    """The prior saved at ``path`` (its stem suffixed with the recipe's
    :func:`config_digest`), else one trained on ``lr`` with the cpu recipe (``steps``
    instead of its step count when given), seeded ``seed``, and saved there (its folder
    created)."""
    cfg = prior_config("cpu", channels=lr.shape[1], steps=steps)
    path = path.with_name(f"{path.stem}_{config_digest(cfg)}{path.suffix}")
    if path.exists():
        return PatchPrior.load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    prior = PatchPrior(cfg, generator=g)
    prior.fit(lr, generator=g, progress=False)
    prior.save(path)
    return prior


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """(1, 3, h, w) in [0, 1] -> (1, 1, h, w) BT.601 luma in [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True)


if __name__ == "__main__":
    main()
