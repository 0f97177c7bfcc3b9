"""The cost of a sub-pixel registration mismatch between the synthesis and the estimate,
scored through the ``cpu`` preset's final step on kernels already estimated.

``kfops.degrade`` is bicubic-aligned for a kernel whose centre of mass sits on
:func:`kfops.kernel_inr.target_center` (K, s): the array centre when K ≡ s (mod 2), half a
pixel towards the bottom-right otherwise. Phase 2 pulls its estimate there. A true kernel
centred on its array with K ≢ s (mod 2) (an even support at an odd scale, an odd one at an
even scale) makes an LR image half an HR pixel off that grid; no blind method can tell a
shift of the kernel from one of the image, so the estimate's HR image comes out half a
pixel off the ground truth. For every saved case this prints the gain over bicubic of

* ``estimate``: the estimated kernel as it is;
* ``estimate moved``: the estimate moved by the synthesis's offset (the true kernel's
  array centre minus its aligned position; bilinear, :func:`kfops.kernels.shift_kernel`);
* ``true`` and ``true moved``: the true kernel, and the true kernel moved the other way
  (onto the aligned position: a perfect estimate of the shape, registered as Phase 2
  registers it).

    python -m benchmarks.alignment DIR [DIR ...] --scale 3 --out alignment.tsv

Rows (tab-separated): folder, image, kernel, offset (HR px), variant, Y-PSNR gain over
bicubic in dB. The mean per (offset ≠ 0 or = 0, variant) is printed at the end.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from kfops.kernels import alignment_offset, shift_kernel
from kfops.metrics import psnr_y
from kfops.nonblind import tv_refine
from kfops.presets import recon_config

from .final_step import saved_cases
from .rows import emit_row


def synthesis_offset(k_true, scale: int) -> tuple[float, float]:
    """(dy, dx): the true kernel's centre of mass minus its aligned position (HR px)."""
    dy, dx = alignment_offset(k_true, scale)
    return round(dy, 1), round(dx, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--scale", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("alignment.tsv"))
    args = ap.parse_args()
    s = args.scale
    eps, weight = recon_config("cpu").final_weights(s)
    gains: dict[tuple[bool, str], list[float]] = defaultdict(list)
    for d in args.dirs:
        for image, kname, hr, lr, k_true, k_est, base in saved_cases([d], s):
            dy, dx = synthesis_offset(k_true, s)
            kernels = {
                "estimate": k_est,
                "estimate moved": shift_kernel(k_est, dy, dx),
                "true": k_true.float(),
                "true moved": shift_kernel(k_true.float(), -dy, -dx),
            }
            for variant, k in kernels.items():
                sr = tv_refine(lr, k / k.sum(), s, weight, 100, eps=eps)
                gain = psnr_y(sr, hr) - base
                gains[(dy != 0 or dx != 0, variant)].append(gain)
                line = f"{d.name}\t{image}\t{kname}\t{dy:+.1f},{dx:+.1f}\t{variant}\t{gain:+.3f}"
                emit_row(line, args.out)
    for (moved, variant), values in sorted(gains.items()):
        group = "offset" if moved else "aligned"
        print(f"mean\t{group}\t{variant}\t{sum(values) / len(values):+.3f}\t({len(values)} cases)")


if __name__ == "__main__":
    main()
