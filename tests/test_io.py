"""Image IO: modes, EXIF orientation, bit depth, alpha, and atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

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


@pytest.mark.parametrize("planes", [2, 3, 4])
def test_16bit_colour_png_round_trip_keeps_16_bits(tmp_path, planes):
    import png

    rng = np.random.default_rng(planes)
    src = rng.integers(0, 65536, size=(9, 7, planes), dtype=np.uint16)
    src[0, 0, 0] = 257 * 3 + 1  # not representable with 8 bits
    p = tmp_path / "in.png"
    with open(p, "wb") as fh:
        png.Writer(7, 9, greyscale=planes == 2, alpha=planes in (2, 4), bitdepth=16).write(
            fh, src.reshape(9, 7 * planes)
        )
    data = load_image(p)
    colour = 1 if planes == 2 else 3
    assert data.bits == 16 and data.pixels.shape == (1, colour, 9, 7)
    assert (data.alpha is not None) == (planes in (2, 4))
    got = np.round(data.pixels[0].permute(1, 2, 0).double().numpy() * 65535)
    np.testing.assert_array_equal(got, src[..., :colour])
    out = tmp_path / "out.png"
    save_image(data.pixels.double(), out, alpha=data.alpha, bits=16)
    _, _, rows, info = png.Reader(filename=str(out)).asDirect()
    back = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(9, 7, planes)
    assert info["bitdepth"] == 16
    np.testing.assert_array_equal(back[..., :colour], src[..., :colour])
    if planes in (2, 4):  # alpha passes through float32: within one 16-bit level
        assert np.abs(back[..., -1].astype(int) - src[..., -1]).max() <= 1


def test_16bit_png_orientation_matches_pillow_exif_transpose():
    from kfops.io import _apply_orientation

    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for orientation in range(1, 9):
        im = Image.fromarray(a)
        exif = im.getexif()
        exif[0x0112] = orientation
        im.info["exif"] = exif.tobytes()
        want = np.asarray(ImageOps.exif_transpose(im))
        np.testing.assert_array_equal(_apply_orientation(a[..., None], orientation)[..., 0], want)
