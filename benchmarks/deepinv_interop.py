"""``kfops.Degradation`` inside deepinv (optional: needs ``pip install deepinv``).

    python -m benchmarks.deepinv_interop --image examples/butterfly.png

Two checks, printed:

* the convention: ``kfops.degrade(x, k, s, "circular")`` against deepinv's
  ``Downsampling(filter=k flipped, factor=s, padding="circular")`` on ``x`` shifted by
  ``d = floor((s - K)/2) + floor((K - 1)/2)`` HR pixels (kfops correlates and puts LR pixel
  i at HR s·i + (s−1)/2; deepinv convolves and samples every s-th pixel from its kernel's
  centre), for K = 7, 8, 24 at s = 2 and 4: the largest difference;
* a deepinv solver with our operator: proximal gradient descent under deepinv's TV prior
  (100 iterations, step 10, λ = 3e-3) on one noisy ×4 measurement (L-shaped kernel, σ =
  0.01), run with ``kfops.Degradation`` and with deepinv's ``Downsampling`` (its result
  shifted back by d): Y-PSNR of both, and of bicubic.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import kfops


def shift_of(k_size: int, s: int) -> int:
    """d such that degrade(roll(x, d)) equals deepinv's Downsampling of x (flipped k)."""
    return (s - k_size) // 2 + (k_size - 1) // 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=Path("examples/butterfly.png"))
    args = ap.parse_args()
    try:
        import deepinv as dinv
    except ImportError as err:
        raise SystemExit(f"deepinv is not importable ({err}); pip install deepinv") from err
    hr = kfops.io.load_image(args.image).pixels.double()
    gen = torch.Generator().manual_seed(0)
    for k_size in (7, 8, 24):
        k = torch.rand(k_size, k_size, generator=gen, dtype=torch.float64)
        k = k / k.sum()
        for s in (2, 4):
            theirs = dinv.physics.Downsampling(
                img_size=tuple(hr.shape[1:]),
                filter=k.flip(-2, -1)[None, None],
                factor=s,
                padding="circular",
            )
            d = shift_of(k_size, s)
            ours = kfops.degrade(torch.roll(hr, (d, d), (-2, -1)), k, s, "circular")
            diff = float((ours - theirs.A(hr)).abs().max())
            print(f"K={k_size} s={s} shift d={d}: largest difference {diff:.2e}")

    s, k = 4, kfops.kernels.l_shape(24).double()
    noise = kfops.GaussianNoise(0.01, torch.Generator().manual_seed(1))
    ours = kfops.Degradation(k, s, padding="circular", noise_model=noise)
    theirs = dinv.physics.Downsampling(
        img_size=tuple(hr.shape[1:]), filter=k.flip(-2, -1)[None, None], factor=s,
        padding="circular",
    )  # fmt: skip
    y = ours(hr)
    d = shift_of(24, s)
    for name, physics in (("kfops.Degradation", ours), ("deepinv Downsampling", theirs)):
        solver = dinv.optim.optim_builder(
            iteration="PGD",
            prior=dinv.optim.prior.TVPrior(n_it_max=20),
            data_fidelity=dinv.optim.data_fidelity.L2(),
            max_iter=100,
            params_algo={"stepsize": 10.0, "lambda": 3e-3},
        )
        x = solver(y, physics)
        if physics is theirs:
            x = torch.roll(x, (d, d), (-2, -1))
        print(f"PGD + TV with {name}: {float(kfops.metrics.psnr_y(x.clamp(0, 1), hr)):.2f} dB")
    bicubic = kfops.bicubic_upsample(y, s).clamp(0, 1)
    print(f"bicubic: {float(kfops.metrics.psnr_y(bicubic, hr)):.2f} dB")


if __name__ == "__main__":
    main()
