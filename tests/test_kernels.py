"""Tests for kfops.kernels: validation, I/O, centring, resampling and generators."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from kfops import kernels as K
from kfops.errors import KernelError, OutputError

LEVIN_SHAPES = [19, 17, 15, 27, 13, 21, 23, 23]  # documented in shared/data/SOURCES.md


def _data_dir() -> Path:
    env = os.environ.get("KFOPS_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def levin_dir() -> Path:
    d = _data_dir() / "kernels" / "levin09"
    if not (d / "levin09_k1.npy").is_file():
        pytest.skip(f"Levin kernel data not found in {d}")
    return d


def moments(k: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """COM (row, col) and the 2x2 covariance in (x=col, y=row) order, computed independently."""
    a = k.double().numpy()
    a = a / a.sum()
    rows, cols = np.indices(a.shape)
    cy, cx = (a * rows).sum(), (a * cols).sum()
    dy, dx = rows - cy, cols - cx
    cov = np.array(
        [[(a * dx * dx).sum(), (a * dx * dy).sum()], [(a * dx * dy).sum(), (a * dy * dy).sum()]]
    )
    return float(cy), float(cx), cov


def assert_kernel(k: torch.Tensor, shape: tuple[int, int] | None = None) -> None:
    assert k.dim() == 2
    if shape is not None:
        assert tuple(k.shape) == shape
    assert torch.isfinite(k).all()
    assert float(k.min()) >= 0.0
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-6 if k.dtype == torch.float32 else 1e-12)


def assert_centred(k: torch.Tensor, tol: float = 1e-9) -> None:
    cy, cx, _ = moments(k)
    assert abs(cy - (k.shape[0] - 1) / 2) <= tol
    assert abs(cx - (k.shape[1] - 1) / 2) <= tol


def off_centre_kernel() -> torch.Tensor:
    k = torch.zeros(21, 21, dtype=torch.float64)
    k[3:7, 4:12] = 1.0
    k[5, 14] = 3.0
    k[9, 6] = 0.5
    return k / k.sum()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (torch.ones(3, 3, 3), "must be 2-D, got shape (3, 3, 3)"),
        (torch.ones(5), "must be 2-D, got shape (5,)"),
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), "NaN or inf"),
        (torch.tensor([[1.0, float("inf")], [0.0, 1.0]]), "NaN or inf"),
        (torch.zeros(4, 4), "all zeros"),
        (torch.tensor([[1.0, -3.0], [0.0, 1.0]]), "it must have a positive sum"),
        (torch.tensor([[1.0, -1.0], [0.0, 0.0]]), "it must have a positive sum"),
        (torch.zeros(0, 3), "empty"),
        (np.ones((3, 3)), "must be a torch.Tensor"),
        (torch.ones(2, 2, dtype=torch.complex64), "real-valued"),
        (torch.ones(2, 2, dtype=torch.bool), "real-valued"),
    ],
)
def test_validate_kernel_rejects(bad: object, words: str) -> None:
    with pytest.raises(KernelError) as info:
        K.validate_kernel(bad)  # type: ignore[arg-type]
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_validate_kernel_message_names_subject_and_sum() -> None:
    with pytest.raises(KernelError) as info:
        K.validate_kernel(torch.tensor([[0.5, -1.0]]), name="psf")
    assert str(info.value).startswith("psf sums to -0.5")


def test_validate_kernel_returns_input_unchanged() -> None:
    k = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    assert K.validate_kernel(k) is k


def test_normalize() -> None:
    k = K.normalize(torch.tensor([[1, 3], [0, 4]]))
    assert k.dtype == torch.float64
    assert torch.allclose(k, torch.tensor([[0.125, 0.375], [0.0, 0.5]], dtype=torch.float64))
    with pytest.raises(KernelError, match="all zeros"):
        K.normalize(torch.zeros(2, 2))


# --------------------------------------------------------------------------- save / load


def test_npy_roundtrip(tmp_path: Path) -> None:
    k = K.camera_shake(24, torch.Generator().manual_seed(5))
    path = tmp_path / "k.npy"
    K.save_kernel(k, path)
    assert np.load(path).dtype == np.float32
    back = K.load_kernel(path)
    assert back.dtype == torch.float64
    assert torch.allclose(back, k, rtol=1e-6, atol=1e-9)
    assert [p.name for p in tmp_path.iterdir()] == ["k.npy"]  # no temp file left


@pytest.mark.parametrize("magnify", [1, 3])
def test_png_roundtrip(tmp_path: Path, magnify: int) -> None:
    k = K.anisotropic_gaussian(17, 2.0, 4.0, 0.7)
    path = tmp_path / "k.png"
    K.save_kernel(k, path, magnify=magnify)
    with Image.open(path) as img:
        assert img.mode == "L"
        assert img.size == (17 * magnify, 17 * magnify)
        assert np.asarray(img).max() == 255
    back = K.load_kernel(path)
    if magnify > 1:
        back = back[::magnify, ::magnify]
    rel = (back / back.max() - k / k.max()).abs().max().item()
    assert rel <= 0.5 / 255 + 1e-12  # 8-bit quantisation of k / k.max()
    if magnify == 1:
        assert_kernel(back, (17, 17))


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "k.npy"
    K.save_kernel(K.box(3), path)
    K.save_kernel(K.box(5), path)
    assert K.load_kernel(path).shape == (5, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npy"]


def test_save_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        K.save_kernel(K.box(3), tmp_path / "nope" / "k.npy")
    with pytest.raises(OutputError, match=r"unknown kernel file extension '\.txt'"):
        K.save_kernel(K.box(3), tmp_path / "k.txt")
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        K.save_kernel(K.box(3), tmp_path / "dir.npy")
    with pytest.raises(OutputError, match="magnify"):
        K.save_kernel(K.box(3), tmp_path / "k.png", magnify=0)
    with pytest.raises(KernelError, match="NaN or inf"):
        K.save_kernel(torch.full((3, 3), float("nan")), tmp_path / "k.npy")
    assert [p.name for p in tmp_path.iterdir()] == ["dir.npy"]


def test_load_rgb_and_16bit_images(tmp_path: Path) -> None:
    base = np.zeros((9, 9))
    base[2:7, 3:5] = 1.0
    base[4, 6] = 0.5
    rgb = np.zeros((9, 9, 3), dtype=np.uint8)
    rgb[..., 0] = np.round(base * 200).astype(np.uint8)
    rgb[..., 1] = np.round(base * 100).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    lum = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1]
    k = K.load_kernel(tmp_path / "rgb.png")
    assert torch.allclose(k, torch.from_numpy(lum / lum.sum()), atol=1e-12)

    a16 = np.round(base * 60000).astype(np.uint16)
    Image.fromarray(a16).save(tmp_path / "k16.png")
    with Image.open(tmp_path / "k16.png") as img:
        assert img.mode.startswith("I")
    k16 = K.load_kernel(tmp_path / "k16.png")
    assert torch.allclose(k16, torch.from_numpy(a16 / a16.sum()), atol=1e-12)

    Image.fromarray(np.round(base * 255).astype(np.uint8)).save(tmp_path / "k.jpg", quality=95)
    kj = K.load_kernel(tmp_path / "k.jpg")
    assert tuple(kj.shape) == (9, 9)
    assert float(kj.sum()) == pytest.approx(1.0)


def test_load_mat_v5(tmp_path: Path) -> None:
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    b = np.eye(5)
    scipy.io.savemat(tmp_path / "named.mat", {"sf": 4.0, "other": b, "kernel": a})
    assert torch.allclose(K.load_kernel(tmp_path / "named.mat"), torch.from_numpy(a / a.sum()))
    # no preferred name: first 2-D numeric variable with more than one element (skips 1x1 'sf')
    scipy.io.savemat(tmp_path / "first.mat", {"sf": 2.0, "psf": b})
    assert torch.allclose(K.load_kernel(tmp_path / "first.mat"), torch.from_numpy(b / 5))
    scipy.io.savemat(tmp_path / "none.mat", {"name": "abc"})
    with pytest.raises(KernelError, match="no 2-D numeric variable"):
        K.load_kernel(tmp_path / "none.mat")


def test_load_kernel_stack_v5_cell_and_3d(tmp_path: Path) -> None:
    ks = [np.ones((3, 3)), np.arange(1.0, 21.0).reshape(4, 5), np.eye(2)]
    cell = np.empty((1, 3), dtype=object)
    for i, a in enumerate(ks):
        cell[0, i] = a
    scipy.io.savemat(tmp_path / "cell.mat", {"kernels": cell})
    got = K.load_kernel_stack(tmp_path / "cell.mat")
    assert len(got) == 3
    for g, a in zip(got, ks, strict=True):
        assert torch.allclose(g, torch.from_numpy(a / a.sum()))
    with pytest.raises(KernelError, match="load_kernel_stack"):
        K.load_kernel(tmp_path / "cell.mat")

    stack = np.random.default_rng(0).random((6, 6, 4))  # MATLAB (Kh, Kw, N)
    scipy.io.savemat(tmp_path / "stack.mat", {"k": stack})
    got = K.load_kernel_stack(tmp_path / "stack.mat")
    assert len(got) == 4
    assert torch.allclose(got[2], torch.from_numpy(stack[:, :, 2] / stack[:, :, 2].sum()))

    np.save(tmp_path / "stack.npy", np.moveaxis(stack, -1, 0))  # numpy (N, Kh, Kw)
    got_npy = K.load_kernel_stack(tmp_path / "stack.npy")
    assert all(torch.allclose(x, y) for x, y in zip(got, got_npy, strict=True))


def _write_v73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A minimal MATLAB v7.3-style file: 512-byte header block, arrays stored transposed."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in variables.items():
            d = f.create_dataset(name, data=np.ascontiguousarray(arr.T))
            d.attrs["MATLAB_class"] = np.bytes_(b"double")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, written by test_kernels".ljust(116))


def test_load_mat_v73(tmp_path: Path) -> None:
    a = np.arange(1.0, 13.0).reshape(3, 4)
    path = tmp_path / "v73.mat"
    try:
        import h5py  # noqa: F401
    except ImportError:
        path.write_bytes(b"MATLAB 7.3 MAT-file".ljust(128) + b"\0" * 600)
        with pytest.raises(KernelError, match="install h5py"):
            K.load_kernel(path)
        return
    _write_v73(path, {"f": a})
    k = K.load_kernel(path)
    assert tuple(k.shape) == (3, 4)  # transposed back to MATLAB orientation
    assert torch.allclose(k, torch.from_numpy(a / a.sum()))


def test_load_mat_v73_without_h5py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "v73.mat"
    path.write_bytes(b"MATLAB 7.3 MAT-file".ljust(128) + b"\0" * 600)
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(KernelError, match="install h5py") as info:
        K.load_kernel(path)
    assert str(path) in str(info.value)


def test_load_errors(tmp_path: Path) -> None:
    cases: list[tuple[Path, str]] = []
    cases.append((tmp_path / "missing.npy", "not found"))
    (tmp_path / "k.xyz").write_text("1 2 3")
    cases.append((tmp_path / "k.xyz", "unknown kernel file extension"))
    (tmp_path / "garbage.npy").write_bytes(b"not an npy file")
    cases.append((tmp_path / "garbage.npy", "cannot read kernel file"))
    (tmp_path / "garbage.png").write_bytes(b"not a png")
    cases.append((tmp_path / "garbage.png", "cannot read kernel file"))
    (tmp_path / "garbage.mat").write_bytes(b"\0" * 300)
    cases.append((tmp_path / "garbage.mat", "cannot read kernel file"))
    np.save(tmp_path / "three.npy", np.ones((3, 3, 3)))
    cases.append((tmp_path / "three.npy", "must be 2-D, got shape (3, 3, 3)"))
    np.save(tmp_path / "nan.npy", np.full((3, 3), np.nan))
    cases.append((tmp_path / "nan.npy", "NaN or inf"))
    np.save(tmp_path / "zero.npy", np.zeros((3, 3)))
    cases.append((tmp_path / "zero.npy", "all zeros"))
    np.save(tmp_path / "neg.npy", -np.ones((3, 3)))
    cases.append((tmp_path / "neg.npy", "positive sum"))
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    cases.append((tmp_path / "text.npy", "not a real numeric array"))
    (tmp_path / "dir.npy").mkdir()
    cases.append((tmp_path / "dir.npy", "not a file"))
    for path, words in cases:
        with pytest.raises(KernelError) as info:
            K.load_kernel(path)
        msg = str(info.value)
        assert words in msg, (path, msg)
        assert str(path) in msg, msg
        assert "\n" not in msg


# --------------------------------------------------------------------------- real data


def test_load_levin_npy(levin_dir: Path) -> None:
    for i, n in enumerate(LEVIN_SHAPES, start=1):
        k = K.load_kernel(levin_dir / f"levin09_k{i}.npy")
        assert_kernel(k, (n, n))


def test_load_levin_mat_stack(levin_dir: Path) -> None:
    mat = levin_dir / "Levin09.mat"
    if not mat.is_file():
        pytest.skip(f"{mat} not found")
    try:
        import h5py  # noqa: F401
    except ImportError:
        with pytest.raises(KernelError, match="install h5py"):
            K.load_kernel_stack(mat)
        return
    stack = K.load_kernel_stack(mat)
    assert len(stack) == 8
    for i, k in enumerate(stack, start=1):
        ref = K.load_kernel(levin_dir / f"levin09_k{i}.npy")  # converted in MATLAB orientation
        assert k.shape == ref.shape
        assert (k - ref).abs().max().item() < 1e-7
    # the kernels are not symmetric, so the orientation check above is meaningful
    assert (stack[0] - stack[0].T).abs().max().item() > 1e-2


# --------------------------------------------------------------------------- geometry


def test_center_of_mass() -> None:
    k = torch.zeros(5, 7, dtype=torch.float64)
    k[1, 2] = 3.0
    k[4, 6] = 1.0
    assert K.center_of_mass(k) == pytest.approx((1.75, 3.0))
    with pytest.raises(KernelError, match="2-D"):
        K.center_of_mass(torch.ones(3))


def test_shift_kernel_moves_com_exactly() -> None:
    k = K.pad_to(K.gaussian(15, 2.0), 25)  # zero border of 5 px: nothing leaves the array
    for dy, dx in [(1.3, -2.7), (0.0, 0.5), (-3.0, 4.0), (0.25, 0.0), (-4.99, 4.99)]:
        s = K.shift_kernel(k, dy, dx)
        cy, cx, _ = moments(s)
        assert (cy, cx) == pytest.approx((12 + dy, 12 + dx), abs=1e-12)
        assert float(s.sum()) == pytest.approx(1.0, abs=1e-12)
        assert float(s.min()) >= 0.0
    small = torch.zeros(9, 9, dtype=torch.float64)
    small[4, 4] = 1.0
    s = K.shift_kernel(small, 1.25, -0.5)
    assert moments(s)[:2] == pytest.approx((5.25, 3.5), abs=1e-12)


def test_shift_kernel_mass_leaving() -> None:
    k = torch.zeros(5, 5, dtype=torch.float64)
    k[2, 4] = 0.5
    k[2, 2] = 0.5
    s = K.shift_kernel(k, 0.0, 0.5)  # half of the right pixel leaves
    assert float(s.sum()) == pytest.approx(0.75)  # documented: not renormalised
    with pytest.raises(KernelError, match="outside"):
        K.shift_kernel(k, 0.0, 10.0)
    with pytest.raises(KernelError, match="finite"):
        K.shift_kernel(k, float("nan"), 0.0)


@pytest.mark.parametrize("size", [None, 21, 16, (15, 24)])
def test_recenter_off_centre(size: int | tuple[int, int] | None) -> None:
    k = off_centre_kernel()
    cy, cx, _ = moments(k)
    assert abs(cy - 10) > 3 and abs(cx - 10) > 0.5  # really off-centre
    r = K.recenter(k, size)
    expected = (21, 21) if size is None else (size, size) if isinstance(size, int) else size
    assert_kernel(r, expected)
    assert_centred(r, 1e-9)
    assert torch.count_nonzero(r) >= torch.count_nonzero(k)  # no wrap-around loss of pixels


def test_recenter_with_clipping() -> None:
    # Broad kernel whose support reaches the border: centring in place must clip some mass.
    k = K.shift_kernel(K.anisotropic_gaussian(24, 5.0, 2.0, 0.4), 4.3, -6.6)
    k = k / k.sum()
    r = K.recenter(k)
    assert_kernel(r, (24, 24))
    assert_centred(r, 1e-9 * 24)  # achieved tolerance for clipped kernels: 1e-9 * K px
    r = K.recenter(k, 11)
    assert_kernel(r, (11, 11))
    assert_centred(r, 1e-9 * 11)


def test_recenter_keeps_dtype_and_centred_is_fixed_point() -> None:
    g = K.gaussian(15, 1.5)
    assert torch.allclose(K.recenter(g), g, atol=1e-15)
    r32 = K.recenter(off_centre_kernel().float())
    assert r32.dtype == torch.float32
    assert_centred(r32, 1e-4)


def _ramp_reading(k: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each interior LR pixel of ``degrade(ramp, k, scale)`` reads a linear ramp (HR
    rows, cols; any blur of a ramp is the ramp at the kernel's COM), and where a
    bicubic-aligned grid puts its centre: s*j + (s - 1)/2."""
    from kfops import degrade

    n = 12 * scale + 2 * k.shape[0]
    rows, cols = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    hr = torch.stack((rows, cols)).to(torch.float64)[None] / n
    lr = degrade(hr, k.to(torch.float64), scale, "reflect")[0] * n
    m = k.shape[0] // scale + 2  # LR pixels whose taps stay inside the image
    j = torch.arange(m, lr.shape[-1] - m, dtype=torch.float64)
    read = torch.stack((lr[0, m:-m, m], lr[1, m, m:-m]))
    return read, torch.stack((scale * j + (scale - 1) / 2,) * 2)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [7, 8, 18, 19])
def test_align_kernel_makes_degrade_bicubic_aligned(scale: int, size: int) -> None:
    g = torch.Generator().manual_seed(10 * size + scale)
    k = torch.rand(size, size, generator=g, dtype=torch.float64) ** 4
    k[: size // 3] *= 0.1  # lopsided: the COM is well off the array centre
    a = K.align_kernel(k, scale)
    assert_kernel(a, (size, size))
    read, aligned = _ramp_reading(a, scale)
    assert torch.allclose(read, aligned, atol=1e-9)
    assert not torch.allclose(_ramp_reading(k / k.sum(), scale)[0], aligned, atol=0.1)


@pytest.mark.parametrize(("size", "scale", "offset"), [(18, 3, -0.5), (19, 4, -0.5), (24, 4, 0.0)])
def test_align_kernel_centred_kernels(size: int, scale: int, offset: float) -> None:
    g = K.gaussian(size, 2.0)
    read, aligned = _ramp_reading(g, scale)
    assert torch.allclose(read - aligned, torch.full_like(read, offset), atol=1e-9)
    a = K.align_kernel(g, scale)
    if offset == 0.0:
        assert torch.equal(a, g / g.sum())  # already aligned: left as it is
    else:
        assert torch.allclose(_ramp_reading(a, scale)[0], aligned, atol=1e-9)
    assert K.align_kernel(g.float(), scale).dtype == torch.float32
    with pytest.raises(KernelError, match="scale"):
        K.align_kernel(g, 0)


def test_fit_pad_crop() -> None:
    k = off_centre_kernel()
    p = K.pad_to(k, 26)
    assert tuple(p.shape) == (26, 26)
    assert torch.equal(p[2:23, 2:23], k)
    assert torch.equal(K.crop_to(p, 21, normalize=False), k)
    c = K.crop_to(k, (9, 12))
    assert tuple(c.shape) == (9, 12)
    assert float(c.sum()) == pytest.approx(1.0)
    f = K.fit_to(k, (30, 8))
    assert tuple(f.shape) == (30, 8)
    assert float(f.sum()) == pytest.approx(1.0)
    with pytest.raises(KernelError, match="cannot pad"):
        K.pad_to(k, 5)
    with pytest.raises(KernelError, match="cannot crop"):
        K.crop_to(k, 30)
    with pytest.raises(KernelError, match="positive integer"):
        K.fit_to(k, 0)
    corner = torch.zeros(9, 9, dtype=torch.float64)
    corner[0, 0] = 1.0
    with pytest.raises(KernelError, match="all zeros"):
        K.crop_to(corner, 3)


# --------------------------------------------------------------------------- resampling


@pytest.mark.parametrize(("sigma", "k_size", "new_size"), [(4.0, 33, 17), (2.0, 17, 33)])
def test_resize_scales_second_moments(sigma: float, k_size: int, new_size: int) -> None:
    g = K.gaussian(k_size, sigma)
    r = K.resize_kernel(g, new_size)
    assert_kernel(r, (new_size, new_size))
    assert_centred(r, 1e-9)
    _, _, cov_old = moments(g)
    _, _, cov = moments(r)
    s = new_size / k_size
    for axis in (0, 1):
        got = math.sqrt(cov[axis, axis])
        assert got == pytest.approx(sigma * s, rel=0.10)  # plain scaling, +-10%
        documented = math.sqrt(s**2 * (cov_old[axis, axis] + 1 / 6) + 1 / 12)
        assert got == pytest.approx(documented, rel=0.01)
    assert abs(cov[0, 1]) < 1e-9


def test_resize_anisotropic_keeps_covariance_shape() -> None:
    g = K.anisotropic_gaussian(41, 5.0, 2.0, 0.6)
    r = K.resize_kernel(g, 24)
    _, _, c0 = moments(g)
    _, _, c1 = moments(r)
    s2 = (24 / 41) ** 2
    assert c1[0, 1] == pytest.approx(c0[0, 1] * s2, rel=0.05)
    assert c1[0, 0] == pytest.approx(c0[0, 0] * s2, rel=0.10)


def test_resize_keeps_relative_com_and_center_option() -> None:
    k = off_centre_kernel()
    cy, cx, _ = moments(k)
    for n in (12, 24, (30, 16)):
        r = K.resize_kernel(k, n)
        h, w = (n, n) if isinstance(n, int) else n
        assert_kernel(r, (h, w))
        ry, rx, _ = moments(r)
        assert (ry + 0.5) / h == pytest.approx((cy + 0.5) / 21, abs=1e-9)
        assert (rx + 0.5) / w == pytest.approx((cx + 0.5) / 21, abs=1e-9)
        rc = K.resize_kernel(k, n, center=True)
        assert_kernel(rc, (h, w))
        assert_centred(rc, 1e-9)
    assert torch.allclose(K.resize_kernel(k, 21), k)  # same size: unchanged


def test_resize_clips_negatives() -> None:
    k = K.gaussian(15, 2.0)
    k[0, 0] = -0.01
    r = K.resize_kernel(k, 9)
    assert_kernel(r, (9, 9))


# --------------------------------------------------------------------------- generators


@pytest.mark.parametrize(
    "make",
    [
        lambda: K.gaussian(24, 2.0),
        lambda: K.gaussian((13, 20), 0.8),
        lambda: K.anisotropic_gaussian(24, 1.5, 4.0, 0.3),
        lambda: K.anisotropic_gaussian(17, 3.0, 1.0, -2.0),
        lambda: K.box(5),
        lambda: K.box((3, 4)),
        lambda: K.l_shape(24),
        lambda: K.l_shape(17),
        lambda: K.empty_square(24),
        lambda: K.empty_square(9),
        lambda: K.filled_square(24),
        lambda: K.filled_square(17),
        lambda: K.camera_shake(24, torch.Generator().manual_seed(0)),
        lambda: K.camera_shake(15, torch.Generator().manual_seed(1), length=30.0),
        lambda: K.camera_shake(24, torch.Generator().manual_seed(2), length=0.0),
        lambda: K.disk(24, 5.0),
        lambda: K.disk((13, 20), 2.3),
        lambda: K.disk(9, 0.2),
        lambda: K.linear_motion(24, 15.0, 0.5),
        lambda: K.linear_motion((13, 24), 20.0, 0.0),
        lambda: K.linear_motion(17, 9.5, -2.2),
        lambda: K.linear_motion(24, 0.0),
    ],
)
def test_generators_are_valid_centred_kernels(make: Callable[[], torch.Tensor]) -> None:
    k = make()
    assert k.dtype == torch.float64
    assert_kernel(k)
    assert_centred(k, 1e-9)


def test_generator_dtype() -> None:
    assert K.gaussian(7, 1.0, dtype=torch.float32).dtype == torch.float32
    assert K.box(3, dtype=torch.float32).dtype == torch.float32
    k = K.camera_shake(16, torch.Generator().manual_seed(0), dtype=torch.float32)
    assert k.dtype == torch.float32
    assert_kernel(k, (16, 16))
    assert K.l_shape(24, dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("theta", [0.0, 0.3, 1.1, 2.0, -0.7, 3.0])
def test_anisotropic_gaussian_principal_axis(theta: float) -> None:
    k = K.anisotropic_gaussian(41, 5.0, 1.5, theta)
    _, _, cov = moments(k)  # (x=col, y=row)
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, 1]
    angle = math.atan2(major[1], major[0])
    diff = (angle - theta + math.pi / 2) % math.pi - math.pi / 2  # axis: modulo pi
    assert abs(diff) < 1e-3
    assert math.sqrt(evals[1]) == pytest.approx(5.0, rel=0.02)
    assert math.sqrt(evals[0]) == pytest.approx(1.5, rel=0.02)


def test_gaussian_sigma() -> None:
    _, _, cov = moments(K.gaussian(41, 3.0))
    assert math.sqrt(cov[0, 0]) == pytest.approx(3.0, rel=1e-3)
    assert math.sqrt(cov[1, 1]) == pytest.approx(3.0, rel=1e-3)


def test_camera_shake_reproducible() -> None:
    a = K.camera_shake(24, torch.Generator().manual_seed(7))
    b = K.camera_shake(24, torch.Generator().manual_seed(7))
    c = K.camera_shake(24, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert (a - c).abs().max().item() > 1e-3
    # a motion path: sparse, not a blob filling the array
    assert 0.02 < torch.count_nonzero(a).item() / a.numel() < 0.6


@pytest.mark.parametrize("radius", [3.0, 5.5, 7.3, 11.5])
def test_disk_is_a_uniform_disc(radius: float) -> None:
    k = K.disk(24, radius)
    _, _, cov = moments(k)
    # a uniform disc of radius R: E[x^2] = E[y^2] = R^2 / 4 (the pixel grid adds a few %)
    assert cov[0, 0] == pytest.approx(radius**2 / 4, rel=0.06)
    assert cov[1, 1] == pytest.approx(cov[0, 0], rel=1e-9)
    assert abs(cov[0, 1]) < 1e-9
    inside = k[k > 0]
    assert torch.isclose(inside.max(), k[11, 11])  # flat top, not a peak
    assert (inside > k.max() * 0.999).sum().item() >= 0.9 * math.pi * (radius - 0.8) ** 2


@pytest.mark.parametrize(("length", "theta"), [(15.0, 0.5), (20.0, 0.0), (9.5, 2.0), (6.0, -1.2)])
def test_linear_motion_is_a_uniform_segment(length: float, theta: float) -> None:
    k = K.linear_motion(25, length, theta)
    _, _, cov = moments(k)
    evals, evecs = np.linalg.eigh(cov)
    angle = math.atan2(evecs[1, 1], evecs[0, 1])
    assert abs((angle - theta + math.pi / 2) % math.pi - math.pi / 2) < 0.02
    # a uniform segment of length L has variance L^2 / 12 along it; bilinear splatting adds
    # f(1 - f) <= 1/4 px^2 per axis (f: the fractional position), along it and across
    assert length**2 / 12 - 1e-6 <= evals[1] <= length**2 / 12 + 1 / 4
    assert evals[0] <= 1 / 4


def test_disk_and_motion_specs() -> None:
    assert torch.equal(K.kernel_from_spec("disk:3"), K.disk(24, 3.0))
    assert torch.equal(K.kernel_from_spec("disk:2.5:13"), K.disk(13, 2.5))
    assert torch.equal(K.kernel_from_spec("motion:12,0.7", size=20), K.linear_motion(20, 12, 0.7))
    for bad, words in [
        ("disk", "needs a radius"),
        ("motion:12", "LENGTH,THETA"),
        ("disk:30", "does not fit"),
        ("motion:40,0", "does not fit"),
        ("disk:x", "bad kernel spec"),
    ]:
        with pytest.raises(KernelError, match=words):
            K.kernel_from_spec(bad)


def test_stress_kernel_proportions() -> None:
    f = K.filled_square(24)
    assert torch.count_nonzero(f).item() == 144  # 12 x 12
    assert torch.allclose(f[6:18, 6:18], torch.full((12, 12), 1 / 144, dtype=torch.float64))
    e = K.empty_square(24)
    assert torch.count_nonzero(e).item() == 12 * 12 - 8 * 8  # side 12, 2 px outline
    assert float(e[11, 11]) == 0.0
    ell = K.l_shape(24)
    rows = torch.nonzero(ell.sum(1) > 1e-12).flatten()
    cols = torch.nonzero(ell.sum(0) > 1e-12).flatten()
    assert 12 <= rows.numel() <= 13 and 12 <= cols.numel() <= 13  # arms 12 px (+1 from shift)
    # L: the mass is concentrated in one row band and one column band (2 px wide arms)
    assert torch.count_nonzero(ell > ell.max() * 0.5).item() < 60


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: K.gaussian(0, 1.0), "positive integer"),
        (lambda: K.gaussian(2.5, 1.0), "positive integer"),  # type: ignore[arg-type]
        (lambda: K.gaussian(True, 1.0), "positive integer"),
        (lambda: K.gaussian(9, 0.0), "sigmas must be positive"),
        (lambda: K.gaussian(9, float("nan")), "finite"),
        (lambda: K.gaussian((3, 4, 5), 1.0), "(height, width)"),  # type: ignore[arg-type]
        (lambda: K.gaussian(10, 1e-3), "sigma too small"),
        (lambda: K.anisotropic_gaussian(9, 1.0, -2.0, 0.0), "sigmas must be positive"),
        (lambda: K.anisotropic_gaussian(9, 1.0, 2.0, "a"), "must be a number"),  # type: ignore[arg-type]
        (lambda: K.box(-1), "positive integer"),
        (lambda: K.l_shape(3), "at least 4"),
        (lambda: K.empty_square(0), "positive integer"),
        (lambda: K.filled_square(2), "at least 4"),
        (lambda: K.camera_shake(2), "at least 3"),
        (lambda: K.disk(9, 0.0), "must be positive"),
        (lambda: K.disk(9, 4.6), "does not fit"),
        (lambda: K.disk(9, 0.01), "radius too small"),
        (lambda: K.linear_motion(9, -1.0), ">= 0"),
        (lambda: K.linear_motion(9, 9.0, 0.0), "does not fit"),
        (lambda: K.linear_motion(9, 8.0, float("inf")), "finite"),
        (lambda: K.camera_shake(24, length=-1.0), ">= 0"),
        (lambda: K.camera_shake(24, n_steps=0), "positive integer"),
        (lambda: K.resize_kernel(K.box(3), 0), "positive integer"),
        (lambda: K.resize_kernel(torch.ones(3, 3, 3), 5), "2-D"),
        (lambda: K.recenter(torch.zeros(3, 3)), "all zeros"),
        (lambda: K.named_kernel_set("nope"), "unknown kernel set 'nope'"),
    ],
)
def test_bad_inputs_raise_kernel_error(call: Callable[[], object], words: str) -> None:
    with pytest.raises(KernelError) as info:
        call()
    assert words in str(info.value)


# --------------------------------------------------------------------------- named sets


def test_named_sets_stress_and_gauss() -> None:
    stress = K.named_kernel_set("stress")
    assert list(stress) == ["l_shape", "empty_square", "filled_square"]
    gauss = K.named_kernel_set("gauss", size=24)
    assert len(gauss) == 3
    for k in [*stress.values(), *gauss.values()]:
        assert_kernel(k, (24, 24))
        assert_centred(k, 1e-9)


def test_named_set_levin(levin_dir: Path) -> None:
    levin = K.named_kernel_set("levin", size=24)
    assert list(levin) == [f"levin_k{i}" for i in range(1, 9)]
    for name, k in levin.items():
        assert_kernel(k, (24, 24))
        assert_centred(k, 1e-9 * 24)
        assert torch.count_nonzero(k).item() > 40, name


def test_data_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFOPS_DATA", str(tmp_path / "missing"))
    with pytest.raises(KernelError, match="KFOPS_DATA"):
        K.named_kernel_set("levin")
    (tmp_path / "kernels" / "levin09").mkdir(parents=True)
    monkeypatch.setenv("KFOPS_DATA", str(tmp_path))
    assert K.data_dir() == tmp_path
    with pytest.raises(KernelError, match="not found"):
        K.named_kernel_set("levin")  # folder present, files missing


@pytest.mark.parametrize("factor", [0.7, 0.9, 1.13, 1.6])
def test_dilate_kernel_scales_the_radius_and_keeps_shape_mass_and_centre(factor):
    from kfops.consensus import kernel_spread
    from kfops.kernels import anisotropic_gaussian, center_of_mass, dilate_kernel, l_shape
    from kfops.metrics import kernel_ncc

    for k in (l_shape(24), anisotropic_gaussian((15, 21), 1.0, 2.5, 0.4)):
        d = dilate_kernel(k, factor)
        grow = max(0, math.ceil((factor - 1) * max(k.shape) / 2))
        assert d.shape == (k.shape[0] + 2 * grow, k.shape[1] + 2 * grow)
        assert float(d.sum()) == pytest.approx(1.0, abs=1e-9) and float(d.min()) >= 0
        assert kernel_spread(d) == pytest.approx(factor * kernel_spread(k), rel=0.01)
        cy, cx = center_of_mass(k)
        assert center_of_mass(d) == pytest.approx((cy + grow, cx + grow), abs=1e-6)
        # the shape is kept (up to the blur of resampling twice)
        assert kernel_ncc(dilate_kernel(d, 1 / factor), k) > 0.9
    # a Gaussian stays the Gaussian of scaled standard deviations
    wide = dilate_kernel(anisotropic_gaussian(31, 1.5, 3.0, 0.4), factor)
    size = wide.shape[0]
    assert kernel_ncc(wide, anisotropic_gaussian(size, 1.5 * factor, 3.0 * factor, 0.4)) > 0.995
    g = K.gaussian(9, 1.0)
    assert torch.equal(dilate_kernel(g, 1.0), g / g.sum())
    with pytest.raises(KernelError):
        dilate_kernel(g, 0.0)


@pytest.mark.parametrize("factor", [1e-3, 0.02])
def test_dilate_kernel_shrunk_to_almost_nothing_keeps_a_tap(factor):
    """A factor far below 1 gives a kernel of one tap or two (its grid's parity), still
    summing to 1 at the same size and centre, instead of failing on an empty grid."""
    from kfops.consensus import kernel_spread
    from kfops.kernels import center_of_mass, dilate_kernel, l_shape

    k = l_shape(24)
    d = dilate_kernel(k, factor)
    assert d.shape == k.shape and float(d.sum()) == pytest.approx(1.0, abs=1e-9)
    assert kernel_spread(d) < 1.0 and float(d.min()) >= 0
    assert center_of_mass(d) == pytest.approx(center_of_mass(k), abs=1e-6)


def test_gaussian_at_a_given_centre() -> None:
    """``center`` moves the Gaussian's centre of mass there (up to the border's cut), keeps
    the sum at 1 and, at the array centre, reproduces the default."""
    g = K.gaussian(24, 1.2, center=(10.0, 13.5))
    assert float(g.sum()) == pytest.approx(1.0)
    assert K.center_of_mass(g) == pytest.approx((10.0, 13.5), abs=1e-9)
    assert torch.equal(K.gaussian(9, 1.5, center=(4.0, 4.0)), K.gaussian(9, 1.5))
    a = K.anisotropic_gaussian((24, 28), 2.0, 1.0, 0.4, center=(11.0, 15.0))
    assert K.center_of_mass(a) == pytest.approx((11.0, 15.0), abs=1e-6)


def test_pad_alike_pads_to_the_largest_and_keeps_each_kernel() -> None:
    """Kernels of different sizes come back at the largest height and width, each with its
    sum and centre of mass kept; kernels of one size come back unchanged."""
    a, b = K.gaussian(24, 1.5), K.gaussian(28, 2.0)
    pa, pb = K.pad_alike([a, b])
    assert pa.shape == pb.shape == (28, 28) and torch.equal(pb, b)
    assert float(pa.sum()) == pytest.approx(1.0)
    assert K.center_of_mass(pa) == pytest.approx((13.5, 13.5))
    same = K.pad_alike([a, a.flip(0)])
    assert all(torch.equal(x, y) for x, y in zip(same, [a, a.flip(0)], strict=True))


# --------------------------------------------------------------------------- resize filters
_PIL_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "area": Image.BOX}


@pytest.mark.parametrize("method", K.RESIZE_METHODS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_resize_filter_reproduces_pil_downscaling(method, scale):
    """degrade with the filter = PIL's anti-aliased resize of a float image (an independent
    implementation), away from the border where PIL renormalises truncated weights."""
    from kfops import degrade

    a = np.random.default_rng(scale).random((60, 60)).astype(np.float32)
    ref = np.asarray(Image.fromarray(a).resize((60 // scale,) * 2, _PIL_FILTERS[method]))
    for size in (None, 6 * scale, 6 * scale + 1):
        k = K.resize_filter(scale, method, size)
        assert k.sum().item() == pytest.approx(1.0, abs=1e-12)
        assert torch.equal(k, k.T)
        got = degrade(torch.from_numpy(a).double()[None, None], k, scale)[0, 0].numpy()
        assert np.abs(got - ref)[3:-3, 3:-3].max() < 1e-6, (method, scale, size)


def test_resize_filter_shapes_and_errors():
    assert K.resize_filter(4, "area").shape == (4, 4)
    assert K.resize_filter(4, "bilinear").shape == (8, 8)
    assert K.resize_filter(4, "bicubic").shape == (16, 16)
    assert K.resize_filter(3, "bicubic").shape == (11, 11)
    assert (K.resize_filter(4, "bicubic") < 0).any()  # Keys' cubic has negative lobes
    assert torch.equal(K.resize_filter(4, "area", 4), K.box(4))
    with pytest.raises(KernelError, match="at least 16 taps"):
        K.resize_filter(4, "bicubic", 12)
    with pytest.raises(KernelError, match="unknown resize method"):
        K.resize_filter(4, "lanczos")


def test_kernel_from_spec_resize_filters_need_the_scale():
    assert torch.equal(K.kernel_from_spec("bicubic", scale=4), K.resize_filter(4, "bicubic"))
    assert torch.equal(K.kernel_from_spec("area:24", scale=4), K.resize_filter(4, "area", 24))
    with pytest.raises(KernelError, match="needs the scale"):
        K.kernel_from_spec("bilinear")


def test_remove_floor_takes_off_a_pedestal_and_leaves_clean_kernels() -> None:
    """A blur plus a constant pedestal comes back as the blur; a kernel with nothing on its
    border, a resampling filter's negative lobes and a flat kernel are left as they are."""
    g = K.pad_to(K.gaussian(9, 1.2, dtype=torch.float64), (15, 15))
    g = g / g.sum()
    assert torch.equal(K.remove_floor(g), g)  # its border ring is 0: nothing to remove
    noisy = 0.8 * g + 0.2 / g.numel()
    out = K.remove_floor(noisy)
    assert torch.allclose(out, g, atol=1e-12) and math.isclose(float(out.sum()), 1.0)
    filt = K.resize_filter(4, "bicubic", 24)
    assert float(filt.min()) < 0 and torch.equal(K.remove_floor(filt), filt)
    flat = torch.full((5, 5), 1 / 25, dtype=torch.float64)
    assert torch.equal(K.remove_floor(flat), flat)
    # a blob on the border lifts the median only where it covers half the ring
    edge = g.clone()
    edge[0, :3] += 0.05
    assert torch.equal(K.remove_floor(edge), edge)
