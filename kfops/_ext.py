"""Loads the compiled operator library ``kfops._C`` once (after torch).

``HAS_EXT`` tells whether the C++ ops are registered under ``torch.ops.kfops``; when they
are not, kfops runs on its pure-PyTorch reference and :func:`warn_fallback` warns once.
``KFOPS_EXT_LIBRARY`` names another build of the library to load instead (the CI's
AddressSanitizer build).
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import torch

HAS_EXT = False
LOAD_ERROR: str | None = None


def _load() -> None:
    global HAS_EXT, LOAD_ERROR
    if os.environ.get("KFOPS_DISABLE_EXT") == "1":
        LOAD_ERROR = "disabled by KFOPS_DISABLE_EXT=1"
        return
    origin = os.environ.get("KFOPS_EXT_LIBRARY")  # another build, e.g. with sanitizers
    if not origin:
        spec = importlib.util.find_spec("kfops._C")
        if spec is None or spec.origin is None:
            LOAD_ERROR = "the extension kfops._C is not built"
            return
        origin = spec.origin
    try:
        torch.ops.load_library(origin)
    except OSError as exc:  # a stale or foreign build
        LOAD_ERROR = f"could not load {origin}: {exc}"
        return
    HAS_EXT = hasattr(torch.ops.kfops, "degrade")


_load()
_warned = False


def warn_fallback() -> None:
    """Warn (once per process) that the pure-PyTorch reference is in use."""
    global _warned
    if not HAS_EXT and not _warned:
        _warned = True
        warnings.warn(
            f"kfops: {LOAD_ERROR}; using the slower pure-PyTorch reference "
            "(it builds with a C++ compiler: `pip install --no-build-isolation -e .`)",
            RuntimeWarning,
            stacklevel=3,
        )
