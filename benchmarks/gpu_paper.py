"""The ``paper`` preset on a GPU: what each phase costs, and Phase 2 at full scale.

    python -m benchmarks.gpu_paper --pack zebra/levin_k2 --cases cases.pt   # where the data is
    python -m benchmarks.gpu_paper --cases cases.pt --prior-seconds 60 --phase2-seconds 200

``--pack`` saves the LR image, HR image and true kernel of development cases (``IMAGE/KERNEL``,
×4, LR 128², as in :func:`benchmarks.phase2_ablation.dev_case`) to one file, so that the GPU
machine needs no data folder. Then, per case, on ``--device``:

1. Phase 1 with the paper's network and learning rate: a probe of ``--probe`` steps gives
   seconds per step and the extrapolated time of the published step count; then the prior
   is trained for about ``--prior-seconds`` (the step count cut to fit, the cosine schedule
   over those steps).
2. Phase 2 with the ``paper`` preset as it stands (every t from T_nd, 100 iterations at the
   first t and 20 after, the A.3 U-Net on the whole HR image), every iteration timed,
   stopped at ``--phase2-seconds`` if it has not finished; the extrapolated full time.
3. The ``cpu`` preset on the same device and LR image, for comparison.

Each is scored by Y-PSNR gain over bicubic (5% border) and kernel NCC, its kernel also
through the cpu preset's final step (TV refinement), beside the true kernel through that
step. One JSON object per line is appended to ``--out`` as each result comes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from kfops import bicubic_upsample, tv_refine
from kfops.diffusion import PatchPrior
from kfops.metrics import kernel_ncc, psnr_y
from kfops.presets import prior_config, recon_config
from kfops.reconstructor import Reconstructor


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _emit(row: dict, out: Path) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    with out.open("a") as f:
        f.write(line + "\n")


def train_prior(lr: torch.Tensor, preset: str, probe: int, seconds: float, dev, seed: int):
    """(prior, row): the ``preset`` prior timed over ``probe`` steps, then trained for about
    ``seconds`` (at most its preset's step count)."""
    cfg = prior_config(preset, channels=lr.shape[1])
    full_steps = cfg.steps
    probe_prior = PatchPrior(cfg).to(dev)
    probe_prior.fit(lr.to(dev), steps=10, progress=False)  # warm-up (cuDNN, allocator)
    _sync(dev)
    t0 = time.perf_counter()
    probe_prior.fit(lr.to(dev), steps=probe, progress=False)
    _sync(dev)
    per_step = (time.perf_counter() - t0) / probe
    steps = max(probe, min(full_steps, int(seconds / per_step)))
    prior = PatchPrior(cfg).to(dev)
    t0 = time.perf_counter()
    prior.fit(
        lr.to(dev), steps=steps, generator=torch.Generator().manual_seed(seed), progress=False
    )
    _sync(dev)
    row = {
        "stage": f"prior_{preset}",
        "seconds_per_step": per_step,
        "preset_steps": full_steps,
        "preset_hours": per_step * full_steps / 3600,
        "steps": steps,
        "seconds": time.perf_counter() - t0,
    }
    return prior, row


def phase2(lr, hr, k, prior, preset: str, seconds: float, dev, seed: int, overrides: dict):
    """The row of one Phase-2 run of ``preset`` (stopped after ``seconds``)."""
    cfg = recon_config(preset, **overrides)
    s = hr.shape[-1] // lr.shape[-1]
    stamps: list[float] = []

    def progress(done, total, loss):
        stamps.append(time.perf_counter())

    _sync(dev)
    t0 = time.perf_counter()
    res = Reconstructor(s, cfg).run(
        lr.to(dev),
        prior,
        generator=torch.Generator().manual_seed(seed),
        progress=progress,
        deadline=time.monotonic() + seconds,
    )
    _sync(dev)
    wall = time.perf_counter() - t0
    total = cfg.total_iterations()
    first = min(cfg.iters_first, len(stamps))
    row = {
        "stage": f"phase2_{preset}",
        "overrides": overrides,
        "iterations": len(stamps),
        "preset_iterations": total,
        "finished": len(stamps) >= total,
        "seconds": wall,
        "final_seconds": res.final_seconds,
    }
    if len(stamps) > first + 1:
        first_rate = (stamps[first - 1] - t0) / first
        later_rate = (stamps[-1] - stamps[first - 1]) / (len(stamps) - first)
        row["seconds_per_iteration_first_t"] = first_rate
        row["seconds_per_iteration_later"] = later_rate
        row["preset_seconds"] = first_rate * cfg.iters_first + later_rate * (
            total - cfg.iters_first
        )
    base = psnr_y(bicubic_upsample(lr, s).clamp(0, 1), hr)
    kernel = res.kernel.detach().float().cpu()
    row["gain_db"] = psnr_y(res.hr.detach().float().cpu().clamp(0, 1), hr) - base
    row["ncc"] = kernel_ncc(kernel.double(), k.double())
    row["fallback"] = res.fallback
    cpu_cfg = recon_config("cpu")
    eps, weight = cpu_cfg.final_weights(s)
    sr = tv_refine(
        lr.to(dev), kernel.to(dev), s, weight, cpu_cfg.final_iters, eps=eps, step=cpu_cfg.final_lr
    )
    row["kernel_through_tv_gain_db"] = psnr_y(sr.cpu(), hr) - base
    return row, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", nargs="*", help="IMAGE/KERNEL cases to save to --cases")
    ap.add_argument("--cases", type=Path, required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--probe", type=int, default=300, help="timed prior steps")
    ap.add_argument("--prior-seconds", type=float, default=60.0)
    ap.add_argument("--phase2-seconds", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("gpu_paper.jsonl"))
    ap.add_argument("--save", type=Path, default=None, help="folder for the paper run's kernel")
    ap.add_argument(
        "--smoke", action="store_true", help="the smoke presets (checks the script, no result)"
    )
    args = ap.parse_args()
    if args.pack:
        from .phase2_ablation import dev_case

        cases = []
        for case in args.pack:
            image, kname, k, hr, lr = dev_case(case, 4)
            cases.append({"image": image, "kernel": kname, "k": k, "hr": hr, "lr": lr})
        torch.save(cases, args.cases)
        return
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"
    env = {"stage": "env", "device": str(dev), "torch": torch.__version__}
    if dev.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    import kfops

    env["extension"] = kfops.HAS_EXT
    _emit(env, args.out)
    big, small = ("smoke", "smoke") if args.smoke else ("paper", "cpu")
    for case in torch.load(args.cases):
        lr, hr, k = case["lr"], case["hr"], case["k"]
        tag = {"image": case["image"], "kernel": case["kernel"]}
        s = hr.shape[-1] // lr.shape[-1]
        cpu_cfg = recon_config("cpu")
        eps, weight = cpu_cfg.final_weights(s)
        base = psnr_y(bicubic_upsample(lr, s).clamp(0, 1), hr)
        sr = tv_refine(
            lr.to(dev),
            k.float().to(dev),
            s,
            weight,
            cpu_cfg.final_iters,
            eps=eps,
            step=cpu_cfg.final_lr,
        ).cpu()
        row = {**tag, "stage": "true_kernel_through_tv", "gain_db": psnr_y(sr, hr) - base}
        _emit(row, args.out)
        prior, row = train_prior(lr, big, args.probe, args.prior_seconds, dev, args.seed)
        _emit({**tag, **row}, args.out)
        row, res = phase2(lr, hr, k, prior, big, args.phase2_seconds, dev, args.seed, {})
        _emit({**tag, **row}, args.out)
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            stem = f"{case['image']}__{case['kernel']}__{big}"
            torch.save({"kernel": res.kernel.cpu(), "hr": res.hr.cpu()}, args.save / f"{stem}.pt")
        del prior, res
        prior, row = train_prior(lr, small, min(args.probe, 100), 1e9, dev, args.seed)
        _emit({**tag, **row}, args.out)
        row, _ = phase2(lr, hr, k, prior, small, 1e9, dev, args.seed, {})
        _emit({**tag, **row}, args.out)


if __name__ == "__main__":
    main()
