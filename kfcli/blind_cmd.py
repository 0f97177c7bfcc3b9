"""The ``kf`` commands of blind super-resolution: ``train-prior`` (Phase 1 alone),
``upscale`` (the kernel and the HR image) and ``kernel`` (the kernel only), with the prior
cache they share.

torch and kfops are imported inside the commands, so ``kf --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from kfcli.common import (
    DEVICE,
    INPUT,
    OUT,
    QUIET,
    SCALE,
    check_out_file,
    guarded,
    out_file,
    resolve_device,
)

NOISE_NOTE = 0.0125  # noise level from which kf upscale mentions it (cpu preset: TV weight × 1.25)
JPEG_NOTE = 0.00625  # JPEG step from which it mentions that (cpu preset: +0.25; quality ≲ 94)


@click.command(name="train-prior")
@INPUT
@out_file("Output prior checkpoint (.pt).")
@click.option(
    "--preset",
    type=click.Choice(["cpu", "paper"]),
    default=None,
    help="Training recipe (default: cpu on CPU, paper on CUDA).",
)
@click.option(
    "--steps",
    type=click.IntRange(1, 10_000_000),
    default=None,
    help="Override the preset's number of training steps.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@DEVICE
@QUIET
@guarded
def train_prior(
    image: Path,
    out: Path,
    preset: str | None,
    steps: int | None,
    seed: int,
    device: str,
    quiet: bool,
) -> None:
    """Train the patch-diffusion prior (Phase 1) on one LR IMAGE."""
    import time

    import torch

    from kfops.diffusion import PatchPrior
    from kfops.io import load_image
    from kfops.presets import prior_config

    check_out_file(out, (".pt",), "the prior is saved as a .pt file")
    data = load_image(image)
    dev = resolve_device(device)
    preset = preset or ("paper" if dev.type == "cuda" else "cpu")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)  # the weights' initialisation, then the crops
    cfg = prior_config(preset, channels=data.pixels.shape[1], steps=steps)
    prior = PatchPrior(cfg, generator=g).to(dev)
    t0 = time.perf_counter()
    losses = prior.fit(
        data.pixels,
        generator=g,
        progress=not quiet,
        checkpoint=out.with_name(out.name + ".partial"),
    )
    if prior.resumed_from and not quiet:
        click.echo(f"resumed training from step {prior.resumed_from}", err=True)
    prior.save(out)
    if not quiet:
        tail = losses[-100:]
        click.echo(
            f"{out}: {prior.config.steps} steps ({preset}) in "
            f"{time.perf_counter() - t0:.0f} s, final loss {sum(tail) / len(tail):.4f}"
        )


def _prior_for(
    pixels, preset: str, dev, seed: int, quiet: bool, budget_s: float | None, phases: int = 2
):
    """A trained prior for this image and recipe: from the cache when one exists
    ($KFOPS_CACHE or ~/.cache/kfops), else trained now (and cached)."""
    import hashlib
    import json
    import time
    from dataclasses import asdict

    import torch

    from kfops.diffusion import PatchPrior, image_hash
    from kfops.errors import KfopsError
    from kfops.presets import prior_config

    cfg = prior_config(preset, channels=pixels.shape[1])
    if budget_s is not None:  # measure a few steps, then fit the step count to the budget
        probe = PatchPrior(cfg).to(dev)
        t0 = time.perf_counter()
        probe.fit(pixels.to(dev), steps=5, progress=False)
        per_step = (time.perf_counter() - t0) / 5
        cfg.steps = max(50, min(cfg.steps, int(budget_s / per_step)))
    key = hashlib.sha256(
        (image_hash(pixels) + json.dumps(asdict(cfg), sort_keys=True) + str(seed)).encode()
    ).hexdigest()[:24]
    cache = Path(os.environ.get("KFOPS_CACHE", Path.home() / ".cache" / "kfops")) / "priors"
    path = cache / f"{key}.pt"
    if path.exists():
        try:
            return PatchPrior.load(path).to(dev), True
        except Exception:
            pass
    checkpoint = None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        checkpoint = cache / f"{key}.partial.pt"
    except OSError:
        pass
    g = torch.Generator().manual_seed(seed)  # the weights' initialisation, then the crops
    prior = PatchPrior(cfg, generator=g).to(dev)
    prior.fit(
        pixels.to(dev),
        generator=g,
        progress=not quiet,
        checkpoint=checkpoint,
    )
    if prior.resumed_from and not quiet:
        click.echo(
            f"phase 1/{phases}: resumed prior training from step {prior.resumed_from}", err=True
        )
    try:
        prior.save(path)
    except (OSError, KfopsError):
        pass
    return prior, False


def _run_blind(
    image: Path,
    scale: int,
    preset: str | None,
    device: str,
    seed: int,
    time_budget: float | None,
    quiet: bool,
    kernel_only: bool = False,
    restarts: int = 1,
):
    import time

    import torch

    from kfops.errors import ImageError
    from kfops.io import load_image
    from kfops.jpeg import quant_step
    from kfops.presets import recon_config
    from kfops.reconstructor import Reconstructor

    if scale not in (2, 3, 4):
        from kfops.errors import ScaleError

        raise ScaleError(f"--scale must be 2, 3 or 4 for blind SR, got {scale}")
    data = load_image(image)
    if min(data.pixels.shape[-2:]) < 16:
        raise ImageError(f"{image}: image is too small for blind SR (minimum 16×16 pixels)")
    dev = resolve_device(device)
    preset = preset or ("paper" if dev.type == "cuda" else "cpu")
    _check_blind_memory(data.pixels, scale, preset, dev)
    if preset == "paper" and time_budget is None and not quiet:
        from kfops.presets import prior_config

        steps = prior_config(preset).steps
        click.echo(
            f"preset paper (the published recipe): a {steps}-step prior, then Phase 2 on the "
            "whole image; on one H200 the recipe took about 2 h per image. For a shorter run: "
            "--time-budget SECONDS or --preset cpu",
            err=True,
        )
    torch.manual_seed(seed)
    ctx = click.get_current_context(silent=True)
    start = ctx.meta.get("kf_started", time.monotonic()) if ctx else time.monotonic()
    cfg = recon_config(preset, restarts=restarts)
    if kernel_only and cfg.final == "tv":  # the SR image is not kept: skip its refinement
        cfg.final = "backproject"
    phases = 3 if cfg.final == "tv" else 2
    prior, cached = _prior_for(
        data.pixels,
        preset,
        dev,
        seed,
        quiet,
        None if time_budget is None else 0.35 * time_budget,
        phases,
    )
    if not quiet and cached:
        click.echo(f"phase 1/{phases}: reusing the cached prior for this image", err=True)
    bars: dict = {}

    def open_bar(name: str, total: int, desc: str):
        if quiet:
            return None
        if name not in bars:
            from kfops.progress import progress_bar

            for other in bars.values():
                other.close()
            bars[name] = progress_bar(total, desc)
        return bars[name]

    def progress(done, total, loss):
        bar = open_bar("phase2", cfg.total_iterations(), f"phase 2/{phases} reconstruct")
        if bar is not None:
            bar.update(1)
            if done % 10 == 0:
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def final_progress(done, total):
        bar = open_bar("final", total, f"phase 3/{phases} refine the whole image")
        if bar is not None:
            bar.update(done - bar.n)

    deadline = None if time_budget is None else start + 0.95 * time_budget
    jpeg_step = 0.0 if data.jpeg_table is None else quant_step(data.jpeg_table)
    result = Reconstructor(scale, cfg).run(
        data.pixels.to(dev),
        prior,
        generator=torch.Generator().manual_seed(seed),
        progress=progress,
        deadline=deadline,
        final_progress=final_progress,
        jpeg_step=jpeg_step,
    )
    for bar in bars.values():
        bar.close()
    return data, result


def _check_blind_memory(pixels, scale: int, preset: str, dev) -> None:
    from kfops.memory import check_memory, estimate_bytes
    from kfops.presets import prior_config, recon_config

    c, h, w = pixels.shape[-3:]
    cfg = recon_config(preset)
    needed = estimate_bytes((h, w), c, scale, cfg, prior_config(preset, channels=c))
    hint = "crop or downsize the image"
    if preset == "paper" and dev.type == "cpu":
        hint = "use --preset cpu (it estimates the kernel on a crop), or " + hint
    check_memory(needed, dev, f"{w}x{h} at x{scale} with the {preset} preset", hint)


KERNEL_OUT = click.option(
    "--save-kernel",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the estimated kernel (.npy or .png).",
)
BLIND = [
    click.option(
        "--preset",
        type=click.Choice(["cpu", "paper"]),
        default=None,
        help="Recipe (default: cpu on CPU, paper on CUDA).",
    ),
    DEVICE,
    click.option("--seed", type=int, default=0, show_default=True),
    click.option(
        "--restarts",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Run Phase 2 this many times from different starts and keep the widest of "
        "their kernels: for a large blur, whose estimates lean towards too small kernels; no "
        "help for a small blur, and worse for an image downscaled without blur, whose "
        "estimates are too wide. Each run adds the Phase-2 time.",
    ),
    click.option(
        "--time-budget",
        type=click.FloatRange(min=10),
        default=None,
        help="Seconds: scale the step counts so the run finishes in time.",
    ),
    QUIET,
]


def _blind_options(fn):
    for opt in reversed(BLIND):
        fn = opt(fn)
    return fn


def _check_kernel_path(path: Path | None) -> None:
    if path is not None:
        check_out_file(path, (".npy", ".png"), "kernels are saved as .npy or .png")


@click.command()
@INPUT
@SCALE
@OUT
@KERNEL_OUT
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a PNG report: LR, bicubic, result, kernel, loss curve.",
)
@_blind_options
@guarded
def upscale(
    image: Path,
    scale: int,
    out: Path,
    save_kernel: Path | None,
    report: Path | None,
    preset: str | None,
    device: str,
    seed: int,
    restarts: int,
    time_budget: float | None,
    quiet: bool,
) -> None:
    """Blind super-resolution of IMAGE: estimate the kernel and the HR image together."""
    import kfops
    from kfops.io import check_output_path, save_image

    check_output_path(out)
    _check_kernel_path(save_kernel)
    if report is not None:
        check_out_file(report, (".png",), "the report is a .png file")
        check_output_path(report)
    data, result = _run_blind(
        image, scale, preset, device, seed, time_budget, quiet, restarts=restarts
    )
    alpha = None
    if data.alpha is not None:
        alpha = kfops.bicubic_upsample(data.alpha, scale).clamp(0, 1)
    save_image(result.hr, out, alpha=alpha, bits=data.bits)
    if save_kernel is not None:
        kfops.kernels.save_kernel(result.kernel, save_kernel, magnify=8)
    if report is not None:
        from kfops.report import write_report

        write_report(
            report,
            data.pixels,
            result.hr,
            result.kernel,
            result.history,
            scale,
            estimates=result.estimates,
            fallback=result.fallback,
            mixed=result.mixed,
        )
    if not quiet:
        final = result.final_seconds
        times = f"phase 2 {result.seconds - final:.0f} s"
        if final > 0:  # the cpu preset's refinement of the whole image
            times += f", whole-image step {final:.{1 if final < 10 else 0}f} s"
        click.echo(f"{image} -> {out} ({result.hr.shape[-1]}x{result.hr.shape[-2]}), {times}")
        _echo_fallback(result)
        if result.noise >= NOISE_NOTE:
            click.echo(
                f"noise: σ ≈ {result.noise:.3f} of the full range, read off the image (fine "
                "texture reads as noise too); the final step smooths more to match"
            )
        if result.jpeg_step >= JPEG_NOTE:
            from kfops.jpeg import ijg_quality

            click.echo(
                f"JPEG input (quality ≈ {ijg_quality(data.jpeg_table)} on the IJG scale): "
                "the final step smooths more against its artefacts"
            )


@click.command(name="kernel")
@INPUT
@SCALE
@out_file("Kernel file (.npy or .png).")
@_blind_options
@guarded
def kernel_cmd(
    image: Path,
    scale: int,
    out: Path,
    preset: str | None,
    device: str,
    seed: int,
    restarts: int,
    time_budget: float | None,
    quiet: bool,
) -> None:
    """Estimate only the SR kernel of IMAGE."""
    import kfops

    _check_kernel_path(out)
    _, result = _run_blind(
        image, scale, preset, device, seed, time_budget, quiet, kernel_only=True, restarts=restarts
    )
    kfops.kernels.save_kernel(result.kernel, out, magnify=1 if out.suffix == ".npy" else 8)
    if not quiet:
        click.echo(f"{image} -> {out} kernel {tuple(result.kernel.shape)}")
        _echo_fallback(result, image=False)


def _echo_fallback(result, image: bool = True) -> None:
    """Say so when the kernel is the blur of an ordinary resize, not the estimate, or (where
    an ``image`` is written) when that image is the mean of the two kernels' images."""
    if result.fallback is not None:
        click.echo(
            f"kernel: the blur of an ordinary {result.fallback} downscale, which predicts "
            "held-out pixels of the image better than the estimate did (either the image was "
            "only resized or the estimate is poor)"
        )
    elif image and result.mixed is not None:
        click.echo(
            f"kernel: the estimate; the image is the mean of its reconstruction and that with "
            f"the blur of an ordinary {result.mixed} downscale, which together predict "
            "held-out pixels of the image better than either alone"
        )
