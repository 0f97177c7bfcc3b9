"""Noise level of a single image: the standard deviation of additive white noise, from
the image alone.

Immerkær's (1996) estimator: the 3×3 mask [[1, −2, 1], [−2, 4, −2], [1, −2, 1]] (the
difference of two Laplacians, blind to planes and nearly blind to smooth ramps) maps white
noise of standard deviation σ to noise of standard deviation 6σ. Edges and texture answer
too, so the pixels whose Sobel gradient is in the top 30% are left out (as Tai and Yang,
2008, leave out edges) and the median of the absolute response is taken instead of the mean
(median |N(0, 1)| = 0.6745). Content still leaves a floor: on noise-free 128² LR crops of
Set5/Set14 photos the estimate is 0.001–0.005 for smooth or blurred ones and up to
0.02–0.027 for sharp, finely textured ones (baboon, bridge, butterfly, comic;
benchmarks/RESULTS.md, "Noise").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .blur_metric import single_image, sobel

_MASK = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))
_MASK_NORM = 6.0  # ‖mask‖₂
_MAD_GAUSS = 0.6745  # median |N(0, 1)|


def noise_sigma(image: torch.Tensor, edge_fraction: float = 0.3) -> float:
    """Estimated noise standard deviation of ``image`` ((H, W), (C, H, W) or (1, C, H, W),
    in the image's own units, e.g. [0, 1]), averaged over its channels. Pixels whose Sobel
    gradient magnitude is in the top ``edge_fraction`` are left out. Computed in float64;
    0 for an image smaller than 3×3 or a constant one."""
    if not 0.0 <= edge_fraction < 1.0:
        raise ValueError(f"edge_fraction must be in [0, 1), got {edge_fraction!r}")
    x = single_image(image)
    h, w = x.shape[-2:]
    if h < 3 or w < 3:
        return 0.0
    x = x.reshape(-1, 1, h, w)
    mask = torch.tensor(_MASK, dtype=x.dtype, device=x.device)
    response = F.conv2d(x, mask[None, None]).abs().flatten(1)
    # the gradient at the pixels the 3×3 mask answers for (only its ranking matters)
    grad = torch.hypot(sobel(x, 2), sobel(x, 3))[..., 1:-1, 1:-1].flatten(1)
    sigmas = []
    for r, g in zip(response, grad, strict=True):
        # kthvalue, not quantile: no size limit on photo-sized images
        n_keep = max(1, int(round((1.0 - edge_fraction) * g.numel())))
        keep = r[g <= g.kthvalue(n_keep).values]
        sigmas.append(float(keep.median()) / (_MAD_GAUSS * _MASK_NORM))
    return sum(sigmas) / len(sigmas)
