"""kfops.jpeg and the JPEG table kept by kfops.io.load_image: checked against files Pillow
writes at known qualities."""

import numpy as np
import pytest
from PIL import Image

from kfops.io import load_image
from kfops.jpeg import ijg_quality, ijg_table, quant_step


def _photo(h: int = 48, w: int = 64) -> np.ndarray:
    """An (h, w, 3) uint8 image with edges and shading (something worth compressing)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 3, yy * 4, ((xx // 8 + yy // 8) % 2) * 200], axis=-1)
    return np.clip(img + 20, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("quality", [10, 30, 50, 75, 90, 95])
def test_a_pillow_jpeg_keeps_its_luma_table_and_its_quality_is_named(tmp_path, quality):
    path = tmp_path / "a.jpg"
    Image.fromarray(_photo()).save(path, quality=quality)
    data = load_image(path)
    assert data.jpeg_table is not None and data.jpeg_table.shape == (8, 8)
    assert np.array_equal(data.jpeg_table, ijg_table(quality))
    assert ijg_quality(data.jpeg_table) == quality
    assert data.pixels.shape == (1, 3, 48, 64)


def test_lossless_files_have_no_table(tmp_path):
    for name in ("a.png", "a.bmp", "a.tif"):
        Image.fromarray(_photo()).save(tmp_path / name)
        assert load_image(tmp_path / name).jpeg_table is None


def test_a_grey_jpeg_has_a_table_too(tmp_path):
    path = tmp_path / "g.jpg"
    Image.fromarray(_photo()[..., 0]).save(path, quality=60)
    data = load_image(path)
    assert data.pixels.shape == (1, 1, 48, 64) and ijg_quality(data.jpeg_table) == 60


def test_the_step_grows_as_the_quality_falls_and_counts_the_low_frequencies():
    steps = [quant_step(ijg_table(q)) for q in (98, 95, 90, 75, 50, 30, 10)]
    assert all(a < b for a, b in zip(steps, steps[1:], strict=False))
    assert quant_step(ijg_table(50)) == pytest.approx(ijg_table(50)[:4, :4].mean() / 255)
    assert quant_step(ijg_table(75)) == pytest.approx(8.25 / 255)
    high = np.ones((8, 8))
    high[4:, 4:] = 255  # coarse high frequencies alone do not count
    assert quant_step(high) == pytest.approx(1 / 255)
    assert quant_step(ijg_table(100)) == pytest.approx(1 / 255)
    assert ijg_quality(ijg_table(100)) == 100  # 98–100 all write steps of 1


def test_a_table_from_another_encoder_gets_the_nearest_ijg_quality():
    table = ijg_table(80).astype(float) * 1.03
    assert ijg_quality(table) in (79, 80)


@pytest.mark.parametrize("bad", [np.ones(63), np.zeros(64), np.full(64, np.nan)])
def test_a_malformed_table_raises(bad):
    with pytest.raises(ValueError, match="quantisation table"):
        quant_step(bad)
    with pytest.raises(ValueError, match="quality"):
        ijg_table(0)
