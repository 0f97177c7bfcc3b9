"""One-page PNG report of a blind SR run: LR (nearest-upsampled), bicubic, result, the
estimated kernel (magnified, with its size), the Phase-2 loss curve (log scale) and, after
several restarts, every run's kernel with its RMS radius and its agreement with the
others."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .degradation import bicubic_upsample
from .io import atomic_write

__all__ = ["write_report"]

PANEL = 256  # side of each image panel (pixels)


def _to_pil(img: torch.Tensor, size: int):
    from PIL import Image

    arr = img.detach().float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
    arr = (arr * 255).round().astype(np.uint8)
    pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).convert("RGB")
    scale = size / max(pil.size)
    return pil.resize(
        (max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.NEAREST
    )


def _kernel_panel(kernel: torch.Tensor, size: int):
    from PIL import Image

    k = kernel.detach().double().cpu().numpy()
    k = np.clip(k / max(k.max(), 1e-12), 0, 1)
    img = Image.fromarray((k * 255).round().astype(np.uint8)).convert("RGB")
    return img.resize((size, size), Image.NEAREST)


def _estimates_panel(estimates: list[torch.Tensor], size: int):
    """The runs' kernels on a grid, each titled with its RMS radius in pixels
    (:func:`kfops.consensus.kernel_spread`, what the ``widest`` rule compares) and its mean
    normalised correlation with the other runs (:func:`kfops.consensus.agreement`)."""
    from PIL import Image, ImageDraw

    from .consensus import agreement, kernel_spread

    n = len(estimates)
    corr = agreement(estimates)
    mean_corr = ((corr.sum(1) - 1) / (n - 1)).tolist()
    side = math.ceil(math.sqrt(n))
    cell = size // side
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    for i, (k, c) in enumerate(zip(estimates, mean_corr, strict=True)):
        x, y = (i % side) * cell, (i // side) * cell
        img.paste(_kernel_panel(k, cell - 14), (x + 2, y + 12))
        d.text((x + 2, y), f"run {i + 1}: {kernel_spread(k):.1f}px {c:.2f}", fill="black")
    return img


def _curve_panel(history: list[float], size: int):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    vals = [v for v in history if v > 0 and math.isfinite(v)]
    if len(vals) >= 2:
        logs = [math.log10(v) for v in vals]
        lo, hi = min(logs), max(logs)
        span = max(hi - lo, 1e-6)
        pts = [
            (8 + (size - 16) * i / (len(logs) - 1), 8 + (size - 24) * (hi - v) / span)
            for i, v in enumerate(logs)
        ]
        d.line(pts, fill=(200, 30, 30), width=2)
        d.text((8, size - 14), f"loss {vals[0]:.3g} -> {vals[-1]:.3g} (log)", fill="black")
    return img


def write_report(
    path: str | Path,
    lr: torch.Tensor,
    hr: torch.Tensor,
    kernel: torch.Tensor,
    history: list[float],
    scale: int,
    estimates: list[torch.Tensor] | None = None,
    fallback: str | None = None,
    mixed: str | None = None,
) -> None:
    """lr: (1, C, h, w) and hr: (1, C, s·h, s·w) in [0, 1]; kernel (K, K); history: the
    Phase-2 loss per iteration (restarts one after another); estimates: every run's kernel
    (a panel of its own when there are several); fallback: the resize method whose filter
    replaced the estimate (``ReconResult.fallback``), named in the kernel's title, as is
    mixed, the one whose image was averaged with the estimate's (``ReconResult.mixed``).
    Written atomically as a PNG."""
    from PIL import Image, ImageDraw

    panels = [
        ("LR (nearest)", _to_pil(lr, PANEL)),
        ("bicubic", _to_pil(bicubic_upsample(lr.float(), scale).clamp(0, 1), PANEL)),
        ("kfops", _to_pil(hr, PANEL)),
        (
            f"kernel {kernel.shape[-2]}x{kernel.shape[-1]}"
            + ("" if fallback is None else f": {fallback} resize")
            + ("" if mixed is None else f" (image: mean with {mixed} resize)"),
            _kernel_panel(kernel, PANEL),
        ),
        ("Phase-2 loss", _curve_panel(history, PANEL)),
    ]
    if estimates is not None and len(estimates) > 1:
        panels.append(("runs (radius, agreement)", _estimates_panel(estimates, PANEL)))
    height = max(p.height for _, p in panels) + 20
    sheet = Image.new("RGB", (len(panels) * (PANEL + 8) + 8, height + 8), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (title, panel) in enumerate(panels):
        x = 8 + i * (PANEL + 8)
        draw.text((x, 4), title, fill="black")
        sheet.paste(panel, (x, 22))
    atomic_write(Path(path), lambda fh: sheet.save(fh, format="PNG"))
