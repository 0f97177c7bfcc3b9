"""What a JPEG file's quantisation tables say about its compression.

A JPEG stores each 8×8 block's DCT coefficients divided by a step from its quantisation
table and rounded; the larger the steps, the more the decoded image departs from the one
that was compressed (lost detail, blocks, ringing). The luma table is read off the file
(:func:`kfops.io.load_image` keeps it as ``ImageData.jpeg_table``, (8, 8) in natural,
row-major order, the DC step at [0, 0]); :func:`quant_step` condenses it into one number
that sets how much the final step of blind SR smooths
(``ReconConfig.final_jpeg_ref``), and :func:`ijg_quality` names it as the quality setting
of the IJG library (libjpeg, Pillow, most software) that would have written it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOW_FREQUENCIES", "ijg_quality", "ijg_table", "quant_step"]

LOW_FREQUENCIES = 4  # the 4×4 lowest-frequency steps: where a natural image's energy is

# the luma table of the JPEG standard (ITU-T T.81, Annex K.1), which IJG scales by quality
_ANNEX_K_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)


def _as_table(table) -> np.ndarray:
    t = np.asarray(table, dtype=np.float64).reshape(-1)
    if t.size != 64 or not np.all(np.isfinite(t)) or t.min() < 1:
        raise ValueError("a quantisation table has 64 steps, each >= 1")
    return t.reshape(8, 8)


def quant_step(table) -> float:
    """Mean of the 4×4 lowest-frequency steps of a luma table (64 values, natural order),
    in units of the full range ([0, 1]; a step of 8 at 8 bits is 8/255). 0.004–0.008 at IJG
    quality 95, 0.032 at 75, 0.064 at 50. The high-frequency steps are left out: a
    natural image has little energy there, so they say little about what was lost."""
    t = _as_table(table)
    return float(t[:LOW_FREQUENCIES, :LOW_FREQUENCIES].mean() / 255.0)


def ijg_table(quality: int) -> np.ndarray:
    """The (8, 8) luma table IJG writes at ``quality`` 1–100 (baseline: steps ≤ 255)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1–100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_ANNEX_K_LUMA * scale + 50) // 100, 1, 255)


def ijg_quality(table) -> int:
    """The IJG quality (1–100) whose luma table is closest to ``table`` (sum of absolute
    step differences; the highest such quality on a tie, as 98–100 all write steps of 1).
    Tables of other encoders, cameras among them, get the nearest IJG setting."""
    t = _as_table(table)
    errors = [np.abs(ijg_table(q) - t).sum() for q in range(100, 0, -1)]
    return 100 - int(np.argmin(errors))
