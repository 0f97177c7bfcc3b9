"""The benchmark's inputs: kernel sets and their Table-2 groups, HR image lists, the
HR centre crop."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..errors import ImageError, KernelError
from ..io import IMAGE_EXTENSIONS, load_image
from ..kernels import load_kernel, named_kernel_set, validate_kernel
from ..metrics import default_crop_border

KERNEL_GROUPS = ("levin", "stress", "gauss", "other")
_STRESS = ("l_shape", "empty_square", "filled_square")
_SSIM_MIN = 11


def kernel_group(name: str) -> str:
    """Table-2 group of a kernel name: ``levin`` (``levin*``), ``stress`` (l_shape,
    empty_square, filled_square), ``gauss`` (``gauss*``) or ``other``."""
    if name.startswith("levin"):
        return "levin"
    if name in _STRESS:
        return "stress"
    if name.startswith("gauss"):
        return "gauss"
    return "other"


def load_kernel_set(
    spec: str | Path | Mapping[str, torch.Tensor], size: int = 24
) -> dict[str, torch.Tensor]:
    """Kernels by name, float64 ``(Kh, Kw)`` each.

    ``spec``: comma-separated items, each a set name for :func:`kfops.kernels.named_kernel_set`
    (``levin``, ``stress``, ``gauss``; ``size`` × ``size``) or a folder whose ``*.npy`` files
    are loaded (sum 1, named by file stem); or a mapping name -> kernel (validated, used
    as is). Unknown names, empty folders and duplicate kernel names raise
    :class:`KernelError`.
    """
    if isinstance(spec, Mapping):
        items = {str(n): validate_kernel(k, f"kernel {n!r}") for n, k in spec.items()}
        out = {n: k.detach().to("cpu", torch.float64) for n, k in items.items()}
    else:
        out = {}
        parts = [spec] if isinstance(spec, Path) else [s.strip() for s in str(spec).split(",")]
        for part in parts:
            if part == "":
                raise KernelError(f"empty item in kernel set {str(spec)!r}")
            p = Path(part)
            if p.is_dir():
                files = sorted(p.glob("*.npy"))
                if not files:
                    raise KernelError(f"kernel folder {p} has no .npy files")
                found = {f.stem: load_kernel(f) for f in files}
            else:
                found = named_kernel_set(str(part), size)
            for n, k in found.items():
                if n in out:
                    raise KernelError(f"kernel name {n!r} appears twice in {str(spec)!r}")
                out[n] = k
    if not out:
        raise KernelError("the kernel set is empty")
    return out


def list_images(source: str | Path | Iterable[str | Path], limit: int | None = None) -> list[Path]:
    """HR images: the files of a folder with an image extension (sorted by name), or the
    given paths; at most ``limit``. Raises :class:`ImageError` for a missing or empty
    folder, a missing file, or two images with the same stem."""
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.is_dir():
            raise ImageError(f"{folder}: no such folder")
        paths = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not paths:
            known = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise ImageError(f"{folder}: no images ({known}) in this folder")
    else:
        paths = [Path(p) for p in source]
        if not paths:
            raise ImageError("no images given")
        for p in paths:
            if not p.is_file():
                raise ImageError(f"{p}: no such file")
    if limit is not None:
        if limit < 1:
            raise ImageError(f"limit must be >= 1, got {limit}")
        paths = paths[:limit]
    stems: dict[str, Path] = {}
    for p in paths:
        if p.stem in stems:
            raise ImageError(f"{stems[p.stem]} and {p} have the same name {p.stem!r}")
        stems[p.stem] = p
    return paths


def center_crop(img: torch.Tensor, crop: int | None, scale: int) -> torch.Tensor:
    """Centre crop of ``(..., H, W)`` to ``min(crop, H) × min(crop, W)``, each side rounded
    down to a multiple of ``scale`` (top-left offset ``(H - h) // 2``). ``crop`` None or 0:
    the whole image, trimmed to multiples of ``scale`` the same way."""
    h, w = img.shape[-2:]
    if crop:
        h, w = min(crop, h), min(crop, w)
    h, w = h // scale * scale, w // scale * scale
    if h < 1 or w < 1:
        raise ImageError(f"image ({img.shape[-1]}x{img.shape[-2]}) is smaller than the scale")
    top, left = (img.shape[-2] - h) // 2, (img.shape[-1] - w) // 2
    return img[..., top : top + h, left : left + w]


def load_hr(path: Path, crop: int, scale: int, crop_border: int | None) -> torch.Tensor:
    """The HR centre crop (1, C, h, w) float32 on the CPU; refuses crops too small for SSIM."""
    hr = center_crop(load_image(path).pixels, crop, scale)
    border = default_crop_border(*hr.shape[-2:]) if crop_border is None else crop_border
    if min(hr.shape[-2:]) - 2 * border < _SSIM_MIN:
        raise ImageError(
            f"{path}: crop {hr.shape[-1]}x{hr.shape[-2]} is too small for SSIM after a "
            f"{border} px border (need {_SSIM_MIN} px left)"
        )
    return hr
