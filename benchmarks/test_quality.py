"""Quality run on the development benchmark (minutes per image; ``pytest benchmarks/ -m
quality``): Set5/Set14 crops × Levin + stress + Gaussian kernels, ×4, LR 128×128.
Methods: bicubic, GT-kernel back-projection and the blind ``kfops`` CPU preset. Results go
to ``$KFOPS_QUALITY_OUT`` (default ``benchmarks/results/quality``), resumable. The first
``$KFOPS_QUALITY_IMAGES`` (default 2) images are used, or the Set14 images named in
``$KFOPS_QUALITY_ONLY`` (comma-separated stems, e.g. ``barbara``; a stem found in Set5 is
taken from there), with all 12 kernels or those named in ``$KFOPS_QUALITY_KERNELS``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kfops import bench
from kfops.kernels import data_dir

from .devdata import hr_path

pytestmark = pytest.mark.quality


def test_blind_sr_development_benchmark():
    images_dir = data_dir() / "sr_testsets" / "Set14" / "HR"
    if not images_dir.is_dir():
        pytest.skip("development data not found")
    out = Path(os.environ.get("KFOPS_QUALITY_OUT", Path(__file__).parent / "results" / "quality"))
    limit = int(os.environ.get("KFOPS_QUALITY_IMAGES", "2"))
    only = os.environ.get("KFOPS_QUALITY_ONLY")
    images = [hr_path(n) for n in only.split(",")] if only else images_dir
    kernels = bench.load_kernel_set("levin,stress,gauss", size=24)
    gauss = sorted(k for k in kernels if k.startswith("gauss"))
    kernels = {k: v for k, v in kernels.items() if not k.startswith("gauss") or k == gauss[0]}
    if names := os.environ.get("KFOPS_QUALITY_KERNELS"):
        kernels = {k: kernels[k] for k in names.split(",")}
    rows = bench.run_benchmark(
        images,
        kernels,
        out,
        methods=("bicubic", "gt-backprojection", "kfops"),
        scale=4,
        crop=512,
        limit_images=limit,
    )
    assert rows is not None
    assert (out / "summary.md").exists()
