"""The SR forward model as a linear operator, and non-blind SR by back-projection.

:class:`Degradation` follows the naming of deepinv's ``LinearPhysics`` (``A``,
``A_adjoint``, ``A_dagger``, ``prox_l2``, ...) without depending on deepinv, so it drops
into plug-and-play and unrolled solvers. The kernel is a buffer named ``filter`` or, with
``learnable=True`` (or when given an ``nn.Parameter``), a parameter that receives
gradients through the fused ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import KernelError, ShapeError
from .ops import check_kernel_values, degrade, degrade_adjoint
from .ops.degrade import _check_padding, _check_scale

__all__ = ["Degradation", "GaussianNoise", "backproject", "bicubic_upsample", "conjugate_gradient"]


def conjugate_gradient(
    op: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    max_iter: int = 50,
    tol: float = 1e-6,
) -> torch.Tensor:
    """Solve op(x) = b for a symmetric positive (semi-)definite linear ``op`` by CG.

    Inner products are taken over each sample of the batch (dim 0) separately, so a batch
    of independent systems is solved at once. Stops when ‖r‖ ≤ tol·‖b‖ for every sample.
    """
    dims = tuple(range(1, b.dim()))

    def dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (u * v).sum(dim=dims, keepdim=True)

    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - op(x) if x0 is not None else b.clone()
    p = r.clone()
    rr = dot(r, r)
    bb = dot(b, b).clamp_min(torch.finfo(b.dtype).tiny)
    for _ in range(max_iter):
        if bool((rr <= (tol**2) * bb).all()):
            break
        ap = op(p)
        pap = dot(p, ap)
        alpha = torch.where(pap > 0, rr / pap.clamp_min(torch.finfo(b.dtype).tiny), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = dot(r, r)
        p = r + (rr_new / rr.clamp_min(torch.finfo(b.dtype).tiny)) * p
        rr = rr_new
    return x


def _randn(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise of ``shape`` with ``like``'s dtype and device, drawn on the
    generator's device (so a CPU generator also serves CUDA inputs)."""
    dev = like.device if generator is None else generator.device
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=dev).to(like.device)


class GaussianNoise(nn.Module):
    """y + σ·n, n standard normal: a noise model for :class:`Degradation`.

    ``generator`` (optional) draws the noise, on its own device (a CPU generator also serves
    CUDA measurements, with the same draws). ``update_parameters(sigma=…)`` changes σ."""

    def __init__(self, sigma: float = 0.01, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.sigma = self._checked(sigma)
        self.generator = generator

    @staticmethod
    def _checked(sigma: float) -> float:
        sigma = float(sigma)
        if not sigma >= 0 or sigma == float("inf"):
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
        return sigma

    def forward(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        return y + self.sigma * _randn(y.shape, y, self.generator)

    def update_parameters(self, sigma: float | None = None, **kwargs) -> None:
        if sigma is not None:
            self.sigma = self._checked(sigma)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


def bicubic_upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic ×scale upsampling aligned like :func:`kfops.degrade` (LR pixel i at HR
    s·i + (s−1)/2, i.e. ``align_corners=False``). lr: (B, C, h, w) -> (B, C, s·h, s·w)."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


class Degradation(nn.Module):
    """y = (x ⊛ filter)↓factor with a choice of boundary handling.

    Args:
        filter: (K, K) kernel shared by all channels, (C, K, K) per channel, or
            (B|1, C|1, K, K). Values must be finite with a positive sum; the kernel is used
            as given (not renormalised).
        factor: integer scale factor s >= 1.
        padding: ``reflect`` | ``replicate`` | ``circular`` | ``zeros`` | ``valid``.
        learnable: store the filter as an ``nn.Parameter`` (default: a buffer, unless
            ``filter`` already is a Parameter).
        noise_model: callable ``y -> noisy y`` applied by ``forward`` (``op(x)``), e.g.
            :class:`GaussianNoise` or any deepinv noise model; None = noise-free.

    Images are (B, C, H, W); with a padded mode A maps (H, W) to (H // s, W // s). The
    alignment convention is that of :func:`kfops.degrade`. As in deepinv, ``op(x)`` is the
    noisy measurement ``noise(A(x))`` and ``A`` the noise-free operator.
    """

    def __init__(
        self,
        filter: torch.Tensor,
        factor: int,
        padding: str = "reflect",
        learnable: bool = False,
        noise_model: Callable[..., torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.noise_model = noise_model
        self.factor = _check_scale(factor)
        self.padding = _check_padding(padding)
        f = self._validated(filter)
        if learnable or isinstance(filter, nn.Parameter):
            self.filter = nn.Parameter(f if isinstance(f, nn.Parameter) else f.clone())
        else:
            self.register_buffer("filter", f.detach().clone())

    @staticmethod
    def _validated(filter: torch.Tensor) -> torch.Tensor:
        if not isinstance(filter, torch.Tensor):
            raise KernelError(f"filter must be a torch.Tensor, got {type(filter).__name__}")
        if filter.dim() not in (2, 3, 4):
            raise KernelError(
                f"filter must have shape (K, K), (C, K, K) or (B, C, K, K), got "
                f"{tuple(filter.shape)}"
            )
        if not filter.is_floating_point():
            filter = filter.to(torch.get_default_dtype())
        check_kernel_values(filter)
        return filter

    # ------------------------------------------------------------------ parameters
    def update_parameters(
        self, filter: torch.Tensor | None = None, factor: int | None = None, **kwargs
    ) -> None:
        """Replace the filter (keeping Parameter/buffer status) and/or the factor."""
        if filter is not None:
            f = self._validated(filter)
            if isinstance(self.filter, nn.Parameter):
                if isinstance(f, nn.Parameter):
                    self.filter = f
                else:
                    with torch.no_grad():
                        if f.shape == self.filter.shape:
                            self.filter.copy_(f)
                        else:
                            self.filter = nn.Parameter(f.detach().clone().to(self.filter.device))
            else:
                self.filter = f.detach().clone().to(self.filter.device)
        if factor is not None:
            self.factor = _check_scale(factor)

    def update(self, **kwargs) -> None:
        """:meth:`update_parameters` of the operator and of the noise model (where it has
        one), e.g. ``update(filter=k, sigma=0.02)``."""
        self.update_parameters(**kwargs)
        if hasattr(self.noise_model, "update_parameters"):
            self.noise_model.update_parameters(**kwargs)

    def set_noise_model(self, noise_model: Callable[..., torch.Tensor] | None) -> None:
        """Replace the noise model (an ``nn.Module`` or any callable, or None)."""
        if "noise_model" in self._modules:  # a module slot takes modules only
            del self._modules["noise_model"]
        self.noise_model = noise_model

    def _kernel_for(self, x: torch.Tensor) -> torch.Tensor:
        k = self.filter
        if k.dtype != x.dtype or k.device != x.device:
            k = k.to(dtype=x.dtype, device=x.device)
        return k

    # ------------------------------------------------------------------ operator
    def A(self, x: torch.Tensor, filter: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Degrade x (B, C, H, W) -> (B, C, H // s, W // s)."""
        if filter is not None or kwargs.get("factor") is not None:
            self.update_parameters(filter=filter, factor=kwargs.get("factor"))
        return degrade(x, self._kernel_for(x), self.factor, self.padding, check_values=False)

    def noise(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """The noise model applied to measurements ``y`` (``y`` itself without one)."""
        return y if self.noise_model is None else self.noise_model(y, **kwargs)

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """The measurement ``noise(A(x))``; ``filter=``/``factor=`` update the operator
        first, other keyword arguments go to the noise model."""
        y = self.A(x, filter=kwargs.pop("filter", None), factor=kwargs.pop("factor", None))
        return self.noise(y, **kwargs)

    def A_vjp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """vᵀ ∂A/∂x at x, which for a linear A is Aᵀv (at x's size)."""
        return self.A_adjoint(v, hr_size=x.shape[-2:])

    def A_adjoint(
        self,
        y: torch.Tensor,
        hr_size: Sequence[int] | None = None,
        filter: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Transpose of A; ``hr_size`` defaults to factor × the LR size."""
        if filter is not None:
            self.update_parameters(filter=filter)
        return degrade_adjoint(y, self._kernel_for(y), self.factor, self.padding, hr_size)

    def A_A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.A(self.A_adjoint(y, **kwargs))

    def A_adjoint_A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.A_adjoint(self.A(x), hr_size=x.shape[-2:])

    def _hr_size(self, y: torch.Tensor, hr_size) -> tuple[int, int]:
        if hr_size is not None:
            return int(hr_size[0]), int(hr_size[1])
        if self.padding == "valid":
            raise ShapeError("hr_size is required with padding 'valid'")
        return self.factor * y.shape[-2], self.factor * y.shape[-1]

    def A_dagger(
        self,
        y: torch.Tensor,
        hr_size: Sequence[int] | None = None,
        max_iter: int = 50,
        tol: float = 1e-6,
        eps: float = 0.0,
    ) -> torch.Tensor:
        """Minimum-norm least-squares solution x = Aᵀ(AAᵀ + eps·I)⁻¹y by CG (LR-sized
        system). ``eps > 0`` adds Tikhonov damping for ill-conditioned kernels; a small
        ``max_iter`` also regularises (early stopping)."""
        size = self._hr_size(y, hr_size)

        def normal(z: torch.Tensor) -> torch.Tensor:
            out = self.A(self.A_adjoint(z, hr_size=size))
            return out + eps * z if eps else out

        z = conjugate_gradient(normal, y, max_iter=max_iter, tol=tol)
        return self.A_adjoint(z, hr_size=size)

    def prox_l2(
        self,
        z: torch.Tensor,
        y: torch.Tensor,
        gamma: float,
        max_iter: int = 50,
        tol: float = 1e-6,
    ) -> torch.Tensor:
        """argmin_x ½‖Ax − y‖² + 1/(2γ)‖x − z‖², solved by CG on (AᵀA + I/γ)x = Aᵀy + z/γ."""
        if gamma <= 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        size = z.shape[-2:]
        b = self.A_adjoint(y, hr_size=size) + z / gamma

        def normal(x: torch.Tensor) -> torch.Tensor:
            return self.A_adjoint(self.A(x), hr_size=size) + x / gamma

        return conjugate_gradient(normal, b, x0=z, max_iter=max_iter, tol=tol)

    def adjointness_test(self, u: torch.Tensor, generator: torch.Generator | None = None):
        """⟨A u', v⟩ − ⟨u', Aᵀ v⟩ for random u' shaped like u and random v (≈ 0 when the
        adjoint is exact; compare with ‖u'‖‖v‖ for a relative figure)."""
        u_in = _randn(u.shape, u, generator)
        au = self.A(u_in)
        v = _randn(au.shape, u, generator)
        atv = self.A_adjoint(v, hr_size=u.shape[-2:])
        return (au * v).sum() - (u_in * atv).sum()

    def compute_sqnorm(
        self,
        x0: torch.Tensor,
        max_iter: int = 100,
        tol: float = 1e-4,
        verbose: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """‖A‖² (largest eigenvalue of AᵀA) by power iteration from a random x shaped x0."""
        x = _randn(x0.shape, x0, generator)
        x = x / x.norm()
        lam = torch.zeros((), dtype=x0.dtype, device=x0.device)
        for it in range(max_iter):
            y = self.A_adjoint_A(x)
            lam_new = (x * y).sum()
            x = y / y.norm().clamp_min(torch.finfo(x0.dtype).tiny)
            if it > 0 and abs(float(lam_new - lam)) <= tol * abs(float(lam_new)):
                lam = lam_new
                break
            lam = lam_new
        if verbose:
            print(f"compute_sqnorm: {float(lam):.6g} after {it + 1} iterations")
        return lam

    def extra_repr(self) -> str:
        return f"factor={self.factor}, padding={self.padding!r}, filter={tuple(self.filter.shape)}"


def backproject(
    lr: torch.Tensor,
    kernel: torch.Tensor,
    scale: int,
    padding: str = "reflect",
    max_iter: int = 20,
    eps: float = 1e-3,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """Non-blind SR with a known kernel: x = x₀ + A†(y − A x₀), x₀ = bicubic(y).

    Irani–Peleg back-projection with the (damped) pseudo-inverse of the degradation: the
    result reproduces the LR image (up to ``eps`` and ``max_iter``, which regularise
    ill-conditioned kernels) and keeps the bicubic guess in the null space of A.
    This is the paper's "GT kernel" baseline when given the true kernel.

    Args:
        lr: (B, C, h, w) or (C, h, w) LR image, typically in [0, 1].
        kernel: kernel in any layout accepted by :class:`Degradation`.
        scale: integer factor. Returns (B, C, s·h, s·w) (or (C, s·h, s·w)).
    """
    squeeze = lr.dim() == 3
    y = lr.unsqueeze(0) if squeeze else lr
    if y.dim() != 4:
        raise ShapeError(f"lr must be (C, h, w) or (B, C, h, w), got {tuple(lr.shape)}")
    op = Degradation(kernel.to(dtype=y.dtype, device=y.device), scale, padding)
    x0 = bicubic_upsample(y, op.factor)
    x = x0 + op.A_dagger(y - op.A(x0), hr_size=x0.shape[-2:], max_iter=max_iter, eps=eps)
    if clamp is not None:
        x = x.clamp(*clamp)
    return x.squeeze(0) if squeeze else x
