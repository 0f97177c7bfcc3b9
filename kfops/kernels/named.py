"""Named kernel sets (the development data's Levin kernels, the stress shapes, fixed
Gaussians) and the command line's kernel specs."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from kfops.errors import KernelError

from .checks import _pos_int
from .files import load_kernel
from .generators import (
    RESIZE_METHODS,
    anisotropic_gaussian,
    box,
    camera_shake,
    disk,
    empty_square,
    filled_square,
    gaussian,
    l_shape,
    linear_motion,
    resize_filter,
)
from .resampling import resize_kernel

_GAUSS_SET = ((1.5, 4.0, 0.3), (3.5, 1.2, 1.1), (2.5, 2.5, 0.0))


def data_dir() -> Path:
    """The shared data folder: ``$KFOPS_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("KFOPS_DATA")
    p = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    if not p.is_dir():
        src = "KFOPS_DATA" if env else "default location"
        raise KernelError(f"kernel data folder not found: {p} ({src}); set KFOPS_DATA")
    return p


def named_kernel_set(name: str, size: int = 24) -> dict[str, torch.Tensor]:
    """A named set of float64 ``(size, size)`` kernels, each summing to 1 with COM centred.

    * ``"levin"``: the 8 Levin et al. (2009) kernels ``levin09_k{1..8}.npy`` from
      ``data_dir() / "kernels" / "levin09"``, resampled by :func:`resize_kernel` with the COM
      placed on the array centre; keys ``levin_k1`` ... ``levin_k8``.
    * ``"stress"``: :func:`l_shape`, :func:`empty_square`, :func:`filled_square`.
    * ``"gauss"``: anisotropic Gaussians ``(sigma_x, sigma_y, theta)`` = (1.5, 4.0, 0.3),
      (3.5, 1.2, 1.1), (2.5, 2.5, 0.0) (fixed, for x4 SR); keys like ``gauss_1.5_4.0_0.3``.
    """
    n = _pos_int(size, "size")
    if name == "levin":
        folder = data_dir() / "kernels" / "levin09"
        out = {}
        for i in range(1, 9):
            p = folder / f"levin09_k{i}.npy"
            out[f"levin_k{i}"] = resize_kernel(load_kernel(p), n, center=True)
        return out
    if name == "stress":
        return {
            "l_shape": l_shape(n),
            "empty_square": empty_square(n),
            "filled_square": filled_square(n),
        }
    if name == "gauss":
        return {
            f"gauss_{sx}_{sy}_{th}": anisotropic_gaussian(n, sx, sy, th)
            for sx, sy, th in _GAUSS_SET
        }
    raise KernelError(f"unknown kernel set '{name}'; choose 'levin', 'stress' or 'gauss'")


def kernel_from_spec(spec: str, size: int = 24, scale: int | None = None) -> torch.Tensor:
    """A kernel from a file path or a generator spec (for the command line).

    Specs: ``box:K``, ``gauss:SIGMA[:K]``, ``gauss:SX,SY,THETA[:K]`` (THETA in radians),
    ``disk:RADIUS[:K]`` (defocus), ``motion:LENGTH,THETA[:K]`` (linear motion, THETA in
    radians), ``shake:SEED[:K]``, ``l_shape[:K]``, ``empty_square[:K]``, ``filled_square[:K]``;
    K defaults to ``size``. ``bicubic[:K]``, ``bilinear[:K]`` and ``area[:K]`` are the
    filters of an ordinary ×``scale`` downscale (:func:`resize_filter`; K defaults to their
    support) and need ``scale``. Anything else is read with :func:`load_kernel`.
    """
    name, _, rest = spec.partition(":")
    parts = rest.split(":") if rest else []

    def size_at(i: int) -> int:
        if len(parts) > i:
            try:
                return int(parts[i])
            except ValueError:
                raise KernelError(f"bad kernel size {parts[i]!r} in {spec!r}") from None
        return size

    try:
        if name in RESIZE_METHODS and (not parts or parts[0].isdigit()):
            if scale is None:
                raise KernelError(f"the {name} filter needs the scale factor")
            return resize_filter(scale, name, size_at(0) if parts else None)
        if name == "box":
            return box(size_at(0))
        if name == "gauss":
            if not parts:
                raise KernelError("gauss needs a sigma, e.g. gauss:2.0 or gauss:1.5,4,0.3")
            vals = [float(v) for v in parts[0].split(",")]
            if len(vals) == 1:
                return gaussian(size_at(1), vals[0])
            if len(vals) == 3:
                return anisotropic_gaussian(size_at(1), vals[0], vals[1], vals[2])
            raise KernelError(f"gauss takes SIGMA or SX,SY,THETA, got {parts[0]!r}")
        if name == "disk":
            if not parts:
                raise KernelError("disk needs a radius in pixels, e.g. disk:4")
            return disk(size_at(1), float(parts[0]))
        if name == "motion":
            vals = [float(v) for v in parts[0].split(",")] if parts else []
            if len(vals) != 2:
                raise KernelError("motion takes LENGTH,THETA (pixels, radians), e.g. motion:15,0.5")
            return linear_motion(size_at(1), vals[0], vals[1])
        if name == "shake":
            seed = int(parts[0]) if parts else 0
            g = torch.Generator().manual_seed(seed)
            return camera_shake(size_at(1), generator=g)
        stress = {"l_shape": l_shape, "empty_square": empty_square, "filled_square": filled_square}
        if name in stress:
            return stress[name](size_at(0))
    except ValueError as exc:
        if isinstance(exc, KernelError):
            raise
        raise KernelError(f"bad kernel spec {spec!r}: {exc}") from None
    return load_kernel(spec)
