"""The memory estimate refuses runs that cannot fit, before any work starts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from kfcli.main import cli
from kfops import memory
from kfops.errors import ResourceError
from kfops.presets import prior_config, recon_config


def test_estimate_grows_with_the_image_and_the_paper_preset_costs_more():
    cpu = [recon_config("cpu"), prior_config("cpu")]
    paper = [recon_config("paper"), prior_config("paper")]
    small = memory.estimate_bytes((128, 128), 3, 4, *cpu)
    big = memory.estimate_bytes((1024, 1024), 3, 4, *cpu)
    assert big > small > memory.BASE_BYTES
    # the cpu preset works on a crop: only the final SR of the whole image grows with it
    assert big - memory.BASE_BYTES == pytest.approx(1024 * 1024 * 16 * 3 * memory.TV_REFINE_BYTES)
    assert memory.estimate_bytes((512, 512), 3, 4, *paper) > 10 * memory.estimate_bytes(
        (512, 512), 3, 4, *cpu
    )


def test_estimate_counts_the_filled_crop_of_a_small_image():
    prior = prior_config("cpu")
    two = recon_config("cpu", crop_fill=False)
    filled = recon_config("cpu", crop_fill=True)
    # the bound does not know where the greedy choice puts the crops, so it takes the
    # larger of one 57² crop and two 40² crops (3249 against 3200 LR pixels)
    for hw in ((64, 64), (128, 128)):
        with_fill = memory.estimate_bytes(hw, 3, 4, filled, prior)
        without = memory.estimate_bytes(hw, 3, 4, two, prior)
        assert without < with_fill < 1.02 * without


def test_check_memory_refuses_with_the_numbers(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2 * memory.GIB)
    memory.check_memory(memory.GIB, torch.device("cpu"), "job")
    with pytest.raises(ResourceError, match=r"needs about 3\.0 GiB but only 2\.0 GiB of RAM"):
        memory.check_memory(3 * memory.GIB, torch.device("cpu"), "job", "crop it")


def test_available_memory_is_positive():
    assert memory.available_bytes(torch.device("cpu")) > 0


def test_upscale_refuses_too_large_a_job_before_starting(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 256 * 1024**2)
    monkeypatch.setenv("KFOPS_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "in.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(src)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(cli, ["upscale", str(src), "-s", "4", "-o", str(out)])
    assert res.exit_code == ResourceError.exit_code
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "GiB" in lines[0] and "crop or downsize" in lines[0]
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_tv_refinement_fits_in_its_estimate():
    """The per-pixel cost of the final step is measured, not assumed: peak RSS growth of
    one refinement of a 512² ×3 output in a fresh interpreter stays within the estimate."""
    code = (
        "import resource, torch\n"
        "torch.set_num_threads(1)\n"
        "from kfops import kernels\n"
        "from kfops.nonblind import tv_refine\n"
        "lr, k = torch.rand(1, 3, 128, 128), kernels.gaussian(24, 2.0).float()\n"
        "tv_refine(lr[..., :8, :8], k, 4, 1e-3, 2)\n"  # warm-up: one-off allocations
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "tv_refine(lr, k, 4, 1e-3, 3)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grown = int(out.stdout.split()[-1]) * 1024  # ru_maxrss is in KiB on Linux
    assert grown <= 512 * 512 * 3 * memory.TV_REFINE_BYTES
