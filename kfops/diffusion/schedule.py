"""DDPM noise schedule with v-prediction helpers (buffers in float64).

Timesteps are 0-based: t = 0 … T−1 index ``alphas_cumprod`` (ᾱ). Conventions
(Salimans & Ho): x_t = √ᾱ·x₀ + √(1−ᾱ)·ε, v = √ᾱ·ε − √(1−ᾱ)·x₀, hence
x₀ = √ᾱ·x_t − √(1−ᾱ)·v and ε = √(1−ᾱ)·x_t + √ᾱ·v. A respaced schedule (fewer steps) keeps
ᾱ at the chosen timesteps and maps its indices back to the model's timesteps.
"""

from __future__ import annotations

import torch


class DDPMSchedule:
    def __init__(self, alphas_cumprod: torch.Tensor, timesteps: torch.Tensor | None = None):
        ac = alphas_cumprod.to(torch.float64)
        self.alphas_cumprod = ac
        self.timesteps = torch.arange(len(ac)) if timesteps is None else timesteps.long()
        prev = torch.cat([ac.new_ones(1), ac[:-1]])
        self.betas = 1 - ac / prev
        self.posterior_variance = self.betas * (1 - prev) / (1 - ac)
        self.posterior_coef_x0 = self.betas * prev.sqrt() / (1 - ac)
        self.posterior_coef_xt = (1 - prev) * (1 - self.betas).sqrt() / (1 - ac)

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        return cls(torch.cumprod(1 - betas, dim=0))

    def __len__(self) -> int:
        return len(self.alphas_cumprod)

    def respaced(self, steps: int) -> DDPMSchedule:
        """A schedule on ``steps`` evenly spaced timesteps (including the last one)."""
        steps = max(1, min(int(steps), len(self)))
        idx = torch.linspace(0, len(self) - 1, steps, dtype=torch.float64).round().long()
        return DDPMSchedule(self.alphas_cumprod[idx], self.timesteps[idx])

    @staticmethod
    def _at(buf: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        v = buf.to(x.device)[t.to(x.device)]
        return v.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))

    def q_sample(self, x0, t, noise):
        ac = self._at(self.alphas_cumprod, t, x0)
        return ac.sqrt() * x0 + (1 - ac).sqrt() * noise

    def v_target(self, x0, t, noise):
        ac = self._at(self.alphas_cumprod, t, x0)
        return ac.sqrt() * noise - (1 - ac).sqrt() * x0

    def x0_from_v(self, x_t, t, v):
        ac = self._at(self.alphas_cumprod, t, x_t)
        return ac.sqrt() * x_t - (1 - ac).sqrt() * v

    def eps_from_v(self, x_t, t, v):
        ac = self._at(self.alphas_cumprod, t, x_t)
        return (1 - ac).sqrt() * x_t + ac.sqrt() * v

    def posterior(self, x0, x_t, t):
        """Mean and variance of q(x_{t−1} | x_t, x₀) (index t of this schedule)."""
        mean = self._at(self.posterior_coef_x0, t, x_t) * x0
        mean = mean + self._at(self.posterior_coef_xt, t, x_t) * x_t
        return mean, self._at(self.posterior_variance, t, x_t)
