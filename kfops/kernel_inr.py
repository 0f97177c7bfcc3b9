"""Kernel models for Phase 2: the SIREN kernel INR of appendix A.4 and the ablation
alternatives of appendix C.1 (direct ReLU / sigmoid parametrisation, KernelGAN-like
linear CNN). Every model's ``forward()`` returns a (K, K) kernel that sums to 1.

Alignment: :func:`target_center` is where the kernel's centre of mass must sit so that
``kfops.degrade`` stays bicubic-aligned — the array centre (K−1)/2 when K ≡ s (mod 2),
and half a pixel towards the bottom-right otherwise (the zero-padded (K+1) convention).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DirectKernel",
    "KernelINR",
    "LinearCNNKernel",
    "center_of_mass_loss",
    "default_kernel_size",
    "inr_extent",
    "leaky_sigmoid",
    "make_kernel_model",
    "target_center",
]


def default_kernel_size(scale: int) -> int:
    """Kernel support per scale: 24 at ×4 as in the paper (6·s), at least 7."""
    return max(7, 6 * int(scale))


def target_center(k: int, scale: int) -> float:
    """Array coordinate of the centre of mass that keeps the degradation aligned."""
    return (k - 1) / 2 + (0.5 if (k - scale) % 2 else 0.0)


def leaky_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """(1 + 1e-4)·σ(x) − 1e-4: a sigmoid that allows slightly negative values."""
    return (1 + 1e-4) * torch.sigmoid(x) - 1e-4


def _normalise(k: torch.Tensor) -> torch.Tensor:
    return k / k.sum().clamp_min(1e-8)


def center_of_mass_loss(k: torch.Tensor, center: float) -> torch.Tensor:
    """Squared distance (pixels²) between the COM of k (K, K) and (center, center)."""
    n = k.shape[-1]
    coords = torch.arange(n, dtype=k.dtype, device=k.device)
    mass = k.sum().clamp_min(1e-8)
    cy = (k.sum(dim=1) * coords).sum() / mass
    cx = (k.sum(dim=0) * coords).sum() / mass
    return (cy - center) ** 2 + (cx - center) ** 2


class KernelINR(nn.Module):
    """SIREN on a K×K grid of coordinates in [−extent, extent]² (the paper: [−1, 1]²):
    ``layers`` linear layers of width ``width`` (sine activations with frequency ω on every
    hidden layer), leaky sigmoid output, normalised to sum 1. SIREN initialisation: first
    layer U(−1/n, 1/n), later layers U(±√(6/n)/ω), n = fan-in."""

    def __init__(
        self,
        size: int = 24,
        width: int = 256,
        layers: int = 5,
        omega: float = 5.0,
        extent: float = 1.0,
    ):
        super().__init__()
        self.size, self.omega = size, omega
        dims = [2] + [width] * (layers - 1) + [1]
        self.linears = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        with torch.no_grad():
            for i, lin in enumerate(self.linears):
                n = lin.in_features
                bound = 1 / n if i == 0 else math.sqrt(6 / n) / omega
                lin.weight.uniform_(-bound, bound)
        axis = torch.linspace(-extent, extent, size)
        grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
        self.register_buffer("grid", grid)

    def forward(self) -> torch.Tensor:
        h = self.grid
        for lin in self.linears[:-1]:
            h = torch.sin(self.omega * lin(h))
        k = leaky_sigmoid(self.linears[-1](h)).reshape(self.size, self.size)
        return _normalise(k)


class DirectKernel(nn.Module):
    """Each of the K×K taps is a parameter; ``activation`` 'relu' or 'sigmoid' keeps it
    positive before normalisation (appendix C.1). Starts from a centred Gaussian."""

    def __init__(self, size: int = 24, activation: str = "relu"):
        super().__init__()
        self.size, self.activation = size, activation
        ax = torch.arange(size) - (size - 1) / 2
        g = torch.exp(-(ax[:, None] ** 2 + ax[None] ** 2) / (2 * (size / 8) ** 2))
        g = g / g.max()
        init = g if activation == "relu" else torch.logit(g.clamp(1e-3, 1 - 1e-3))
        self.raw = nn.Parameter(init)

    def forward(self) -> torch.Tensor:
        act = F.relu if self.activation == "relu" else torch.sigmoid
        return _normalise(act(self.raw) + 1e-12)


class LinearCNNKernel(nn.Module):
    """KernelGAN-like deep linear CNN (no activations); the kernel is extracted by passing
    a delta through the layers (appendix C.1: sizes [7, 7, 5, 3, 1], 32 channels; the final
    strided layer of the paper is the downsampling itself and is replaced by the
    degradation operator here). The extracted kernel is cropped/padded to K×K and
    normalised."""

    def __init__(self, size: int = 24, sizes=(7, 7, 5, 3, 1), width: int = 32):
        super().__init__()
        chans = [1] + [width] * (len(sizes) - 1) + [1]
        self.size = size
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, k, bias=False)
            for a, b, k in zip(chans[:-1], chans[1:], sizes, strict=True)
        )
        self.support = sum(k - 1 for k in sizes) + 1

    def forward(self) -> torch.Tensor:
        n = self.support
        delta = torch.zeros(1, 1, 2 * n - 1, 2 * n - 1, device=self.convs[0].weight.device)
        delta[..., n - 1, n - 1] = 1
        h = delta
        for conv in self.convs:
            h = conv(h)
        k = h[0, 0].flip(-1, -2)
        pad = self.size - k.shape[-1]
        if pad > 0:
            k = F.pad(k, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
        elif pad < 0:
            c = (-pad) // 2
            k = k[c : c + self.size, c : c + self.size]
        return _normalise(F.relu(k) + 1e-12)


def inr_extent(size: int) -> float:
    """Half-width of the INR's coordinate grid for a K-tap kernel: the pitch of the
    paper's 24-tap grid on [−1, 1] (2/23 per HR pixel) at every size, so that the SIREN's
    smoothness per HR pixel — its implicit kernel prior — does not depend on the scale
    (K = 24: exactly [−1, 1]; K = 12 at ×2: [−0.48, 0.48]). Measured at ×2 and ×3 against
    [−1, 1] at every size: benchmarks/RESULTS.md, "Other scales"."""
    return (size - 1) / 23


def make_kernel_model(kind: str, size: int, extent: float | None = None) -> nn.Module:
    """'inr' (grid half-width ``extent``, default :func:`inr_extent`) | 'direct_relu' |
    'direct_sigmoid' | 'linear_cnn'."""
    if kind == "inr":
        return KernelINR(size, extent=inr_extent(size) if extent is None else extent)
    if kind == "direct_relu":
        return DirectKernel(size, "relu")
    if kind == "direct_sigmoid":
        return DirectKernel(size, "sigmoid")
    if kind == "linear_cnn":
        return LinearCNNKernel(size)
    raise ValueError(f"unknown kernel model {kind!r}")
