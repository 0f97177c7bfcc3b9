"""setup.py: a failing compiler installs kfops without the extension, unless required."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("ninja") is None, reason="ninja not found")


def _build(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``setup.py build_ext`` into ``tmp_path`` with a compiler that does not exist."""
    full = {**os.environ, "CXX": str(tmp_path / "no-such-c++"), **env}
    full.pop("KFOPS_NO_EXT", None)
    cmd = [sys.executable, "setup.py", "-q", "build_ext", "--build-temp",
           str(tmp_path / "tmp"), "--build-lib", str(tmp_path / "lib")]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=full, capture_output=True, text=True, timeout=300)


def test_compile_failure_installs_without_extension(tmp_path):
    res = _build(tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "the C++ extension did not build" in res.stderr
    assert not list(tmp_path.glob("lib/**/_C*.so"))


def test_compile_failure_is_fatal_when_required(tmp_path):
    res = _build(tmp_path, KFOPS_REQUIRE_EXT="1")
    assert res.returncode != 0
    assert "the C++ extension did not build" not in res.stderr
