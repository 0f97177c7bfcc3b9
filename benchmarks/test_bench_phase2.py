"""Phase-2 speed: one joint iteration of Algorithm 1 on one of the CPU preset's two crops
(40×40 LR, ×4: 160² HR, 4-level U-Net of width 16, 32-filter prior) for the full
method and for the DIP ablation (reference: ``full``), and a small end-to-end
``kf upscale`` (tiny recipe, 32×32 LR) against ``kf backproject`` with a known kernel on
the same image (reference: ``upscale``)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import kfops
from kfops.diffusion import PatchPrior
from kfops.reconstructor import ReconConfig, Reconstructor


def _lr(size: int) -> torch.Tensor:
    hr = kfops.io.load_image("examples/butterfly.png").pixels[..., : 4 * size, : 4 * size]
    return kfops.degrade(hr, kfops.kernels.l_shape(24).float(), 4).clamp(0, 1)


@pytest.mark.parametrize("mode", ["full", "dip"])
def test_phase2_iteration(benchmark, record_role, mode):
    lr = _lr(40)
    prior = PatchPrior(hidden=32)
    cfg = ReconConfig(
        mode=mode, t_start=300, steps=1, iters_first=1, iters=1, unet_base=16, unet_levels=4
    )
    record_role("Phase 2 iteration, 160² HR", mode, reference=mode == "full")
    rec = Reconstructor(4, cfg)

    def run():
        rec.run(lr, prior, generator=torch.Generator().manual_seed(0))

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("command", ["upscale", "backproject"])
def test_end_to_end_cli(benchmark, record_role, command, tmp_path, monkeypatch):
    for table in (kfops.presets.PRIOR_PRESETS, kfops.presets.RECON_PRESETS):
        monkeypatch.setitem(table, "cpu", table["smoke"])
    src = tmp_path / "lr.png"
    kfops.io.save_image(_lr(32), src)
    record_role("end-to-end CLI, 32² LR ×4", command, reference=command == "upscale")
    if command == "upscale":
        args = ["upscale", str(src), "-s", "4", "-o", str(tmp_path / "sr.png"), "-q"]
    else:
        args = [
            "backproject",
            str(src),
            "--kernel",
            "l_shape",
            "-s",
            "4",
            "-o",
            str(tmp_path / "sr.png"),
            "-q",
        ]

    def run():
        monkeypatch.setenv("KFOPS_CACHE", str(tmp_path / f"cache{run.calls}"))
        run.calls += 1
        res = CliRunner().invoke(kfops_cli(), args)
        assert res.exit_code == 0, res.output

    run.calls = 0
    benchmark.pedantic(run, rounds=2 if command == "upscale" else 5, warmup_rounds=0)


def kfops_cli():
    from kfcli.main import cli

    return cli
