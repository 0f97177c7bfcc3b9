"""The figures of a benchmark folder: ``kernels.png`` (true and estimated kernels) and
``crops.png`` (zoomed patches of LR, results and HR), drawn from the saved files."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..io import atomic_write
from .methods import Method
from .results import file_stem, unique

_PATCH = 128  # side (HR pixels) of the crops.png patches, at most
_BG = (255, 255, 255)
_FG = (0, 0, 0)
_PAD = 4
_LINE = 14  # text line height of Pillow's default font


def patch_region(hr: torch.Tensor, scale: int) -> tuple[int, int, int]:
    """(top, left, side) of the most textured square patch (largest Y std on a half-patch
    grid), side = min(128, H, W) rounded down to a multiple of scale; top/left too."""
    h, w = hr.shape[-2:]
    p = max(scale, min(_PATCH, h, w) // scale * scale)
    step = max(scale, p // 2 // scale * scale)
    y = hr.to(torch.float64).mean(dim=1, keepdim=True)
    mean = F.avg_pool2d(y, p, stride=step)
    var = F.avg_pool2d(y * y, p, stride=step) - mean * mean
    idx = int(torch.argmax(var[0, 0]))
    iy, ix = divmod(idx, var.shape[-1])
    return iy * step, ix * step, p


def _text_width(draw, text: str) -> int:
    box = draw.textbbox((0, 0), text)
    return box[2] - box[0]


def _kernel_tile(k: torch.Tensor, mag: int, cell: int):
    """A kernel as grey (k / max(k), clipped to [0, 1]) magnified nearest-neighbour × mag,
    centred on a black cell × cell square."""
    from PIL import Image

    a = k.detach().to("cpu", torch.float64).numpy()
    top = a.max()
    a = np.clip(a / top, 0.0, 1.0) if top > 0 else np.zeros_like(a)
    a = np.repeat(np.repeat(np.round(a * 255.0).astype(np.uint8), mag, axis=0), mag, axis=1)
    tile = Image.new("RGB", (cell, cell), (0, 0, 0))
    tile.paste(
        Image.fromarray(a).convert("RGB"), ((cell - a.shape[1]) // 2, (cell - a.shape[0]) // 2)
    )
    return tile


def _save_png(img, path: Path) -> None:
    atomic_write(path, lambda fh: img.save(fh, format="PNG"))


def _grid(
    col_labels: list[str],
    row_labels: list[str],
    cells: list[list[tuple[object, str]]],
    cell_w: int,
    cell_h: int,
):
    """White canvas: header of column labels, then rows of (tile or None, caption) cells,
    each tile centred in a cell_w × cell_h box over one caption line."""
    from PIL import Image, ImageDraw

    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    col_w = max([cell_w] + [_text_width(probe, t) for t in col_labels]) + _PAD
    label_w = max([0] + [_text_width(probe, ln) for t in row_labels for ln in t.split("\n")])
    label_w += 2 * _PAD
    row_h = cell_h + _LINE + _PAD
    canvas = Image.new(
        "RGB",
        (label_w + col_w * len(col_labels) + _PAD, _LINE + _PAD + row_h * len(row_labels)),
        _BG,
    )
    draw = ImageDraw.Draw(canvas)
    for j, t in enumerate(col_labels):
        x = label_w + j * col_w + (col_w - _text_width(draw, t)) // 2
        draw.text((x, _PAD // 2), t, fill=_FG)
    for i, (label, row) in enumerate(zip(row_labels, cells, strict=True)):
        y0 = _LINE + _PAD + i * row_h
        draw.multiline_text((_PAD, y0 + cell_h // 2 - _LINE), label, fill=_FG)
        for j, (tile, caption) in enumerate(row):
            x0 = label_w + j * col_w
            if tile is None:
                draw.text((x0 + col_w // 2 - 6, y0 + cell_h // 2 - 6), "n/a", fill=_FG)
            else:
                canvas.paste(
                    tile, (x0 + (col_w - tile.width) // 2, y0 + (cell_h - tile.height) // 2)
                )
            if caption:
                cx = x0 + (col_w - _text_width(draw, caption)) // 2
                draw.text((cx, y0 + cell_h + 1), caption, fill=_FG)
    return canvas


def kernels_figure(
    out: Path,
    rows: list[dict],
    images: list[str],
    kset: Mapping[str, torch.Tensor],
    methods: list[Method],
) -> None:
    """kernels.png: GT kernels on top, then one row per kernel-estimating method showing
    its estimate on the first image that has one (caption: NCC)."""
    est = [m.name for m in methods if m.estimates_kernel]
    est += unique(
        [r["method"] for r in rows if r["kernel_ncc"] is not None and r["method"] not in est]
    )
    ncc = {(r["image"], r["kernel"], r["method"]): r["kernel_ncc"] for r in rows}
    found: dict[tuple[str, str], tuple[torch.Tensor, str]] = {}
    for m in est:
        for kname in kset:
            for image in images:
                f = out / "kernels" / f"{file_stem(image, kname, m)}.npy"
                if f.exists():
                    v = ncc.get((image, kname, m))
                    arr = torch.from_numpy(np.load(f, allow_pickle=False))
                    found[m, kname] = (arr, "" if v is None else f"NCC {v:.3f}")
                    break
    shapes = [k.shape for k in kset.values()] + [a.shape for a, _ in found.values()]
    kmax = max(max(sh) for sh in shapes)
    mag = max(1, 72 // kmax)  # one magnification for all, so kernel pixels compare
    cell = kmax * mag
    grid = [[(_kernel_tile(k, mag, cell), "") for k in kset.values()]]
    for m in est:
        line = []
        for kname in kset:
            arr, caption = found.get((m, kname), (None, ""))
            line.append((None if arr is None else _kernel_tile(arr, mag, cell), caption))
        grid.append(line)
    fig = _grid(list(kset), ["GT"] + est, grid, cell, cell)
    _save_png(fig, out / "kernels.png")


def crops_figure(
    out: Path, rows: list[dict], pairs: list[tuple[str, str]], methods: list[str]
) -> None:
    """crops.png: per image × kernel pair, LR (nearest), each method's result and HR."""
    from PIL import Image

    psnr = {(r["image"], r["kernel"], r["method"]): r["psnr_y"] for r in rows}
    cols = ["LR", *methods, "HR"]
    side = 1
    loaded = []
    for image, kname in pairs:
        line = []
        for c in cols:
            f = out / "crops" / f"{file_stem(image, kname, c)}.png"
            im = None
            if f.exists():
                with Image.open(f) as src:
                    im = src.convert("RGB")
                if c != "LR":
                    side = max(side, im.width)
            line.append(im)
        loaded.append(line)
    mag = max(1, _PATCH // side)
    disp = side * mag
    grid = []
    for (image, kname), line in zip(pairs, loaded, strict=True):
        cells = []
        for c, im in zip(cols, line, strict=True):
            if im is None:
                cells.append((None, ""))
                continue
            cells.append((im.resize((disp, disp), Image.NEAREST), ""))
            v = psnr.get((image, kname, c))
            if v is not None:
                cells[-1] = (cells[-1][0], "inf dB" if math.isinf(v) else f"{v:.2f} dB")
        grid.append(cells)
    labels = [f"{image}\n{kname}" for image, kname in pairs]
    fig = _grid(cols, labels, grid, disp, disp)
    _save_png(fig, out / "crops.png")
