"""Image IO: modes, EXIF orientation, bit depth, alpha, and atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kfops.errors import ImageError, OutputError
from kfops.io import load_image, save_image


def _rgb(h=12, w=20):
    rng = np.random.default_rng(0)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def test_cmyk_jpeg_and_palette_become_rgb(tmp_path):
    Image.fromarray(_rgb()).convert("CMYK").save(tmp_path / "c.jpg")
    d = load_image(tmp_path / "c.jpg")
    assert d.pixels.shape == (1, 3, 12, 20) and d.alpha is None
    Image.fromarray(_rgb()).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").pixels.shape == (1, 3, 12, 20)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(_rgb(10, 30))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "r.jpg").pixels.shape == (1, 3, 30, 10)


def test_16bit_grey_round_trip(tmp_path):
    arr = np.arange(0, 65535, 65535 // 200, dtype=np.uint16)[:200].reshape(10, 20)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    d = load_image(tmp_path / "g16.png")
    assert d.bits == 16 and d.pixels.shape == (1, 1, 10, 20)
    save_image(d.pixels, tmp_path / "out.png", bits=d.bits)
    back = np.asarray(Image.open(tmp_path / "out.png"))
    assert back.dtype.itemsize == 2 or Image.open(tmp_path / "out.png").mode.startswith("I")
    assert np.abs(back.astype(np.int64) - arr.astype(np.int64)).max() <= 1


def test_rgba_alpha_is_restored(tmp_path):
    rgba = np.dstack([_rgb(), np.full((12, 20), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    d = load_image(tmp_path / "a.png")
    assert d.pixels.shape == (1, 3, 12, 20) and d.alpha is not None
    save_image(d.pixels, tmp_path / "b.png", alpha=d.alpha)
    out = Image.open(tmp_path / "b.png")
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].max() == 128


def test_truncated_file_and_nan_refusal(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError):
        load_image(tmp_path / "t.png")
    with pytest.raises(ImageError, match="NaN"):
        save_image(torch.full((3, 4, 4), float("nan")), tmp_path / "n.png")
    assert not (tmp_path / "n.png").exists()
    with pytest.raises(OutputError):
        save_image(torch.zeros(3, 4, 4), tmp_path / "x.gifx")
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]
