"""The kf command line (CliRunner): outputs, and one clear line per bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import kfops
from kfcli.main import cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "butterfly.png"


@pytest.fixture
def runner():
    return CliRunner()


def _img(tmp_path: Path, name="in.png", size=(48, 40), mode="RGB") -> Path:
    rng = np.random.default_rng(0)
    arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    p = tmp_path / name
    Image.fromarray(arr).convert(mode).save(p)
    return p


def test_degrade_matches_library(runner, tmp_path):
    src = _img(tmp_path)
    out = tmp_path / "lr.png"
    res = runner.invoke(
        cli, ["degrade", str(src), "--kernel", "gauss:1.5:8", "-s", "4", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    got = kfops.io.load_image(out).pixels
    ref = kfops.degrade(kfops.io.load_image(src).pixels, kfops.kernels.gaussian(8, 1.5).float(), 4)
    assert got.shape == (1, 3, 10, 12)
    assert (got - ref.clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    ("spec", "kernel"),
    [
        ("disk:3:8", lambda: kfops.kernels.disk(8, 3.0)),
        ("motion:6,0.4:8", lambda: kfops.kernels.linear_motion(8, 6.0, 0.4)),
    ],
)
def test_degrade_with_defocus_and_motion_generators(runner, tmp_path, spec, kernel):
    src = _img(tmp_path)
    out = tmp_path / "lr.png"
    res = runner.invoke(cli, ["degrade", str(src), "--kernel", spec, "-s", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    ref = kfops.degrade(kfops.io.load_image(src).pixels, kernel().float(), 4).clamp(0, 1)
    assert (kfops.io.load_image(out).pixels - ref).abs().max() <= 0.5 / 255 + 1e-6
    bad_args = [
        "degrade",
        str(src),
        "--kernel",
        "disk:9:8",
        "-s",
        "4",
        "-o",
        str(tmp_path / "x.png"),
    ]
    bad = runner.invoke(cli, bad_args)
    assert bad.exit_code != 0 and "does not fit" in bad.output and "Traceback" not in bad.output


def test_degrade_notes_and_aligns_an_off_grid_kernel(tmp_path):
    """An odd kernel at an even scale is half a pixel off the bicubic-aligned grid: kf
    degrade says so and uses it as given; --align moves it (kfops.kernels.align_kernel)."""
    src, runner = _img(tmp_path), CliRunner()
    hr = kfops.io.load_image(src).pixels
    k = kfops.kernels.gaussian(7, 1.5).float()
    aligned = kfops.kernels.align_kernel(k, 4)
    for extra, kernel, noted in (([], k, True), (["--align"], aligned, False)):
        out = tmp_path / f"lr{len(extra)}.png"
        args = ["degrade", str(src), "--kernel", "gauss:1.5:7", "-s", "4", "-o", str(out)]
        res = runner.invoke(cli, args + extra)
        assert res.exit_code == 0, res.output
        assert ("(-0.50, -0.50) px" in res.stderr) is noted
        ref = kfops.degrade(hr, kernel, 4).clamp(0, 1)
        assert (kfops.io.load_image(out).pixels - ref).abs().max() <= 0.5 / 255 + 1e-6


def test_degrade_with_an_ordinary_resize_filter(runner, tmp_path):
    """--kernel bicubic is the blur of PIL's bicubic downscale by -s."""
    src = _img(tmp_path, size=(48, 48))
    out = tmp_path / "lr.png"
    res = runner.invoke(
        cli, ["degrade", str(src), "--kernel", "bicubic", "-s", "4", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    got = kfops.io.load_image(out).pixels[0].numpy()
    rgb = np.asarray(Image.open(src), dtype=np.float32) / 255
    ref = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(rgb[..., c])).resize((12, 12), Image.BICUBIC)
            )
            for c in range(3)
        ]
    )
    assert np.abs(got - ref.clip(0, 1))[:, 2:-2, 2:-2].max() <= 0.5 / 255 + 1e-6


def test_degrade_kernel_file_and_backproject(runner, tmp_path):
    kfile = tmp_path / "k.npy"
    kfops.kernels.save_kernel(kfops.kernels.l_shape(12), kfile)
    lr = tmp_path / "lr.png"
    sr = tmp_path / "sr.png"
    assert (
        runner.invoke(
            cli, ["degrade", str(EXAMPLE), "--kernel", str(kfile), "-s", "2", "-o", str(lr), "-q"]
        ).exit_code
        == 0
    )
    res = runner.invoke(
        cli, ["backproject", str(lr), "--kernel", str(kfile), "-s", "2", "-o", str(sr)]
    )
    assert res.exit_code == 0, res.output
    assert Image.open(sr).size == (256, 256)


def test_backproject_refines_under_tv_by_default(runner, tmp_path):
    """The default output (A† then the TV refinement of kf upscale's final step) is closer
    to the original than the plain back-projection (--refine-steps 0) on a photo."""
    lr = tmp_path / "lr.png"
    args = ["--kernel", "l_shape", "-s", "4", "-q"]
    assert runner.invoke(cli, ["degrade", str(EXAMPLE), *args, "-o", str(lr)]).exit_code == 0
    hr = kfops.io.load_image(EXAMPLE).pixels
    psnr = {}
    for steps in ("0", "100"):
        out = tmp_path / f"sr{steps}.png"
        res = runner.invoke(
            cli, ["backproject", str(lr), *args, "-o", str(out), "--refine-steps", steps]
        )
        assert res.exit_code == 0, res.output
        psnr[steps] = kfops.metrics.psnr_y(kfops.io.load_image(out).pixels, hr)
    assert psnr["100"] > psnr["0"] + 0.5, psnr


def test_grey_and_alpha_are_kept(runner, tmp_path):
    src = _img(tmp_path, "g.png", mode="LA")
    out = tmp_path / "o.png"
    res = runner.invoke(cli, ["degrade", str(src), "--kernel", "box:2", "-s", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert Image.open(out).mode == "LA" and Image.open(out).size == (24, 20)


@pytest.mark.parametrize(
    "args,code,words",
    [
        (
            ["degrade", "{missing}", "--kernel", "box:2", "-s", "2", "-o", "{out}"],
            6,
            "no such file",
        ),
        (["degrade", "{text}", "--kernel", "box:2", "-s", "2", "-o", "{out}"], 6, "not an image"),
        (["degrade", "{empty}", "--kernel", "box:2", "-s", "2", "-o", "{out}"], 6, "empty"),
        (["degrade", "{dir}", "--kernel", "box:2", "-s", "2", "-o", "{out}"], 6, "folder"),
        (["degrade", "{img}", "--kernel", "box:2", "-s", "0", "-o", "{out}"], 4, "between 1 and 8"),
        (["degrade", "{img}", "--kernel", "box:2", "-s", "9", "-o", "{out}"], 4, "between 1 and 8"),
        (["degrade", "{img}", "--kernel", "{nan}", "-s", "2", "-o", "{out}"], 5, "NaN"),
        (["degrade", "{img}", "--kernel", "{zeros}", "-s", "2", "-o", "{out}"], 5, "zero"),
        (["degrade", "{img}", "--kernel", "{k3d}", "-s", "2", "-o", "{out}"], 5, "2-D"),
        (
            ["degrade", "{img}", "--kernel", "box:2", "-s", "2", "-o", "{nodir}"],
            7,
            "does not exist",
        ),
        (["degrade", "{img}", "--kernel", "box:2", "-s", "2", "-o", "{badext}"], 7, "extension"),
        (["degrade", "{tiny}", "--kernel", "box:2", "-s", "4", "-o", "{out}"], 6, "smaller"),
        (["degrade", "{img}", "--kernel", "box:80", "-s", "2", "-o", "{out}"], 5, "larger than"),
        (["backproject", "{img}", "--kernel", "{big}", "-s", "2", "-o", "{out}"], 5, "larger"),
        (["degrade", "{trunc}", "--kernel", "box:2", "-s", "2", "-o", "{out}"], 6, "truncated"),
        (["upscale", "{tiny}", "-s", "4", "-o", "{out}"], 6, "minimum 16"),
        (["upscale", "{img}", "-s", "5", "-o", "{out}"], 4, "2, 3 or 4"),
        (["upscale", "{img}", "-s", "4", "-o", "{out}", "--save-kernel", "{badext}"], 7, ".npy"),
        (["kernel", "{img}", "-s", "4", "-o", "{badext}"], 7, ".npy or .png"),
    ],
)
def test_bad_input_gives_one_line_and_no_output(runner, tmp_path, args, code, words):
    (tmp_path / "d").mkdir()
    (tmp_path / "t.txt").write_text("hello")
    (tmp_path / "e.png").write_bytes(b"")
    np.save(tmp_path / "nan.npy", np.full((3, 3), np.nan))
    np.save(tmp_path / "zeros.npy", np.zeros((3, 3)))
    np.save(tmp_path / "k3d.npy", np.ones((2, 3, 3)))
    np.save(tmp_path / "big.npy", np.ones((70, 70)))
    good = _img(tmp_path, "good.png")
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    names = {
        "missing": tmp_path / "nope.png",
        "text": tmp_path / "t.txt",
        "empty": tmp_path / "e.png",
        "dir": tmp_path / "d",
        "img": _img(tmp_path),
        "nan": tmp_path / "nan.npy",
        "zeros": tmp_path / "zeros.npy",
        "k3d": tmp_path / "k3d.npy",
        "big": tmp_path / "big.npy",
        "trunc": tmp_path / "trunc.png",
        "out": tmp_path / "out.png",
        "nodir": tmp_path / "no" / "out.png",
        "badext": tmp_path / "out.xyz",
        "tiny": _img(tmp_path, "tiny.png", size=(3, 3)),
    }
    argv = [a.format(**names) for a in args]
    res = runner.invoke(cli, argv)
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kf: error:") and words in lines[0], lines
    assert "Traceback" not in res.output
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.xyz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_torch_is_not_imported_for_help():
    import subprocess
    import sys

    code = "import sys, kfcli.main; assert 'torch' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
    assert torch.__version__  # torch itself is importable


@pytest.mark.parametrize("users", [None, "50"])
def test_kf_shortens_the_openmp_spin_before_torch_loads_unless_the_user_set_it(users):
    import subprocess
    import sys

    import kfcli

    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if users is not None:
        env["GOMP_SPINCOUNT"] = users
    code = (
        "import os, sys, kfcli.main; assert 'torch' not in sys.modules; "
        "print(os.environ['GOMP_SPINCOUNT'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.stdout.strip() == (users or kfcli.OMP_SPIN), out.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder(runner, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    res = runner.invoke(
        cli,
        ["degrade", str(_img(tmp_path)), "--kernel", "box:2", "-s", "2", "-o", str(ro / "o.png")],
    )
    assert res.exit_code == 7 and "not writable" in res.output
    assert not list(ro.iterdir())


@pytest.mark.parametrize(
    "argv,words",
    [
        (["upscale", "x.png", "-s", "2.5", "-o", "o.png"], "not a valid integer"),
        (["upscale", "x.png", "-o", "o.png"], "Missing option"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_usage_errors_are_one_line_too(tmp_path, argv, words):
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "kfcli.main", *argv], capture_output=True, text=True, cwd=tmp_path
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kf: error:") and words in lines[0], lines


def test_version_and_help_exit_zero(tmp_path):
    import subprocess
    import sys

    for flag in ("--version", "--help"):
        res = subprocess.run([sys.executable, "-m", "kfcli.main", flag], capture_output=True)
        assert res.returncode == 0 and res.stdout
