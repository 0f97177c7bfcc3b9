"""Exceptions raised by kfops for bad input.

Every error a user can cause derives from :class:`KfopsError` (a ``ValueError``), so the
CLI can print one clear line and exit with the code attached to the class.
"""

from __future__ import annotations


class KfopsError(ValueError):
    """Base class of user-facing errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class ShapeError(KfopsError):
    """A tensor has the wrong number of dimensions or incompatible sizes."""

    exit_code = 3


class ScaleError(KfopsError):
    """The scale factor is not an integer in the supported range."""

    exit_code = 4


class KernelError(KfopsError):
    """A blur kernel is unusable: not 2-D, non-finite, zero or negative sum, too large."""

    exit_code = 5


class ImageError(KfopsError):
    """An image file cannot be read, or is unusable for the method."""

    exit_code = 6


class OutputError(KfopsError):
    """An output path cannot be written (missing folder, read-only, unknown extension)."""

    exit_code = 7


class ResourceError(KfopsError):
    """The job would not fit in the memory available (estimated before starting)."""

    exit_code = 8


class DivergenceError(KfopsError):
    """Optimisation kept producing NaN/inf after restoring the last good state and
    lowering the learning rate."""

    exit_code = 9


class Interrupted(KfopsError):
    """SIGINT/SIGTERM stopped a run; ``checkpoint`` (or None) is where it can resume from."""

    exit_code = 130

    def __init__(self, message: str, checkpoint=None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
