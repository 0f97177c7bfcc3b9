"""Benchmark SR methods on synthetic blind-SR data, as in the paper's Table 2 and Figs. 3, 5.

Protocol: each HR image is centre-cropped (:func:`center_crop`), degraded with each kernel
of a set by ``kfops.degrade(hr, k, scale, "reflect")`` (noise-free, kept in float, clamped
to [0, 1]), and every method super-resolves the LR image. Each kernel is first moved so
that this degradation is bicubic-aligned (:func:`kfops.kernels.align_kernel`; the moved
kernel is the true kernel from then on), unless ``align_kernels`` is off: a kernel off
that position shifts the LR image by a fraction of an HR pixel, which no blind method can
tell from a shift of the image, so its PSNR would measure the shift. Scores are :func:`psnr_y` /
:func:`ssim_y` against the HR crop (default 5% border crop) and, for methods that return
a kernel, :func:`kernel_ncc` against the true kernel.

Methods live in a registry (:func:`register_method`). A method is ``fn(lr, scale, context)
-> (sr, kernel)`` with ``lr`` a ``(1, C, h, w)`` float32 tensor in [0, 1] on the run's
device, ``sr`` ``(1, C, s·h, s·w)`` (clamped to [0, 1] before scoring) and ``kernel`` a
``(Kh, Kw)`` estimate or ``None``. ``context`` holds ``gt_kernel`` (float64 ``(K, K)`` on
the CPU; only the oracle ``gt-backprojection`` may look at it), ``seed`` (an int fixed by
the run seed and the job, so resumed runs see the same value; ``torch.manual_seed(seed)``
is also called before each job), ``image``, ``kernel`` (names), ``device`` and
``hr_size``. Built in: ``bicubic`` and ``gt-backprojection``. Other modules register more
(e.g. the blind ``kfops`` method) by calling :func:`register_method`; the command line
imports them with ``kf bench --plugin MODULE``, and installed packages can expose a
zero-argument registering function under the entry-point group ``kfops.bench_methods``.

Output folder (:func:`run_benchmark`):

* ``results.csv``: header :data:`RESULT_FIELDS`, one row per image × kernel × method.
  ``image`` is the file stem, ``crop`` the requested crop (0 = whole image), ``psnr_y``
  (``inf`` for a perfect result), ``ssim_y``, ``kernel_ncc`` (empty when the method
  returns no kernel) and ``seconds`` (wall time of the method call). Rows are appended and
  flushed one by one; a run skips the jobs whose (image, kernel, method, scale, crop) row
  exists, so an interrupted run resumes where it stopped.
* ``summary.md``: mean PSNR / SSIM per method, overall and per kernel group (levin, stress,
  gauss, other), mean kernel NCC and time, then PSNR / SSIM per kernel; over this run's jobs.
* ``kernels.png``: true kernels (top row) and each kernel-estimating method's estimate for
  the first image (one row per method). ``crops.png``: for the first ``figure_rows``
  image × kernel pairs, a zoomed patch of the LR (nearest), each method's result and HR.
* ``kernels/<image>__<kernel>__<method>.npy`` (estimated kernels) and
  ``crops/<image>__<kernel>__<LR|HR|method>.png`` (the figure patches): the figures are
  redrawn from these, so a resumed run draws them without recomputing. They hold the
  latest computed setting: use one output folder per scale / crop.
* With ``save_images``: ``images/<image>__<kernel>__<LR|method>.png``.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .degradation import backproject, bicubic_upsample
from .errors import ImageError, KernelError, KfopsError, OutputError, ScaleError
from .io import IMAGE_EXTENSIONS, atomic_write, load_image, save_image
from .kernels import align_kernel, load_kernel, named_kernel_set, save_kernel, validate_kernel
from .metrics import default_crop_border, kernel_ncc, psnr_y, ssim_y
from .ops import degrade

__all__ = [
    "DEFAULT_METHODS",
    "RESULT_FIELDS",
    "Method",
    "available_methods",
    "center_crop",
    "get_method",
    "kernel_group",
    "list_images",
    "load_kernel_set",
    "read_results",
    "register_method",
    "run_benchmark",
    "unregister_method",
]

RESULT_FIELDS = (
    "image",
    "kernel",
    "method",
    "scale",
    "crop",
    "psnr_y",
    "ssim_y",
    "kernel_ncc",
    "seconds",
)
DEFAULT_METHODS = ("bicubic", "gt-backprojection")
KERNEL_GROUPS = ("levin", "stress", "gauss", "other")
ENTRY_POINT_GROUP = "kfops.bench_methods"
_STRESS = ("l_shape", "empty_square", "filled_square")
_PATCH = 128  # side (HR pixels) of the crops.png patches, at most
_SSIM_MIN = 11

MethodFn = Callable[[torch.Tensor, int, dict], tuple[torch.Tensor, torch.Tensor | None]]


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Method:
    """A registered SR method: ``fn(lr, scale, context) -> (sr, kernel | None)``."""

    name: str
    fn: MethodFn
    estimates_kernel: bool = False


_METHODS: dict[str, Method] = {}
_plugins_loaded = False


def register_method(
    name: str, fn: MethodFn, estimates_kernel: bool = False, replace: bool = False
) -> Method:
    """Add a method to the registry under ``name`` (letters, digits, ``._-``).

    ``estimates_kernel``: the method returns a kernel (it gets a row in ``kernels.png``).
    Registering an existing name raises :class:`KfopsError` unless ``replace``.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise KfopsError(f"bad method name {name!r}: use letters, digits, '.', '_', '-'")
    if not callable(fn):
        raise KfopsError(f"method {name!r}: fn must be callable")
    if name in _METHODS and not replace:
        raise KfopsError(f"method {name!r} is already registered (pass replace=True)")
    method = Method(name, fn, bool(estimates_kernel))
    _METHODS[name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a method from the registry (no error if absent)."""
    _METHODS.pop(name, None)


def _load_plugins() -> None:
    """Call the zero-argument registering functions of the ``kfops.bench_methods``
    entry points once (a failing plugin only warns)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as exc:  # a broken plugin must not break the built-in methods
            warnings.warn(f"kfops bench plugin {ep.name!r} failed: {exc}", stacklevel=2)


def available_methods() -> list[str]:
    """Names of the registered methods, in registration order."""
    _load_plugins()
    return list(_METHODS)


def get_method(name: str) -> Method:
    """The registered method ``name``; an unknown name raises :class:`KfopsError` listing
    the known ones."""
    if name not in _METHODS:
        _load_plugins()
    if name not in _METHODS:
        raise KfopsError(f"unknown method {name!r}; known methods: {', '.join(_METHODS)}")
    return _METHODS[name]


def _bicubic(lr: torch.Tensor, scale: int, context: dict) -> tuple[torch.Tensor, None]:
    return bicubic_upsample(lr, scale).clamp(0, 1), None


def _gt_backprojection(lr: torch.Tensor, scale: int, context: dict) -> tuple[torch.Tensor, None]:
    k = context["gt_kernel"].to(device=lr.device, dtype=lr.dtype)
    return backproject(lr, k, scale), None


def _kfops_method(preset: str, **overrides) -> MethodFn:
    """The blind method: train the prior on the LR image, then Phase 2 (preset + overrides,
    e.g. an ablation ``mode`` or ``kernel_model``)."""

    def fn(lr: torch.Tensor, scale: int, context: dict):
        from .diffusion import PatchPrior
        from .presets import prior_config, recon_config
        from .reconstructor import Reconstructor

        g = torch.Generator().manual_seed(int(context["seed"]))
        cfg = recon_config(preset, **overrides)
        prior = None
        if cfg.mode in ("full", "pd_unet"):
            prior = PatchPrior(prior_config(preset, channels=lr.shape[1])).to(lr.device)
            prior.fit(lr, generator=g, progress=False)
        res = Reconstructor(scale, cfg).run(lr, prior, generator=g)
        return res.hr, res.kernel

    return fn


register_method("bicubic", _bicubic)
register_method("gt-backprojection", _gt_backprojection)
register_method("kfops", _kfops_method("cpu"), estimates_kernel=True)
register_method("kfops-paper", _kfops_method("paper"), estimates_kernel=True)
for _mode in ("dip", "unet_only", "pd_unet"):
    register_method(f"kfops-{_mode}", _kfops_method("cpu", mode=_mode), estimates_kernel=True)
for _km in ("direct_relu", "direct_sigmoid", "linear_cnn"):
    register_method(f"kfops-{_km}", _kfops_method("cpu", kernel_model=_km), estimates_kernel=True)


# --------------------------------------------------------------------------- inputs


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


# --------------------------------------------------------------------------- CSV


def _fmt(x: float | None, digits: int) -> str:
    if x is None:
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def _parse_row(raw: dict) -> dict | None:
    try:
        if None in raw or any(raw.get(f) is None for f in RESULT_FIELDS):
            return None
        ncc = raw["kernel_ncc"].strip()
        return {
            "image": raw["image"],
            "kernel": raw["kernel"],
            "method": raw["method"],
            "scale": int(raw["scale"]),
            "crop": int(raw["crop"]),
            "psnr_y": float(raw["psnr_y"]),
            "ssim_y": float(raw["ssim_y"]),
            "kernel_ncc": float(ncc) if ncc else None,
            "seconds": float(raw["seconds"]),
        }
    except (ValueError, KeyError, AttributeError):
        return None


def _row_line(row: dict) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [
            row["image"],
            row["kernel"],
            row["method"],
            row["scale"],
            row["crop"],
            _fmt(row["psnr_y"], 6),
            _fmt(row["ssim_y"], 8),
            _fmt(row["kernel_ncc"], 8),
            _fmt(row["seconds"], 4),
        ]
    )
    return buf.getvalue()


def _header_line() -> str:
    return ",".join(RESULT_FIELDS) + "\n"


def read_results(path: str | Path) -> list[dict]:
    """Rows of a ``results.csv`` as dicts (ints, floats, ``kernel_ncc`` None when empty);
    unreadable rows (e.g. cut by a crash) are skipped. Missing file: ``[]``; a file with
    other columns raises :class:`OutputError`."""
    p = Path(path)
    if not p.exists():
        return []
    text = p.read_text(encoding="utf-8")
    if not text.strip():
        return []
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != RESULT_FIELDS:
        raise OutputError(
            f"{p} has columns {reader.fieldnames}, expected {list(RESULT_FIELDS)}; "
            "use another output folder"
        )
    return [r for r in (_parse_row(raw) for raw in reader) if r is not None]


def _open_results(path: Path) -> list[dict]:
    """Read the existing rows and make the file ready for appending: create it with the
    header, or rewrite it (atomically) without cut or unreadable lines."""
    rows = read_results(path)
    if path.exists():
        text = path.read_text(encoding="utf-8")
        clean = _header_line() + "".join(_row_line(r) for r in rows)
        if text == clean:
            return rows
        n_lines = len([ln for ln in text.splitlines()[1:] if ln.strip()])
        if n_lines != len(rows) or not text.endswith("\n"):
            atomic_write(path, lambda fh: fh.write(clean.encode("utf-8")))
        return rows
    atomic_write(path, lambda fh: fh.write(_header_line().encode("utf-8")))
    return rows


def _key(image: str, kernel: str, method: str, scale: int, crop: int) -> tuple:
    return (image, kernel, method, int(scale), int(crop))


def _row_key(row: dict) -> tuple:
    return _key(row["image"], row["kernel"], row["method"], row["scale"], row["crop"])


# --------------------------------------------------------------------------- runner


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _stem(image: str, kernel: str, tag: str) -> str:
    return f"{_safe(image)}__{_safe(kernel)}__{_safe(tag)}"


def _job_seed(seed: int, image: str, kernel: str, method: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(f"{image}\0{kernel}\0{method}".encode())) % (2**31)


def _patch_region(hr: torch.Tensor, scale: int) -> tuple[int, int, int]:
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


def _load_hr(path: Path, crop: int, scale: int, crop_border: int | None) -> torch.Tensor:
    """The HR centre crop (1, C, h, w) float32 on the CPU; refuses crops too small for SSIM."""
    hr = center_crop(load_image(path).pixels, crop, scale)
    border = default_crop_border(*hr.shape[-2:]) if crop_border is None else crop_border
    if min(hr.shape[-2:]) - 2 * border < _SSIM_MIN:
        raise ImageError(
            f"{path}: crop {hr.shape[-1]}x{hr.shape[-2]} is too small for SSIM after a "
            f"{border} px border (need {_SSIM_MIN} px left)"
        )
    return hr


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


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


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
    from tqdm import tqdm

    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ScaleError(f"scale must be a positive integer, got {scale!r}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 0):
        raise ImageError(f"crop must be a non-negative integer (0 = whole image), got {crop!r}")
    crop_i = int(crop or 0)
    names = _unique(list(methods))
    if not names:
        raise KfopsError("no methods given")
    meths = [get_method(n) for n in names]
    paths = list_images(images, limit_images)
    kset = load_kernel_set(kernels, kernel_size)
    if align_kernels:
        kset = {name: align_kernel(k, scale) for name, k in kset.items()}
    dev = torch.device(device)

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder")
    try:
        for sub in ("", "kernels", "crops") + (("images",) if save_images else ()):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}") from None
    csv_path = out / "results.csv"
    done = {_row_key(r) for r in _open_results(csv_path)}

    pairs = [(p.stem, k) for p in paths for k in kset]
    fig_pairs = set(pairs[: max(0, figure_rows)])
    n_pending = sum(
        _key(p.stem, k, m.name, scale, crop_i) not in done
        for p in paths
        for k in kset
        for m in meths
    )

    with (
        tqdm(total=n_pending, disable=quiet, unit="job", desc="kf bench") as bar,
        open(csv_path, "a", encoding="utf-8", newline="") as fh,
    ):
        for path in paths:
            image, hr, region = path.stem, None, (0, 0, 0)
            for kname, k in kset.items():
                todo = [m for m in meths if _key(image, kname, m.name, scale, crop_i) not in done]
                in_fig = (image, kname) in fig_pairs
                fixed = {t: out / "crops" / f"{_stem(image, kname, t)}.png" for t in ("LR", "HR")}
                if not todo and not (in_fig and not all(f.exists() for f in fixed.values())):
                    continue
                if hr is None:
                    hr = _load_hr(path, crop_i, scale, crop_border)
                    region = _patch_region(hr, scale)
                top, left, side = region
                lr = degrade(hr.to(dev), k.to(device=dev, dtype=hr.dtype), scale, "reflect")
                lr = lr.clamp(0, 1)
                if in_fig:
                    save_image(hr[..., top : top + side, left : left + side], fixed["HR"])
                    t, lf, sd = top // scale, left // scale, side // scale
                    save_image(lr[..., t : t + sd, lf : lf + sd], fixed["LR"])
                if save_images and todo:
                    save_image(lr, out / "images" / f"{_stem(image, kname, 'LR')}.png")
                for m in todo:
                    context = {
                        "gt_kernel": k.clone(),
                        "seed": _job_seed(seed, image, kname, m.name),
                        "image": image,
                        "kernel": kname,
                        "device": dev,
                        "hr_size": tuple(hr.shape[-2:]),
                    }
                    sr, k_est, seconds = _call_method(m, lr, scale, context, tuple(hr.shape))
                    stem = _stem(image, kname, m.name)
                    ncc = None
                    if k_est is not None:
                        ncc = kernel_ncc(k_est, k)
                        save_kernel(k_est, out / "kernels" / f"{stem}.npy")
                    if in_fig:
                        patch = sr[..., top : top + side, left : left + side]
                        save_image(patch, out / "crops" / f"{stem}.png")
                    if save_images:
                        save_image(sr, out / "images" / f"{stem}.png")
                    row = {
                        "image": image,
                        "kernel": kname,
                        "method": m.name,
                        "scale": scale,
                        "crop": crop_i,
                        "psnr_y": psnr_y(sr, hr, crop_border),
                        "ssim_y": ssim_y(sr, hr, crop_border),
                        "kernel_ncc": ncc,
                        "seconds": seconds,
                    }
                    fh.write(_row_line(row))
                    fh.flush()
                    done.add(_row_key(row))
                    bar.update(1)

    wanted = [_key(p.stem, k, m.name, scale, crop_i) for p in paths for k in kset for m in meths]
    latest = {_row_key(r): r for r in read_results(csv_path)}
    rows = [latest[key] for key in wanted if key in latest]
    _write_summary(rows, out / "summary.md", scale, crop_i, len(paths), kset, align_kernels)
    _kernels_figure(out, rows, [p.stem for p in paths], kset, meths)
    _crops_figure(out, rows, [pr for pr in pairs if pr in fig_pairs], names)
    return rows


# --------------------------------------------------------------------------- summary


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _cell(rows: list[dict]) -> str:
    if not rows:
        return "–"
    p, s = _mean([r["psnr_y"] for r in rows]), _mean([r["ssim_y"] for r in rows])
    return f"{p:.2f} / {s:.4f}"


def _write_summary(
    rows: list[dict],
    path: Path,
    scale: int,
    crop: int,
    n_images: int,
    kset: Mapping[str, torch.Tensor],
    aligned: bool = True,
) -> None:
    methods = _unique([r["method"] for r in rows])
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


# --------------------------------------------------------------------------- figures

_BG = (255, 255, 255)
_FG = (0, 0, 0)
_PAD = 4
_LINE = 14  # text line height of Pillow's default font


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


def _kernels_figure(
    out: Path,
    rows: list[dict],
    images: list[str],
    kset: Mapping[str, torch.Tensor],
    methods: list[Method],
) -> None:
    """kernels.png: GT kernels on top, then one row per kernel-estimating method showing
    its estimate on the first image that has one (caption: NCC)."""
    est = [m.name for m in methods if m.estimates_kernel]
    est += _unique(
        [r["method"] for r in rows if r["kernel_ncc"] is not None and r["method"] not in est]
    )
    ncc = {(r["image"], r["kernel"], r["method"]): r["kernel_ncc"] for r in rows}
    found: dict[tuple[str, str], tuple[torch.Tensor, str]] = {}
    for m in est:
        for kname in kset:
            for image in images:
                f = out / "kernels" / f"{_stem(image, kname, m)}.npy"
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


def _crops_figure(
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
            f = out / "crops" / f"{_stem(image, kname, c)}.png"
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
