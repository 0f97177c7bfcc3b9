"""The output folder's formats: the rows of ``results.csv`` (read, written, keyed) and
the file stems of the saved kernels, crops and images."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import OutputError
from ..io import atomic_write

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


def fmt_number(x: float | None, digits: int) -> str:
    if x is None:
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def parse_row(raw: dict) -> dict | None:
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


def row_line(row: dict) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [
            row["image"],
            row["kernel"],
            row["method"],
            row["scale"],
            row["crop"],
            fmt_number(row["psnr_y"], 6),
            fmt_number(row["ssim_y"], 8),
            fmt_number(row["kernel_ncc"], 8),
            fmt_number(row["seconds"], 4),
        ]
    )
    return buf.getvalue()


def header_line() -> str:
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
    return [r for r in (parse_row(raw) for raw in reader) if r is not None]


def open_results(path: Path) -> list[dict]:
    """Read the existing rows and make the file ready for appending: create it with the
    header, or rewrite it (atomically) without cut or unreadable lines."""
    rows = read_results(path)
    if path.exists():
        text = path.read_text(encoding="utf-8")
        clean = header_line() + "".join(row_line(r) for r in rows)
        if text == clean:
            return rows
        n_lines = len([ln for ln in text.splitlines()[1:] if ln.strip()])
        if n_lines != len(rows) or not text.endswith("\n"):
            atomic_write(path, lambda fh: fh.write(clean.encode("utf-8")))
        return rows
    atomic_write(path, lambda fh: fh.write(header_line().encode("utf-8")))
    return rows


def job_key(image: str, kernel: str, method: str, scale: int, crop: int) -> tuple:
    return (image, kernel, method, int(scale), int(crop))


def row_key(row: dict) -> tuple:
    return job_key(row["image"], row["kernel"], row["method"], row["scale"], row["crop"])


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def file_stem(image: str, kernel: str, tag: str) -> str:
    return f"{safe_name(image)}__{safe_name(kernel)}__{safe_name(tag)}"


def unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))
