"""kf upscale / kf kernel end to end with tiny presets (the real ones take minutes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import kfops
from kfcli.main import cli


@pytest.fixture
def tiny_presets(monkeypatch, tmp_path):
    """The cpu preset shrunk to the smoke recipe, and ``--device auto`` resolved to the CPU
    (on a GPU machine it would pick CUDA and with it the paper preset)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for table in (kfops.presets.PRIOR_PRESETS, kfops.presets.RECON_PRESETS):
        monkeypatch.setitem(table, "cpu", table["smoke"])
    monkeypatch.setenv("KFOPS_CACHE", str(tmp_path / "cache"))


def _lr(tmp_path, mode="RGB"):
    hr = kfops.io.load_image("examples/butterfly.png").pixels[..., :96, :128]
    lr = kfops.degrade(hr, kfops.kernels.l_shape(8).float(), 4)
    p = tmp_path / "lr.png"
    arr = (lr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).convert(mode).save(p)
    return p


def test_upscale_writes_image_and_kernel_and_reuses_the_prior(tiny_presets, tmp_path):
    src = _lr(tmp_path)
    out, kout = tmp_path / "sr.png", tmp_path / "k.npy"
    args = [
        "upscale",
        str(src),
        "-s",
        "4",
        "-o",
        str(out),
        "--save-kernel",
        str(kout),
        "--device",
        "cpu",
        "--seed",
        "3",
        "--report",
        str(tmp_path / "report.png"),
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    # every phase shows its progress, the final refinement of the whole image included
    assert "phase 2/3 reconstruct" in res.output
    assert "phase 3/3 refine the whole image" in res.output
    assert "whole-image step" in res.output
    assert Image.open(out).size == (128, 96)
    k = np.load(kout)
    assert k.shape == (24, 24) and abs(k.sum() - 1) < 1e-4
    assert len(list((tmp_path / "cache" / "priors").glob("*.pt"))) == 1
    assert Image.open(tmp_path / "report.png").width > 5 * 256
    first = np.asarray(Image.open(out)).copy()
    res2 = CliRunner().invoke(cli, args)
    assert res2.exit_code == 0 and "phase 1/3: reusing the cached prior" in res2.output
    assert np.array_equal(first, np.asarray(Image.open(out)))  # same seed, same output


def test_only_upscale_pays_for_the_tv_refinement(tiny_presets, tmp_path, monkeypatch):
    calls = []
    real = kfops.reconstructor.tv_refine

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(kfops.reconstructor, "tv_refine", counting)
    src = _lr(tmp_path)
    res = CliRunner().invoke(cli, ["kernel", str(src), "-s", "4", "-o", str(tmp_path / "k.npy")])
    assert res.exit_code == 0, res.output
    assert calls == []
    out = tmp_path / "sr.png"
    res = CliRunner().invoke(cli, ["upscale", str(src), "-s", "4", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert calls == [1] and Image.open(out).size == (128, 96)


def test_kernel_command_and_errors(tiny_presets, tmp_path):
    src = _lr(tmp_path, "L")
    res = CliRunner().invoke(
        cli, ["kernel", str(src), "-s", "4", "-o", str(tmp_path / "k.png"), "-q"]
    )
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "k.png").size == (192, 192)
    bad = CliRunner().invoke(cli, ["upscale", str(src), "-s", "5", "-o", str(tmp_path / "o.png")])
    assert bad.exit_code == 4 and bad.output.startswith("kf: error:")
    bad = CliRunner().invoke(
        cli,
        [
            "upscale",
            str(src),
            "-s",
            "4",
            "-o",
            str(tmp_path / "o.png"),
            "--save-kernel",
            str(tmp_path / "k.txt"),
        ],
    )
    assert bad.exit_code == 7
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_upscale_leaves_no_output_and_resumes(tiny_presets, tmp_path, monkeypatch, sig):
    import os
    import signal

    from kfops.diffusion import PatchPrior

    smoke = dict(kfops.presets.PRIOR_PRESETS["smoke"], steps=40)
    monkeypatch.setitem(kfops.presets.PRIOR_PRESETS, "cpu", smoke)
    src, out = _lr(tmp_path), tmp_path / "sr.png"
    fit = PatchPrior.fit
    starts = []

    def fit_with_interrupt(self, *args, **kwargs):
        def callback(step, loss):
            if step == 14 and len(starts) == 1:
                os.kill(os.getpid(), getattr(signal, sig))

        starts.append(None)
        result = fit(self, *args, callback=callback, **kwargs)
        starts.append(self.resumed_from)
        return result

    monkeypatch.setattr(PatchPrior, "fit", fit_with_interrupt)
    args = ["upscale", str(src), "-s", "4", "-o", str(out), "--seed", "2"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 130, first.output
    assert "interrupted" in first.output and "run the same command again" in first.output
    assert "step 15/40" in first.output
    assert not out.exists()
    assert list((tmp_path / "cache" / "priors").glob("*.partial.pt"))
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert starts[-1] == 15 and "resumed prior training from step 15" in second.output
    assert out.exists() and not list((tmp_path / "cache" / "priors").glob("*.partial.pt"))


def test_restarts_combine_several_runs(tiny_presets, tmp_path, monkeypatch):
    seen = []
    real = kfops.reconstructor.consensus_kernel

    def recording(kernels, rule):
        seen.append(len(kernels))
        return real(kernels, rule)

    monkeypatch.setattr(kfops.reconstructor, "consensus_kernel", recording)
    src = _lr(tmp_path)
    k, report = tmp_path / "k.npy", tmp_path / "report.png"
    res = CliRunner().invoke(cli, ["kernel", str(src), "-s", "4", "-o", str(k), "--restarts", "2"])
    assert res.exit_code == 0, res.output
    assert seen == [2] and abs(np.load(k).sum() - 1) < 1e-4
    args = ["upscale", str(src), "-s", "4", "-o", str(tmp_path / "sr.png"), "--report", str(report)]
    res = CliRunner().invoke(cli, [*args, "--restarts", "3", "-q"])
    assert res.exit_code == 0, res.output
    assert seen == [2, 3] and Image.open(report).width == 6 * (256 + 8) + 8  # + the runs' panel
    bad = CliRunner().invoke(cli, ["kernel", str(src), "-s", "4", "-o", str(k), "--restarts", "0"])
    assert bad.exit_code == 2 and "--restarts" in bad.output


def test_a_resize_fallback_is_announced_and_its_kernel_saved(tiny_presets, tmp_path, monkeypatch):
    """When the resize check keeps the blur of an ordinary downscale, both commands say so
    and save that filter as the kernel; without the switch they stay silent."""
    monkeypatch.setitem(
        kfops.presets.RECON_PRESETS, "cpu", dict(kfops.presets.RECON_PRESETS["smoke"])
    )
    src, kout = _lr(tmp_path), tmp_path / "k.npy"
    args = ["kernel", str(src), "-s", "4", "-o", str(kout)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "downscale" not in res.output

    def always(y, kernel, scale, method, eps, tv):
        return kfops.kernels.resize_filter(scale, method, kernel.shape[-1]).to(kernel), True

    monkeypatch.setattr(kfops.reconstructor, "resize_fallback", always)
    kfops.presets.RECON_PRESETS["cpu"]["resize_check"] = "bicubic"
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "ordinary bicubic downscale" in res.output
    expected = kfops.kernels.resize_filter(4, "bicubic", 24).double().numpy()
    assert np.allclose(np.load(kout), expected, atol=1e-7)
    out = tmp_path / "sr.png"
    report = tmp_path / "r.png"
    res = CliRunner().invoke(
        cli, ["upscale", str(src), "-s", "4", "-o", str(out), "--report", str(report)]
    )
    assert res.exit_code == 0 and "ordinary bicubic downscale" in res.output
    assert Image.open(out).size == (128, 96) and report.exists()


def test_a_mean_with_the_resize_blur_is_announced_and_the_estimate_saved(
    tiny_presets, tmp_path, monkeypatch
):
    """When the three-way check (resize_mean) picks the mean, kf upscale says the image is
    that mean and both commands save the estimate; kf kernel, which writes no image, says
    nothing."""
    monkeypatch.setitem(
        kfops.presets.RECON_PRESETS,
        "cpu",
        dict(kfops.presets.RECON_PRESETS["smoke"], resize_check="area", resize_mean=4),
    )

    def mean(y, kernel, scale, method, eps, tv):
        return "mean", kfops.kernels.resize_filter(scale, method, kernel.shape[-1]).to(kernel)

    monkeypatch.setattr(kfops.reconstructor, "resize_choice", mean)
    src = _lr(tmp_path)
    kout, out, report = (tmp_path / n for n in ("k.npy", "sr.png", "r.png"))
    res = CliRunner().invoke(cli, ["kernel", str(src), "-s", "4", "-o", str(kout)])
    assert res.exit_code == 0 and "downscale" not in res.output, res.output
    filt = kfops.kernels.resize_filter(4, "area", 24).double().numpy()
    assert not np.allclose(np.load(kout), filt, atol=1e-3)
    args = ["upscale", str(src), "-s", "4", "-o", str(out), "--report", str(report)]
    res = CliRunner().invoke(cli, [*args, "--save-kernel", str(kout)])
    assert res.exit_code == 0, res.output
    assert "the mean of its reconstruction and that with the blur of an ordinary area" in (
        " ".join(res.output.split())
    )
    assert not np.allclose(np.load(kout), filt, atol=1e-3)
    assert Image.open(out).size == (128, 96) and report.exists()


def _spy_on_the_final_step(monkeypatch, **preset) -> list[float]:
    """Make the cpu preset the smoke one with ``preset`` on top; return the list that
    collects the TV weight of every final step run from then on."""
    monkeypatch.setitem(
        kfops.presets.RECON_PRESETS, "cpu", dict(kfops.presets.RECON_PRESETS["smoke"], **preset)
    )
    weights = []
    real = kfops.reconstructor.tv_refine

    def spy(lr, kernel, scale, weight, iters, **kw):
        weights.append(weight)
        return real(lr, kernel, scale, weight, iters, **kw)

    monkeypatch.setattr(kfops.reconstructor, "tv_refine", spy)
    return weights


def _gaussian_lr(sigma: float) -> np.ndarray:
    """A 32² LR crop of the example, Gaussian blur ``sigma``, ×4: (32, 32, 3) in [0, 255]."""
    hr = kfops.io.load_image("examples/butterfly.png").pixels[..., 64:192, 64:192]
    lr = kfops.degrade(hr, kfops.kernels.gaussian(24, sigma).float(), 4).clamp(0, 1)
    return (lr[0].permute(1, 2, 0).numpy() * 255).round()


def test_a_noisy_image_is_announced_and_smoothed_more(tiny_presets, tmp_path, monkeypatch):
    """With final_noise_ref set, kf upscale reads the LR image's noise level, raises the final
    step's TV weight by 1 + (σ̂/σ_r)², and says so from NOISE_NOTE on; a clean image is left
    as it is."""
    from kfcli.blind_cmd import NOISE_NOTE
    from kfops.noise import noise_sigma

    weights = _spy_on_the_final_step(monkeypatch, final_noise_ref=0.025)
    clean = _gaussian_lr(4.0)
    rng = np.random.default_rng(0)
    sigmas, outputs = [], []
    for name, pixels in (("clean", clean), ("noisy", clean + rng.normal(0, 8, clean.shape))):
        src = tmp_path / f"{name}.png"
        Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8)).save(src)
        sigmas.append(noise_sigma(kfops.io.load_image(src).pixels))
        res = CliRunner().invoke(
            cli, ["upscale", str(src), "-s", "4", "-o", str(tmp_path / "sr.png")]
        )
        assert res.exit_code == 0, res.output
        outputs.append(res.output)
    assert sigmas[0] < NOISE_NOTE < 0.025 < sigmas[1] < 0.04  # 8/255 ≈ 0.031
    assert "noise" not in outputs[0] and f"σ ≈ {sigmas[1]:.3f}" in outputs[1]
    base = kfops.presets.recon_config("cpu").final_weights(4)[1]
    for weight, sigma in zip(weights, sigmas, strict=True):
        assert weight == pytest.approx(base * (1 + (sigma / 0.025) ** 2), rel=1e-6)


def test_a_jpeg_input_is_announced_and_smoothed_more(tiny_presets, tmp_path, monkeypatch):
    """With final_jpeg_ref set, kf upscale reads the JPEG's luma table, adds its
    low-frequency step / q_r to the final step's TV-weight factor and names the quality;
    the same pixels from a PNG are left as they are."""
    from kfops.jpeg import quant_step

    weights = _spy_on_the_final_step(monkeypatch, final_jpeg_ref=0.025)
    pixels = _gaussian_lr(2.0).astype(np.uint8)
    src_jpg = tmp_path / "lr.jpg"
    Image.fromarray(pixels).save(src_jpg, quality=50)
    src_png = tmp_path / "lr.png"  # the decoded JPEG, stored losslessly: same pixels
    Image.fromarray(np.asarray(Image.open(src_jpg))).save(src_png)
    outputs = []
    for src in (src_png, src_jpg):
        res = CliRunner().invoke(
            cli, ["upscale", str(src), "-s", "4", "-o", str(tmp_path / "sr.png")]
        )
        assert res.exit_code == 0, res.output
        outputs.append(res.output)
    assert "JPEG" not in outputs[0] and "quality ≈ 50" in outputs[1]
    step = quant_step(kfops.io.load_image(src_jpg).jpeg_table)
    assert weights[1] == pytest.approx(weights[0] * (1 + step / 0.025), rel=1e-6)


def test_the_paper_preset_says_what_it_costs(tiny_presets, tmp_path, monkeypatch):
    for table in (kfops.presets.PRIOR_PRESETS, kfops.presets.RECON_PRESETS):
        monkeypatch.setitem(table, "paper", table["smoke"])
    src, out = _lr(tmp_path), tmp_path / "sr.png"
    args = ["upscale", str(src), "-s", "4", "-o", str(out), "--preset", "paper"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "preset paper (the published recipe): a 5-step prior" in res.output
    res = CliRunner().invoke(cli, [*args, "--time-budget", "60"])
    assert res.exit_code == 0 and "published recipe" not in res.output
    assert out.exists()


def test_the_time_budget_counts_from_the_start_of_kf(tiny_presets, tmp_path, monkeypatch):
    """Loading (here made 1 s slower) is inside the budget: the deadline handed to Phase 2
    is 0.95 × the budget after the command started, not after the image was read."""
    import time

    from kfops.reconstructor import Reconstructor

    load = kfops.io.load_image

    def slow_load(*args, **kwargs):
        time.sleep(1.0)
        return load(*args, **kwargs)

    seen = {}
    run = Reconstructor.run

    def spy(self, *args, **kwargs):
        seen["deadline"] = kwargs["deadline"]
        return run(self, *args, **kwargs)

    monkeypatch.setattr(kfops.io, "load_image", slow_load)
    monkeypatch.setattr(Reconstructor, "run", spy)
    src, out = _lr(tmp_path), tmp_path / "sr.png"
    t0 = time.monotonic()
    res = CliRunner().invoke(
        cli, ["upscale", str(src), "-s", "4", "-o", str(out), "--time-budget", "60"]
    )
    assert res.exit_code == 0, res.output
    assert 0 <= seen["deadline"] - t0 - 0.95 * 60 < 0.5
