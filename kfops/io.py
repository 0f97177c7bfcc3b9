"""Image files <-> tensors, and atomic writes.

``load_image`` returns float32 tensors in [0, 1], shape (1, C, H, W) with C = 1 (grey) or
3 (RGB), after applying the EXIF orientation. Palette images become RGB(A), CMYK becomes
RGB. An alpha channel is returned separately (``ImageData.alpha``, (1, 1, H, W)) so the
methods see only colour; callers resize it on their own and ``save_image`` re-attaches it.
The bit depth (8 or 16) is kept so 16-bit input can be written back as 16-bit (PNG of any
colour type: 16-bit colour PNG is read and written with pypng, as Pillow keeps 8 bits).
A JPEG file's luma quantisation table is kept too (``ImageData.jpeg_table``,
:mod:`kfops.jpeg`): it says how much the compression took away.
Every failure raises :class:`ImageError` / :class:`OutputError` with a one-line message;
writes go to a temporary file in the target folder and are renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch

from .errors import ImageError, OutputError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageData",
    "atomic_write",
    "check_output_path",
    "load_image",
    "save_image",
]

IMAGE_EXTENSIONS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


@dataclass
class ImageData:
    """pixels: (1, C, H, W) float32 in [0, 1]; alpha: (1, 1, H, W) or None; bits: 8 or 16;
    jpeg_table: the luma quantisation table (8, 8) of a JPEG file, natural order, else None."""

    pixels: torch.Tensor
    alpha: torch.Tensor | None
    bits: int
    jpeg_table: np.ndarray | None = None


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it onto ``path``.

    Nothing is left behind on failure (including KeyboardInterrupt). Path problems raise
    :class:`OutputError`.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {parent} does not exist")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


def load_image(path: Path | str) -> ImageData:
    """Read an image file (any format Pillow reads) as described in the module docstring."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a folder, not an image")
    if p.stat().st_size == 0:
        raise ImageError(f"{p}: file is empty")
    try:
        with Image.open(p) as im:
            if im.format == "PNG" and _png_depth_and_colour(p) in ((16, 2), (16, 4), (16, 6)):
                return _read_png16(p, im.getexif().get(_ORIENTATION, 1))
            table = _jpeg_luma_table(im)
            im = ImageOps.exif_transpose(im)
            im.load()
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{p}: image is too large to decode safely ({exc})".splitlines()[0]
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{p}: cannot decode image ({exc})".splitlines()[0]) from None
    data = _to_data(im, p)
    data.jpeg_table = table
    return data


_ORIENTATION = 0x0112


def _jpeg_luma_table(im) -> np.ndarray | None:
    """The first (luma) quantisation table of a JPEG (or MPO) image as (8, 8) int, else
    None. Pillow gives it in natural order; a malformed table counts as none."""
    tables = getattr(im, "quantization", None) if im.format in ("JPEG", "MPO") else None
    if not tables or 0 not in tables:
        return None
    table = np.asarray(list(tables[0]), dtype=np.int64)
    return table.reshape(8, 8) if table.size == 64 and table.min() >= 1 else None


def _png_depth_and_colour(p: Path) -> tuple[int, int]:
    """(bit depth, colour type) from the IHDR chunk of a PNG file."""
    with open(p, "rb") as fh:
        head = fh.read(26)
    return (head[24], head[25]) if len(head) == 26 else (0, 0)


def _read_png16(p: Path, orientation: int) -> ImageData:
    """16-bit colour (or grey + alpha) PNG, which Pillow would reduce to 8 bits."""
    import png

    try:
        width, height, rows, info = png.Reader(filename=str(p)).asDirect()
        arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
    except (png.Error, OSError, ValueError) as exc:
        raise ImageError(f"{p}: cannot decode image ({exc})".splitlines()[0]) from None
    planes = int(info["planes"])
    arr = arr.reshape(height, width, planes).astype(np.float64) / 65535.0
    return _image_data(_apply_orientation(arr, orientation), bool(info.get("alpha")), 16)


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1–8) to an (H, W, C) array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, -1)[::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return ops[orientation](arr) if orientation in ops else arr


def _to_data(im, p: Path) -> ImageData:
    mode = im.mode
    bits = 8
    has_alpha = False
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        bits = 16
        arr = np.clip(arr / 65535.0, 0.0, 1.0)[..., None]
    elif mode == "F":
        arr = np.clip(np.asarray(im, dtype=np.float64), 0.0, 1.0)[..., None]
    else:
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode == "CMYK" or mode == "YCbCr" or mode == "HSV" or mode == "LAB":
            im = im.convert("RGB")
        elif mode in ("1",):
            im = im.convert("L")
        elif mode == "PA":
            im = im.convert("RGBA")
        elif mode not in ("L", "LA", "RGB", "RGBA"):
            im = im.convert("RGB")
        arr = np.asarray(im, dtype=np.float64) / 255.0
        if arr.ndim == 2:
            arr = arr[..., None]
        has_alpha = im.mode in ("LA", "RGBA")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"{p}: image has no pixels")
    return _image_data(arr, has_alpha, bits)


def _image_data(arr: np.ndarray, has_alpha: bool, bits: int) -> ImageData:
    """(H, W, C) float64 in [0, 1], alpha last when ``has_alpha`` -> ImageData."""
    alpha = None
    if has_alpha:
        alpha = torch.from_numpy(np.ascontiguousarray(arr[..., -1])).float()[None, None]
        arr = arr[..., :-1]
    pixels = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()[None]
    return ImageData(pixels=pixels, alpha=alpha, bits=bits)


def check_output_path(path: Path) -> str:
    """Raise OutputError unless an image can be written at path; return Pillow's format."""
    fmt = IMAGE_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise OutputError(f"{path}: unknown image extension '{path.suffix}' (use one of {known})")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"cannot write {path}: folder {path.parent} is not writable")
    return fmt


def save_image(
    pixels: torch.Tensor,
    path: Path | str,
    alpha: torch.Tensor | None = None,
    bits: int = 8,
) -> None:
    """Write (1|-, C, H, W) or (C, H, W) values in [0, 1] (clipped) to ``path`` atomically.

    C = 1 or 3; ``alpha`` (same H, W) is attached for PNG/TIFF/WEBP and dropped otherwise.
    ``bits=16`` writes 16-bit PNG (grey, grey + alpha, RGB, RGBA) and 16-bit grey TIFF;
    other formats, and 16-bit colour TIFF, are written with 8 bits. NaN values are refused.
    """
    from PIL import Image

    path = Path(path)
    fmt = check_output_path(path)
    t = pixels.detach().to("cpu", torch.float64)
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ImageError("save_image writes one image; got a batch of " + str(t.shape[0]))
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ImageError(f"image tensor must be (C, H, W) with C = 1 or 3, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ImageError("refusing to write an image with NaN or inf values")
    arr = t.clamp(0, 1).permute(1, 2, 0).numpy()
    if alpha is not None and fmt in ("PNG", "TIFF", "WEBP"):
        a = alpha.detach().to("cpu", torch.float64).reshape(arr.shape[0], arr.shape[1], 1)
        arr = np.concatenate([arr, a.clamp(0, 1).numpy()], axis=2)
    if bits == 16 and fmt == "PNG" and arr.shape[2] > 1:
        _write_png16(path, arr)
        return
    if bits == 16 and arr.shape[2] == 1 and fmt in ("PNG", "TIFF"):
        img = Image.fromarray(np.round(arr[..., 0] * 65535.0).astype(np.uint16))
    else:
        u8 = np.round(arr * 255.0).astype(np.uint8)
        if u8.shape[2] == 1:
            img = Image.fromarray(u8[..., 0])
        elif u8.shape[2] == 2:
            img = Image.merge("LA", [Image.fromarray(u8[..., 0]), Image.fromarray(u8[..., 1])])
        else:
            img = Image.fromarray(u8)
    if fmt == "JPEG" and img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    kwargs = {"quality": 95} if fmt == "JPEG" else {}
    atomic_write(path, lambda fh: img.save(fh, format=fmt, **kwargs))


def _write_png16(path: Path, arr: np.ndarray) -> None:
    """(H, W, C) values in [0, 1], C = 2, 3 or 4, as a 16-bit PNG (atomic)."""
    import png

    h, w, c = arr.shape
    u16 = np.round(arr * 65535.0).astype(np.uint16).reshape(h, w * c)
    writer = png.Writer(w, h, greyscale=c == 2, alpha=c in (2, 4), bitdepth=16)
    atomic_write(path, lambda fh: writer.write(fh, u16))
