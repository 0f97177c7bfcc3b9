"""The refinement U-Net of appendix A.3 (DIP-style global image prior for Phase 2).

``levels`` levels with ``base·2^l`` channels (paper: 5 levels, 32 → 512), two 3×3
convolutions + BatchNorm + ReLU per level, ×2 max-pool down and bilinear ×2 up, skip
connections, tanh output in [−1, 1]. Any H, W: the input is reflect-padded to a multiple
of 2^(levels−1) and the output cropped back. Input and output: (B, C, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect"),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, padding_mode="reflect"),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, channels: int = 3, base: int = 32, levels: int = 5):
        super().__init__()
        widths = [base * 2**i for i in range(levels)]
        self.levels = levels
        self.down = nn.ModuleList()
        cin = channels
        for w in widths:
            self.down.append(_block(cin, w))
            cin = w
        self.up = nn.ModuleList(
            _block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels - 1))
        )
        self.out = nn.Conv2d(widths[0], channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2 ** (self.levels - 1)
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.levels - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return torch.tanh(self.out(x))[..., :h, :w]
