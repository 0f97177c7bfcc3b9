"""Where the development benchmark's HR images live (``sr_testsets`` of the data folder)."""

from __future__ import annotations

from pathlib import Path

from kfops.kernels import data_dir


def hr_path(stem: str) -> Path:
    """The HR image named ``stem`` (e.g. ``barbara``): from Set14, else from Set5."""
    root = data_dir() / "sr_testsets"
    path = root / "Set14" / "HR" / f"{stem}.png"
    return path if path.exists() else root / "Set5" / "HR" / f"{stem}.png"
