"""The ``kf`` command line. It only parses arguments and calls the kfops library.

Every user error ends with one line on stderr (``kf: error: ...``) and the exit code of
its :class:`kfops.errors.KfopsError` class; outputs are written atomically, so a failed
or interrupted command leaves no partial file.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from kfcli.bench_cmd import bench
from kfcli.blind_cmd import kernel_cmd, train_prior, upscale
from kfcli.common import (
    DEVICE,
    EXIT_INTERRUPTED,
    INPUT,
    KERNEL,
    OUT,
    PADDING,
    QUIET,
    SCALE,
    check_scale,
    fail,
    guarded,
    kernel_arg,
    resolve_device,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kfops")
def cli() -> None:
    """kfops: blind super-resolution with kernel estimation (KernelFusion)."""
    # before torch is imported: --time-budget counts from here
    click.get_current_context().meta["kf_started"] = time.monotonic()


def _prepare(image: Path, kernel_spec: str, scale: int, out: Path, device: str):
    """Validate the arguments common to the kernel commands, then load the inputs:
    returns (ImageData, kernel on the device, device). Checks the output path first so a
    bad output fails before any work."""
    import torch

    from kfops.io import check_output_path, load_image

    check_scale(scale)
    check_output_path(out)
    data = load_image(image)
    dev = resolve_device(device)
    k = kernel_arg(kernel_spec, scale).to(device=dev, dtype=torch.float32)
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


for command in (train_prior, upscale, kernel_cmd, bench):
    cli.add_command(command)


def main() -> None:
    """Entry point: click's own usage errors also become one ``kf: error:`` line."""
    try:
        code = cli.main(prog_name="kf", standalone_mode=False)
    except click.exceptions.Abort:
        fail("interrupted", EXIT_INTERRUPTED)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        fail(exc.format_message().replace("\n", " ") + hint, exc.exit_code)
    else:
        sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
