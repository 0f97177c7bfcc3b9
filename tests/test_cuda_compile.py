"""Compile check of the CUDA sources with nvcc (no GPU needed); skipped without nvcc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not found")


@pytest.mark.parametrize("cu", sorted((ROOT / "csrc" / "cuda").glob("*.cu")), ids=lambda p: p.name)
def test_cu_files_compile(cu, tmp_path):
    """With the flags torch's CUDAExtension adds (no implicit half/bfloat16 conversions)."""
    from torch.utils.cpp_extension import COMMON_NVCC_FLAGS

    cmd = [
        NVCC,
        "-c",
        "-std=c++17",
        "-arch=sm_90",
        *COMMON_NVCC_FLAGS,
        "-I",
        str(ROOT / "csrc"),
        str(cu),
        "-o",
        str(tmp_path / "out.o"),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]


def test_cuda_bindings_syntax():
    from torch.utils.cpp_extension import include_paths

    incs = [f"-I{p}" for p in include_paths()] + [f"-I{ROOT / 'csrc'}"]
    cmd = [
        NVCC,
        "-std=c++20",
        "-x",
        "c++",
        "-c",
        str(ROOT / "csrc" / "cuda" / "bindings.cpp"),
        "-o",
        "/dev/null",
        "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE",
        *incs,
        "-Xcompiler",
        "-fsyntax-only",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
