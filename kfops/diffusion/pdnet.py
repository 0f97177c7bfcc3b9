"""The patch-diffusion network of the paper's appendix A.2.

One block of two 3×3 convolutions, then five blocks of a 3×3 and a 1×1 convolution; no
strides, no attention, no normalisation (the prior is trained on 64² crops and applied to
whole HR images, so nothing may depend on image-level statistics). Each block is
conditioned on the timestep by a per-channel scale and shift (FiLM) computed from a
sinusoidal embedding. Seven 3×3 convolutions give a theoretical receptive field of 15×15.
Input and output: (B, C, H, W), any H, W; the output is the v-prediction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class PDBlock(nn.Module):
    """conv3×3 → FiLM(t) → SiLU → conv (3×3 for the first block, else 1×1) → SiLU,
    with a residual connection when the widths agree."""

    def __init__(self, cin: int, hidden: int, emb_dim: int, second_kernel: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, second_kernel, padding=second_kernel // 2)
        self.residual = cin == hidden

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(h * (1 + scale) + shift)
        h = F.silu(self.conv2(h))
        return x + h if self.residual else h


class PDNet(nn.Module):
    """v-prediction network. channels: image channels; hidden: width (paper: 128)."""

    def __init__(self, channels: int = 3, hidden: int = 128, emb_dim: int | None = None):
        super().__init__()
        emb_dim = emb_dim or 2 * hidden
        self.channels, self.hidden, self.emb_dim = channels, hidden, emb_dim
        self.embed = nn.Sequential(
            nn.Linear(hidden, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim), nn.SiLU()
        )
        self.blocks = nn.ModuleList(
            [PDBlock(channels, hidden, emb_dim, 3)]
            + [PDBlock(hidden, hidden, emb_dim, 1) for _ in range(5)]
        )
        self.out = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.embed(timestep_embedding(t, self.hidden).to(x.dtype))
        h = x
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)
