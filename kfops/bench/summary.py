"""``summary.md``: mean PSNR / SSIM per method, overall and per kernel group, kernel NCC
and time, then per kernel."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..io import atomic_write
from .inputs import KERNEL_GROUPS, kernel_group
from .results import unique


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _cell(rows: list[dict]) -> str:
    if not rows:
        return "–"
    p, s = _mean([r["psnr_y"] for r in rows]), _mean([r["ssim_y"] for r in rows])
    return f"{p:.2f} / {s:.4f}"


def write_summary(
    rows: list[dict],
    path: Path,
    scale: int,
    crop: int,
    n_images: int,
    kset: Mapping[str, torch.Tensor],
    aligned: bool = True,
) -> None:
    methods = unique([r["method"] for r in rows])
    groups = [g for g in KERNEL_GROUPS if any(kernel_group(k) == g for k in kset)]
    size = {g: sum(kernel_group(k) == g for k in kset) for g in groups}
    crop_txt = f"HR centre crop {crop}" if crop else "whole HR images"
    lines = [
        f"# kf bench: ×{scale}, {crop_txt}",
        "",
        f"{n_images} images × {len(kset)} kernels; noise-free LR = (HR ⊛ k)↓{scale} "
        f"(reflect padding{', kernels moved onto the bicubic-aligned grid' if aligned else ''})"
        ". PSNR (dB) / SSIM on Y (BT.601), border of 5% of the shorter "
        "side removed unless set otherwise; means over images and kernels. Kernel NCC: "
        "normalised cross-correlation with the true kernel at the best integer shift.",
        "",
        "| Method | All | "
        + " | ".join(f"{g.capitalize()} ({size[g]})" for g in groups)
        + " | Kernel NCC | Time (s) |",
        "|---" * (len(groups) + 4) + "|",
    ]
    for m in methods:
        mr = [r for r in rows if r["method"] == m]
        cells = [_cell(mr)] + [
            _cell([r for r in mr if kernel_group(r["kernel"]) == g]) for g in groups
        ]
        ncc = _mean([r["kernel_ncc"] for r in mr if r["kernel_ncc"] is not None])
        sec = _mean([r["seconds"] for r in mr])
        ncc_txt = "–" if ncc is None else f"{ncc:.3f}"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {ncc_txt} | {sec:.3f} |")
    lines += ["", "## Per kernel (PSNR / SSIM)", "", "| Kernel | " + " | ".join(methods) + " |"]
    lines.append("|---" * (len(methods) + 1) + "|")
    for k in kset:
        cells = [_cell([r for r in rows if r["kernel"] == k and r["method"] == m]) for m in methods]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
