"""The benchmark run: degrade every image with every kernel, call every method, score,
append the rows and draw the figures (:func:`run_benchmark`)."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ImageError, KfopsError, OutputError, ScaleError
from ..io import save_image
from ..kernels import align_kernel, save_kernel, validate_kernel
from ..metrics import kernel_ncc, psnr_y, ssim_y
from ..ops import degrade
from .figures import crops_figure, kernels_figure, patch_region
from .inputs import list_images, load_hr, load_kernel_set
from .methods import DEFAULT_METHODS, Method, get_method
from .results import file_stem, job_key, open_results, read_results, row_key, row_line, unique
from .summary import write_summary


def _job_seed(seed: int, image: str, kernel: str, method: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(f"{image}\0{kernel}\0{method}".encode())) % (2**31)


def _call_method(
    m: Method, lr: torch.Tensor, scale: int, context: dict, hr_shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Seed, run and time one method; return (sr clamped, float32 CPU; 2-D float64 CPU
    kernel or None; seconds)."""
    dev = lr.device
    torch.manual_seed(context["seed"])
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    result = m.fn(lr.clone(), scale, context)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    if not (isinstance(result, tuple) and len(result) == 2):
        raise KfopsError(f"method {m.name!r} must return (sr, kernel or None)")
    sr, k_est = result
    if not isinstance(sr, torch.Tensor):
        raise KfopsError(f"method {m.name!r} returned {type(sr).__name__}, not a tensor")
    if sr.dim() == 3:
        sr = sr.unsqueeze(0)
    if tuple(sr.shape) != hr_shape:
        raise KfopsError(f"method {m.name!r} returned shape {tuple(sr.shape)}, expected {hr_shape}")
    sr = sr.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(sr).all()):
        raise KfopsError(f"method {m.name!r} returned NaN or inf values")
    if k_est is not None:
        if not isinstance(k_est, torch.Tensor):
            raise KfopsError(f"method {m.name!r} returned a {type(k_est).__name__} as kernel")
        k_est = k_est.detach().to("cpu", torch.float64)
        while k_est.dim() > 2 and k_est.shape[0] == 1:
            k_est = k_est[0]
        validate_kernel(k_est, f"kernel estimated by {m.name!r}")
    return sr.clamp(0, 1), k_est, seconds


def run_benchmark(
    images: str | Path | Iterable[str | Path],
    kernels: str | Path | Mapping[str, torch.Tensor],
    out_dir: str | Path,
    methods: Sequence[str] = DEFAULT_METHODS,
    scale: int = 4,
    crop: int | None = 512,
    *,
    kernel_size: int = 24,
    align_kernels: bool = True,
    limit_images: int | None = None,
    crop_border: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    save_images: bool = False,
    figure_rows: int = 6,
    quiet: bool = False,
) -> list[dict]:
    """Run (or resume) a benchmark; see the module docstring for the protocol and files.

    Args:
        images: folder of HR images or a list of paths (:func:`list_images`).
        kernels: a kernel-set spec or mapping (:func:`load_kernel_set`, ``kernel_size``).
        align_kernels: move each kernel's centre of mass to where the degradation is
            bicubic-aligned at ``scale`` (:func:`kfops.kernels.align_kernel`) before use.
        out_dir: output folder (created if missing, parents included).
        methods: registered method names (:func:`get_method`).
        scale: integer factor s >= 1. crop: HR centre-crop size (:func:`center_crop`).
        crop_border: border excluded from PSNR/SSIM (None: 5% of the shorter side).
        seed: base of the per-job seeds. device: where the methods run.
        figure_rows: image × kernel pairs (first in order) shown in ``crops.png``.
        quiet: no progress bar.

    Returns the rows of this run's jobs (image × kernel × method order), as
    :func:`read_results` gives them.
    """
    from ..progress import progress_bar

    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ScaleError(f"scale must be a positive integer, got {scale!r}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 0):
        raise ImageError(f"crop must be a non-negative integer (0 = whole image), got {crop!r}")
    crop_i = int(crop or 0)
    names = unique(list(methods))
    if not names:
        raise KfopsError("no methods given")
    meths = [get_method(n) for n in names]
    paths = list_images(images, limit_images)
    kset = load_kernel_set(kernels, kernel_size)
    if align_kernels:
        kset = {name: align_kernel(k, scale) for name, k in kset.items()}
    dev = torch.device(device)

    out = Path(out_dir)
    _make_folders(out, save_images)
    csv_path = out / "results.csv"
    done = {row_key(r) for r in open_results(csv_path)}

    pairs = [(p.stem, k) for p in paths for k in kset]
    fig_pairs = set(pairs[: max(0, figure_rows)])
    n_pending = sum(
        job_key(p.stem, k, m.name, scale, crop_i) not in done
        for p in paths
        for k in kset
        for m in meths
    )

    with (
        progress_bar(n_pending, "kf bench", unit="job", disable=quiet, leave=True) as bar,
        open(csv_path, "a", encoding="utf-8", newline="") as fh,
    ):
        for path in paths:
            image, hr, region = path.stem, None, (0, 0, 0)
            for kname, k in kset.items():
                todo = [
                    m for m in meths if job_key(image, kname, m.name, scale, crop_i) not in done
                ]
                in_fig = (image, kname) in fig_pairs
                fixed = {
                    t: out / "crops" / f"{file_stem(image, kname, t)}.png" for t in ("LR", "HR")
                }
                if not todo and not (in_fig and not all(f.exists() for f in fixed.values())):
                    continue
                if hr is None:
                    hr = load_hr(path, crop_i, scale, crop_border)
                    region = patch_region(hr, scale)
                top, left, side = region
                lr = degrade(hr.to(dev), k.to(device=dev, dtype=hr.dtype), scale, "reflect")
                lr = lr.clamp(0, 1)
                case = _Case(image, kname, k, hr, lr, scale, region if in_fig else None)
                if in_fig:
                    save_image(hr[..., top : top + side, left : left + side], fixed["HR"])
                    t, lf, sd = top // scale, left // scale, side // scale
                    save_image(lr[..., t : t + sd, lf : lf + sd], fixed["LR"])
                if save_images and todo:
                    save_image(lr, out / "images" / f"{file_stem(image, kname, 'LR')}.png")
                for m in todo:
                    seed_m = _job_seed(seed, image, kname, m.name)
                    row = _job_row(m, case, seed_m, out, crop_i, crop_border, save_images)
                    fh.write(row_line(row))
                    fh.flush()
                    done.add(row_key(row))
                    bar.update(1)

    wanted = [job_key(p.stem, k, m.name, scale, crop_i) for p in paths for k in kset for m in meths]
    latest = {row_key(r): r for r in read_results(csv_path)}
    rows = [latest[key] for key in wanted if key in latest]
    write_summary(rows, out / "summary.md", scale, crop_i, len(paths), kset, align_kernels)
    kernels_figure(out, rows, [p.stem for p in paths], kset, meths)
    crops_figure(out, rows, [pr for pr in pairs if pr in fig_pairs], names)
    return rows


@dataclass
class _Case:
    """One image × kernel pair: the HR image (1, C, H, W) and its LR image (on the
    methods' device), both in [0, 1], and the figure's patch (top, left, side) in HR
    pixels where the pair is shown in ``crops.png`` (else None)."""

    image: str
    kernel_name: str
    kernel: torch.Tensor
    hr: torch.Tensor
    lr: torch.Tensor
    scale: int
    patch: tuple[int, int, int] | None


def _job_row(
    m: Method,
    case: _Case,
    seed: int,
    out: Path,
    crop: int,
    crop_border: int | None,
    save_images: bool,
) -> dict:
    """Run method ``m`` on ``case`` with ``seed``, write its kernel, patch and image files
    under ``out``, and return its results row."""
    hr, k = case.hr, case.kernel
    context = {
        "gt_kernel": k.clone(),
        "seed": seed,
        "image": case.image,
        "kernel": case.kernel_name,
        "device": case.lr.device,
        "hr_size": tuple(hr.shape[-2:]),
    }
    sr, k_est, seconds = _call_method(m, case.lr, case.scale, context, tuple(hr.shape))
    stem = file_stem(case.image, case.kernel_name, m.name)
    ncc = None
    if k_est is not None:
        ncc = kernel_ncc(k_est, k)
        save_kernel(k_est, out / "kernels" / f"{stem}.npy")
    if case.patch is not None:
        top, left, side = case.patch
        save_image(sr[..., top : top + side, left : left + side], out / "crops" / f"{stem}.png")
    if save_images:
        save_image(sr, out / "images" / f"{stem}.png")
    return {
        "image": case.image,
        "kernel": case.kernel_name,
        "method": m.name,
        "scale": case.scale,
        "crop": crop,
        "psnr_y": psnr_y(sr, hr, crop_border),
        "ssim_y": ssim_y(sr, hr, crop_border),
        "kernel_ncc": ncc,
        "seconds": seconds,
    }


def _make_folders(out: Path, save_images: bool) -> None:
    """The output folder and its ``kernels``, ``crops`` (and ``images``) subfolders."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder")
    try:
        for sub in ("", "kernels", "crops") + (("images",) if save_images else ()):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}") from None
