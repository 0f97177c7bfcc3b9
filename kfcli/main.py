"""The ``kf`` command line. It only parses arguments and calls the kfops library.

Every user error ends with one line on stderr (``kf: error: ...``) and the exit code of
its :class:`kfops.errors.KfopsError` class; outputs are written atomically, so a failed
or interrupted command leaves no partial file.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import click

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int) -> None:
    click.echo(f"kf: error: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable) -> Callable:
    """Turn library errors into one stderr line and a distinct exit code."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        from kfops.errors import Interrupted, KfopsError

        previous = _terminate_as_interrupt()
        try:
            return fn(*args, **kwargs)
        except Interrupted as exc:
            again = " (run the same command again to resume)" if exc.checkpoint else ""
            _fail(f"interrupted: {exc}{again}", exc.exit_code)
        except KfopsError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)
        except MemoryError:
            _fail("out of memory; try a smaller image or --device cuda", EXIT_INTERNAL)
        except click.exceptions.Exit:
            raise
        except Exception as exc:  # last resort: one line, traceback only on request
            if os.environ.get("KF_DEBUG") == "1":
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            _fail(
                f"internal error: {type(exc).__name__}: {first} (KF_DEBUG=1 shows the traceback)",
                EXIT_INTERNAL,
            )
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _terminate_as_interrupt():
    """Treat SIGTERM like Ctrl-C for the command's duration (so temporary files are
    removed and Phase 1 checkpoints); returns the previous handler, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _device(name: str):
    import torch

    from kfops.errors import KfopsError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise KfopsError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def _kernel(spec: str, scale: int):
    from kfops.kernels import kernel_from_spec

    return kernel_from_spec(spec, scale=scale)


SCALE = click.option("-s", "--scale", type=int, required=True, help="Integer scale factor (1-8).")
OUT = click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output image (.png, .jpg, .tif, ...).",
)
KERNEL = click.option(
    "--kernel",
    "kernel_spec",
    required=True,
    help="Kernel file (.npy, .png, .mat) or a generator: box:K, gauss:SIGMA[:K], "
    "gauss:SX,SY,THETA[:K], disk:RADIUS[:K] (defocus), motion:LENGTH,THETA[:K] (linear "
    "motion), shake:SEED[:K], l_shape[:K], empty_square[:K], "
    "filled_square[:K], or bicubic, bilinear, area: the blur of an ordinary downscale "
    "by the scale factor.",
)
PADDING = click.option(
    "--padding",
    type=click.Choice(["reflect", "replicate", "circular", "zeros"]),
    default="reflect",
    show_default=True,
    help="Boundary handling of the blur.",
)
DEVICE = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
QUIET = click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
INPUT = click.argument("image", type=click.Path(path_type=Path))


def _check_scale(scale: int) -> int:
    from kfops.errors import ScaleError

    if scale < 1 or scale > 8:
        raise ScaleError(f"--scale must be between 1 and 8, got {scale}")
    return scale


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kfops")
def cli() -> None:
    """kfops: blind super-resolution with kernel estimation (KernelFusion)."""


def _prepare(image: Path, kernel_spec: str, scale: int, out: Path, device: str):
    """Validate the arguments common to the kernel commands, then load the inputs:
    returns (ImageData, kernel on the device, device). Checks the output path first so a
    bad output fails before any work."""
    import torch

    from kfops.io import check_output_path, load_image

    _check_scale(scale)
    check_output_path(out)
    data = load_image(image)
    dev = _device(device)
    k = _kernel(kernel_spec, scale).to(device=dev, dtype=torch.float32)
    h, w = data.pixels.shape[-2:]
    if k.shape[-2] > h or k.shape[-1] > w:
        from kfops.errors import KernelError

        raise KernelError(
            f"kernel {kernel_spec} ({k.shape[-1]}x{k.shape[-2]}) is larger than the image "
            f"{image} ({w}x{h})"
        )
    return data, k, dev


@cli.command()
@INPUT
@KERNEL
@SCALE
@OUT
@PADDING
@click.option(
    "--align",
    is_flag=True,
    help="First move the kernel's centre of mass to where the output stays bicubic-aligned "
    "(kfops.kernels.align_kernel): the LR image then lies on the grid that blind SR "
    "assumes. Without it the kernel is used exactly as given.",
)
@DEVICE
@QUIET
@guarded
def degrade(
    image: Path,
    kernel_spec: str,
    scale: int,
    out: Path,
    padding: str,
    align: bool,
    device: str,
    quiet: bool,
) -> None:
    """Blur IMAGE with a kernel and subsample it by --scale: LR = (HR ⊛ k)↓s."""
    import torch

    import kfops
    from kfops.io import save_image
    from kfops.kernels import align_kernel, alignment_offset

    data, k, dev = _prepare(image, kernel_spec, scale, out, device)
    off = alignment_offset(k, scale)
    if align:
        k = align_kernel(k, scale)
    elif max(map(abs, off)) >= 0.05 and not quiet:
        click.echo(
            f"note: the kernel's centre is ({off[0]:+.2f}, {off[1]:+.2f}) px (rows, cols) "
            "off the bicubic-aligned position, so a blind SR of the output comes out "
            "shifted by that against IMAGE; --align moves the kernel there",
            err=True,
        )
    hr = data.pixels.to(dev)
    if min(hr.shape[-2:]) < scale:
        raise kfops.ImageError(
            f"{image}: image ({hr.shape[-1]}x{hr.shape[-2]}) is smaller than the scale "
            f"factor {scale}"
        )
    lr = kfops.degrade(hr, k, scale, padding)
    alpha = None
    if data.alpha is not None:
        h, w = lr.shape[-2] * scale, lr.shape[-1] * scale
        alpha = torch.nn.functional.avg_pool2d(data.alpha[..., :h, :w], scale)
    save_image(lr, out, alpha=alpha, bits=data.bits)
    if not quiet:
        click.echo(
            f"{image} ({hr.shape[-1]}x{hr.shape[-2]}) -> {out} "
            f"({lr.shape[-1]}x{lr.shape[-2]}), kernel {tuple(k.shape)}"
        )


@cli.command()
@INPUT
@KERNEL
@SCALE
@OUT
@PADDING
@DEVICE
@click.option(
    "--iters",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="CG iterations of the pseudo-inverse (with --refine-steps 0).",
)
@click.option(
    "--refine-steps",
    type=click.IntRange(0, 10000),
    default=100,
    show_default=True,
    help="Adam steps refining the back-projection under a TV prior, as the final step of "
    "kf upscale; 0 = the plain back-projection.",
)
@QUIET
@guarded
def backproject(
    image: Path,
    kernel_spec: str,
    scale: int,
    out: Path,
    padding: str,
    device: str,
    iters: int,
    refine_steps: int,
    quiet: bool,
) -> None:
    """Non-blind SR of IMAGE with a known kernel: back-projection with A†, refined under a
    Charbonnier TV prior (kfops.tv_refine, the weights of kf upscale's final step)."""
    import kfops
    from kfops.io import save_image
    from kfops.reconstructor import ReconConfig

    data, k, dev = _prepare(image, kernel_spec, scale, out, device)
    lr = data.pixels.to(dev)
    if refine_steps:
        cfg = ReconConfig()
        eps, weight = cfg.final_weights(scale)
        sr = kfops.tv_refine(
            lr, k, scale, weight, refine_steps, eps=eps, step=cfg.final_lr, padding=padding
        )
    else:
        sr = kfops.backproject(lr, k, scale, padding, max_iter=iters)
    alpha = None
    if data.alpha is not None:
        alpha = kfops.bicubic_upsample(data.alpha, scale).clamp(0, 1)
    save_image(sr, out, alpha=alpha, bits=data.bits)
    if not quiet:
        click.echo(f"{image} -> {out} ({sr.shape[-1]}x{sr.shape[-2]})")


@cli.command(name="train-prior")
@INPUT
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output prior checkpoint (.pt).",
)
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

    _check_out_file(out, (".pt",), "the prior is saved as a .pt file")
    data = load_image(image)
    dev = _device(device)
    preset = preset or ("paper" if dev.type == "cuda" else "cpu")
    torch.manual_seed(seed)
    prior = PatchPrior(prior_config(preset, channels=data.pixels.shape[1], steps=steps)).to(dev)
    t0 = time.perf_counter()
    losses = prior.fit(
        data.pixels,
        generator=torch.Generator().manual_seed(seed),
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
    prior = PatchPrior(cfg).to(dev)
    prior.fit(
        pixels.to(dev),
        generator=torch.Generator().manual_seed(seed),
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
    dev = _device(device)
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
    start = time.monotonic()
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
            from tqdm.auto import tqdm

            for other in bars.values():
                other.close()
            bars[name] = tqdm(total=total, desc=desc, unit="it", dynamic_ncols=True, leave=False)
        return bars[name]

    def progress(done, total, loss):
        bar = open_bar("phase2", cfg.total_iterations(), f"phase 2/{phases} reconstruct")
        if bar is not None:
            bar.update(1)
            if done % 10 == 0:
                bar.set_postfix(loss=f"{loss:.4g}")

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


def _check_out_file(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    """Raise OutputError unless ``path`` has one of ``suffixes`` and its folder exists."""
    from kfops.errors import OutputError

    if path.suffix.lower() not in suffixes:
        raise OutputError(f"{path}: {what}")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")


def _check_kernel_path(path: Path | None) -> None:
    if path is not None:
        _check_out_file(path, (".npy", ".png"), "kernels are saved as .npy or .png")


@cli.command()
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
        _check_out_file(report, (".png",), "the report is a .png file")
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


@cli.command(name="kernel")
@INPUT
@SCALE
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Kernel file (.npy or .png).",
)
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


NOISE_NOTE = 0.0125  # noise level from which kf upscale mentions it (cpu preset: TV weight × 1.25)
JPEG_NOTE = 0.00625  # JPEG step from which it mentions that (cpu preset: +0.25; quality ≲ 94)


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


from kfcli.bench_cmd import bench  # noqa: E402

cli.add_command(bench)


def main() -> None:
    """Entry point: click's own usage errors also become one ``kf: error:`` line."""
    try:
        code = cli.main(prog_name="kf", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        _fail(exc.format_message().replace("\n", " ") + hint, exc.exit_code)
    else:
        sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
