"""kfops.bench and ``kf bench``: outputs, resuming, the method registry, CLI errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

import kfops
from kfcli.main import cli
from kfops import bench as B
from kfops import kernels as K
from kfops.errors import ImageError, KernelError, KfopsError
from kfops.metrics import psnr_y

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "butterfly.png"
METHODS = ["bicubic", "gt-backprojection"]


@pytest.fixture
def data(tmp_path):
    """Two 64x64 HR crops of the example and a folder with two kernels (box 2, L 8)."""
    hr_dir, k_dir = tmp_path / "hr", tmp_path / "kernels"
    hr_dir.mkdir()
    k_dir.mkdir()
    with Image.open(EXAMPLE) as im:
        im.crop((40, 40, 104, 104)).save(hr_dir / "a.png")
        im.crop((120, 100, 184, 164)).save(hr_dir / "b.png")
    (hr_dir / "notes.txt").write_text("not an image")
    K.save_kernel(K.box(2), k_dir / "box2.npy")
    K.save_kernel(K.l_shape(8), k_dir / "l8.npy")
    return hr_dir, k_dir


@pytest.fixture
def counted(monkeypatch):
    """Wrap the built-in methods so their calls are counted."""
    calls = {"n": 0}
    for name in METHODS:
        m = B.get_method(name)

        def fn(lr, scale, ctx, _f=m.fn):
            calls["n"] += 1
            return _f(lr, scale, ctx)

        monkeypatch.setitem(B.methods._METHODS, name, B.Method(name, fn, m.estimates_kernel))
    return calls


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_writes_outputs_and_resumes(data, tmp_path, counted):
    hr_dir, k_dir = data
    out = tmp_path / "out"
    rows = B.run_benchmark(hr_dir, k_dir, out, METHODS, scale=2, quiet=True)
    assert counted["n"] == 8 and len(rows) == 8
    table = _csv_rows(out / "results.csv")
    assert len(table) == 8
    assert list(table[0]) == list(B.RESULT_FIELDS)
    assert {(r["image"], r["kernel"], r["method"]) for r in table} == {
        (i, k, m) for i in ("a", "b") for k in ("box2", "l8") for m in METHODS
    }
    assert all(r["kernel_ncc"] == "" and r["scale"] == "2" for r in table)
    assert all(20 < float(r["psnr_y"]) < 40 and 0 < float(r["ssim_y"]) < 1 for r in table)
    # the true kernel helps: back-projection beats bicubic on every image and kernel
    by = {(r["image"], r["kernel"], r["method"]): float(r["psnr_y"]) for r in table}
    assert all(
        by[i, k, "gt-backprojection"] > by[i, k, "bicubic"] for i in "ab" for k in ("box2", "l8")
    )
    summary = (out / "summary.md").read_text()
    assert "| bicubic |" in summary and "| gt-backprojection |" in summary and "| l8 |" in summary
    for name in ("kernels.png", "crops.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.width > 100 and im.height > 50
    assert (out / "crops" / "a__box2__HR.png").exists()

    before = (out / "results.csv").read_bytes()
    again = B.run_benchmark(hr_dir, k_dir, out, METHODS, scale=2, quiet=True)
    assert counted["n"] == 8  # nothing recomputed
    assert (out / "results.csv").read_bytes() == before
    assert again == rows

    # an interrupted write (last line cut) is dropped and that job redone
    text = before.decode()
    lines = text.splitlines(keepends=True)
    (out / "results.csv").write_text("".join(lines[:-1]) + lines[-1][:10])
    B.run_benchmark(hr_dir, k_dir, out, METHODS, scale=2, quiet=True)
    assert counted["n"] == 9
    assert len(_csv_rows(out / "results.csv")) == 8


def test_bicubic_psnr_matches_direct_computation(data, tmp_path):
    hr_dir, k_dir = data
    rows = B.run_benchmark(hr_dir, k_dir, tmp_path / "out", ["bicubic"], scale=2, quiet=True)
    for image in ("a", "b"):
        hr = kfops.io.load_image(hr_dir / f"{image}.png").pixels
        lr = F.avg_pool2d(hr, 2)
        sr = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
        want = psnr_y(sr, hr)
        (got,) = [r["psnr_y"] for r in rows if r["image"] == image and r["kernel"] == "box2"]
        assert got == pytest.approx(want, abs=1e-5)


def test_kernel_estimating_method(data, tmp_path):
    hr_dir, k_dir = data

    def fake(lr, scale, ctx):
        assert set(ctx) >= {"gt_kernel", "seed"} and isinstance(ctx["seed"], int)
        k = torch.roll(F.pad(ctx["gt_kernel"], (2, 2, 2, 2)), 1, dims=1)  # a shifted copy
        return kfops.bicubic_upsample(lr, scale), k[None, None]

    B.register_method("test-fake", fake, estimates_kernel=True)
    try:
        out = tmp_path / "out"
        rows = B.run_benchmark(hr_dir, k_dir, out, ["bicubic", "test-fake"], 2, quiet=True)
        est = [r for r in rows if r["method"] == "test-fake"]
        assert len(est) == 4 and all(r["kernel_ncc"] == pytest.approx(1.0) for r in est)
        assert all(r["kernel_ncc"] is None for r in rows if r["method"] == "bicubic")
        saved = K.load_kernel(out / "kernels" / "a__l8__test-fake.npy")
        assert saved.shape == (12, 12)
        assert "1.000" in (out / "summary.md").read_text()
        with Image.open(out / "kernels.png") as im:
            tall = im.height
        B.run_benchmark(hr_dir, k_dir, tmp_path / "out2", ["bicubic"], 2, quiet=True)
        with Image.open(tmp_path / "out2" / "kernels.png") as im:
            assert im.height < tall  # one row less: no estimated kernels
    finally:
        B.unregister_method("test-fake")


@pytest.mark.parametrize("align", [True, False])
def test_kernels_are_aligned_before_synthesis(tmp_path, data, align):
    hr_dir, _ = data
    k_dir = tmp_path / "odd"
    k_dir.mkdir()
    K.save_kernel(K.gaussian(7, 1.0), k_dir / "g7.npy")  # odd support, centred: off at x2
    seen = []

    def spy(lr, scale, ctx):
        seen.append(K.center_of_mass(ctx["gt_kernel"]))
        return kfops.bicubic_upsample(lr, scale), None

    B.register_method("test-spy", spy)
    try:
        B.run_benchmark(
            hr_dir, k_dir, tmp_path / "out", ["test-spy"], 2, align_kernels=align, quiet=True
        )
    finally:
        B.unregister_method("test-spy")
    expected = 3.5 if align else 3.0  # kfops.kernel_inr.target_center(7, 2) = 3.5
    assert seen and all(c == pytest.approx((expected, expected), abs=1e-9) for c in seen)
    said = "bicubic-aligned grid" in (tmp_path / "out" / "summary.md").read_text()
    assert said is align


def test_registry_and_inputs(data, tmp_path):
    hr_dir, _ = data
    assert B.available_methods()[:2] == METHODS
    with pytest.raises(KfopsError, match="bicubic"):
        B.get_method("nope")
    with pytest.raises(KfopsError):
        B.register_method("bicubic", lambda lr, s, c: (lr, None))
    assert [p.name for p in B.list_images(hr_dir)] == ["a.png", "b.png"]
    assert len(B.list_images(hr_dir, limit=1)) == 1
    with pytest.raises(ImageError):
        B.list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError):
        B.list_images(tmp_path / "empty")
    ks = B.load_kernel_set("stress,gauss", 12)
    assert list(ks)[:3] == ["l_shape", "empty_square", "filled_square"] and len(ks) == 6
    assert {B.kernel_group(n) for n in ks} == {"stress", "gauss"}
    assert B.kernel_group("levin_k3") == "levin" and B.kernel_group("box2") == "other"
    with pytest.raises(KernelError):
        B.load_kernel_set("stress,nope")
    with pytest.raises(KernelError):
        B.load_kernel_set("stress,stress")
    x = torch.zeros(1, 3, 50, 70)
    assert B.center_crop(x, 512, 4).shape[-2:] == (48, 68)
    assert B.center_crop(x, 32, 3).shape[-2:] == (30, 30)
    assert B.center_crop(x, 0, 4).shape[-2:] == (48, 68)


def test_cli_bench(data, tmp_path):
    hr_dir, k_dir = data
    runner = CliRunner()
    out = tmp_path / "cli_out"
    args = ["bench", str(hr_dir), "--kernels", str(k_dir), "-s", "2", "--crop", "512"]
    args += ["--method", "bicubic", "--method", "gt-backprojection", "-o", str(out), "--quiet"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert len(_csv_rows(out / "results.csv")) == 8
    for name in ("summary.md", "kernels.png", "crops.png"):
        assert (out / name).is_file()
    ref = B.run_benchmark(hr_dir, k_dir, tmp_path / "api_out", METHODS, 2, 512, quiet=True)
    got = B.read_results(out / "results.csv")
    assert [(r["psnr_y"], r["ssim_y"]) for r in got] == [(r["psnr_y"], r["ssim_y"]) for r in ref]
    assert "bicubic-aligned grid" in (out / "summary.md").read_text()
    res = runner.invoke(cli, [*args[:-3], "-o", str(tmp_path / "kept"), "--no-align", "-q"])
    assert res.exit_code == 0, res.output
    assert "bicubic-aligned grid" not in (tmp_path / "kept" / "summary.md").read_text()


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        (["--method", "nope"], None, "unknown method 'nope'; known methods: bicubic"),
        (["--kernels", "nope"], KernelError.exit_code, "unknown kernel set"),
        (["--limit-images", "1", "-s", "9"], None, "--scale"),
    ],
)
def test_cli_bench_errors(data, tmp_path, extra, code, words):
    hr_dir, _ = data
    res = CliRunner().invoke(
        cli, ["bench", str(hr_dir), "--kernels", "stress", "-o", str(tmp_path / "o"), *extra]
    )
    assert res.exit_code != 0 and (code is None or res.exit_code == code)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kf: error:") and words in lines[0], lines


def test_cli_bench_empty_folder(tmp_path):
    (tmp_path / "hr").mkdir()
    args = ["bench", str(tmp_path / "hr"), "--kernels", "stress", "-o", str(tmp_path / "o")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == ImageError.exit_code
    assert res.output.strip().startswith("kf: error:") and "no images" in res.output
