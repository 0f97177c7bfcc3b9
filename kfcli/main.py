"""The ``kf`` command line. It only parses arguments and calls the kfops library.

Every user error ends with one line on stderr (``kf: error: ...``) and the exit code of
its :class:`kfops.errors.KfopsError` class; outputs are written atomically, so a failed
or interrupted command leaves no partial file.
"""

from __future__ import annotations

import os
import sys
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
        from kfops.errors import KfopsError

        try:
            return fn(*args, **kwargs)
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

    return wrapper


def _device(name: str):
    import torch

    from kfops.errors import KfopsError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise KfopsError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def _kernel(spec: str):
    from kfops.kernels import kernel_from_spec

    return kernel_from_spec(spec)


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
    "gauss:SX,SY,THETA[:K], shake:SEED[:K], l_shape[:K], empty_square[:K], "
    "filled_square[:K].",
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
    k = _kernel(kernel_spec).to(device=dev, dtype=torch.float32)
    return data, k, dev


@cli.command()
@INPUT
@KERNEL
@SCALE
@OUT
@PADDING
@DEVICE
@QUIET
@guarded
def degrade(
    image: Path, kernel_spec: str, scale: int, out: Path, padding: str, device: str, quiet: bool
) -> None:
    """Blur IMAGE with a kernel and subsample it by --scale: LR = (HR ⊛ k)↓s."""
    import torch

    import kfops
    from kfops.io import save_image

    data, k, dev = _prepare(image, kernel_spec, scale, out, device)
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
    help="CG iterations of the pseudo-inverse.",
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
    quiet: bool,
) -> None:
    """Non-blind SR of IMAGE with a known kernel (back-projection with A†)."""
    import kfops
    from kfops.io import save_image

    data, k, dev = _prepare(image, kernel_spec, scale, out, device)
    sr = kfops.backproject(data.pixels.to(dev), k, scale, padding, max_iter=iters)
    alpha = None
    if data.alpha is not None:
        alpha = kfops.bicubic_upsample(data.alpha, scale).clamp(0, 1)
    save_image(sr, out, alpha=alpha, bits=data.bits)
    if not quiet:
        click.echo(f"{image} -> {out} ({sr.shape[-1]}x{sr.shape[-2]})")


from kfcli.bench_cmd import bench  # noqa: E402

cli.add_command(bench)


def main() -> None:
    cli(prog_name="kf")


if __name__ == "__main__":
    main()
