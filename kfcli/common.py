"""What every ``kf`` command shares: its error handling (:func:`guarded`: one stderr line
and the exit code of the error's class, SIGTERM treated as Ctrl-C), the device and kernel
arguments, the common options and the checks of scale and output paths.

torch and kfops are imported inside the functions, so ``kf --help`` stays fast.
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


def fail(message: str, code: int) -> None:
    """Print ``kf: error: MESSAGE`` on stderr and exit with ``code``."""
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
            fail(f"interrupted: {exc}{again}", exc.exit_code)
        except KfopsError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except MemoryError:
            fail("out of memory; try a smaller image or --device cuda", EXIT_INTERNAL)
        except click.exceptions.Exit:
            raise
        except Exception as exc:  # last resort: one line, traceback only on request
            if os.environ.get("KF_DEBUG") == "1":
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            fail(
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


def resolve_device(name: str):
    """The torch device of ``--device`` (auto: CUDA when available, else the CPU); asking
    for CUDA without one raises KfopsError."""
    import torch

    from kfops.errors import KfopsError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise KfopsError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def kernel_arg(spec: str, scale: int):
    """The kernel of a ``--kernel`` value: a file or a generator spec
    (:func:`kfops.kernels.kernel_from_spec`)."""
    from kfops.kernels import kernel_from_spec

    return kernel_from_spec(spec, scale=scale)


SCALE = click.option("-s", "--scale", type=int, required=True, help="Integer scale factor (1-8).")


def out_file(help_text: str):
    """The required ``-o/--out`` option of a command that writes one file."""
    return click.option(
        "-o",
        "--out",
        "out",
        type=click.Path(dir_okay=False, path_type=Path),
        required=True,
        help=help_text,
    )


OUT = out_file("Output image (.png, .jpg, .tif, ...).")
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


def check_scale(scale: int) -> int:
    """``scale`` if it is within 1-8, else ScaleError."""
    from kfops.errors import ScaleError

    if scale < 1 or scale > 8:
        raise ScaleError(f"--scale must be between 1 and 8, got {scale}")
    return scale


def check_out_file(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    """Raise OutputError unless ``path`` has one of ``suffixes`` and its folder exists."""
    from kfops.errors import OutputError

    if path.suffix.lower() not in suffixes:
        raise OutputError(f"{path}: {what}")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
