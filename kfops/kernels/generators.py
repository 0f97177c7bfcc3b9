"""Kernel generators: Gaussians, box, the filters of an ordinary downscale, the paper's
stress shapes, camera shake, defocus disks and linear motion. All return ``float64``
kernels summing to 1 unless a ``dtype`` is given."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from kfops.errors import KernelError

from .checks import Size, _finite, _pos_int, _size2, validate_kernel
from .geometry import recenter


def _grid(
    shape: tuple[int, int], center: tuple[float, float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates ``(y, x)`` (rows, cols) relative to ``center`` (array coordinates
    ``(row, col)``; None = the array centre)."""
    cy, cx = ((shape[0] - 1) / 2, (shape[1] - 1) / 2) if center is None else center
    y = torch.arange(shape[0], dtype=torch.float64) - cy
    x = torch.arange(shape[1], dtype=torch.float64) - cx
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return yy, xx


def anisotropic_gaussian(
    size: Size,
    sigma_x: float,
    sigma_y: float,
    theta: float = 0.0,
    dtype: torch.dtype = torch.float64,
    center: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Anisotropic Gaussian sampled at pixel centres, centred on the array centre (or at
    array coordinates ``center`` = ``(row, col)``), sum 1.

    ``sigma_x`` is the std along the principal axis at angle ``theta`` (radians) from the +x
    (column) axis towards the +y (row) axis, ``sigma_y`` the std perpendicular to it. Rows grow
    downwards, so a positive ``theta`` looks clockwise on screen. Shape ``size`` (int or
    ``(H, W)``); values are truncated at the array border and renormalised.
    """
    shape = _size2(size)
    sx, sy = _finite(sigma_x, "sigma_x"), _finite(sigma_y, "sigma_y")
    th = _finite(theta, "theta")
    if sx <= 0 or sy <= 0:
        raise KernelError(f"Gaussian sigmas must be positive, got ({sx:g}, {sy:g})")
    yy, xx = _grid(shape, center)
    c, s = math.cos(th), math.sin(th)
    u = c * xx + s * yy  # coordinate along the principal axis
    v = -s * xx + c * yy
    k = torch.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    k = validate_kernel(k, "Gaussian kernel (sigma too small for the grid?)")
    return (k / k.sum()).to(dtype)


def gaussian(
    size: Size,
    sigma: float,
    dtype: torch.dtype = torch.float64,
    center: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Isotropic Gaussian of std ``sigma`` px, centred on the array centre (or at array
    coordinates ``center`` = ``(row, col)``), sum 1."""
    return anisotropic_gaussian(size, sigma, sigma, 0.0, dtype, center)


def box(size: Size, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform kernel of shape ``size`` (int or ``(H, W)``), sum 1."""
    h, w = _size2(size)
    return torch.full((h, w), 1.0 / (h * w), dtype=dtype)


def _cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel (support |x| < 2; a = -0.5 in PIL and Matlab)."""
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


# method -> (support radius in LR pixels, profile of the LR-pixel coordinate)
_RESIZE_PROFILES: dict[str, tuple[float, Callable[[torch.Tensor], torch.Tensor]]] = {
    "area": (0.5, lambda x: (x.abs() < 0.5).to(x.dtype)),
    "bilinear": (1.0, lambda x: (1 - x.abs()).clamp_min(0)),
    "bicubic": (2.0, _cubic),
}
RESIZE_METHODS = tuple(_RESIZE_PROFILES)


def resize_filter(
    scale: int, method: str = "bicubic", size: int | None = None, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The blur of an ordinary ×``scale`` downscale, as a kernel for :func:`kfops.degrade`.

    ``method`` is ``"area"`` (the mean of each s×s block), ``"bilinear"`` (a triangle of
    half-width s HR pixels) or ``"bicubic"`` (Keys' cubic, a = −0.5, stretched by s): the
    anti-aliased resizes of PIL, Matlab's ``imresize`` and ``torch.nn.functional.interpolate
    (..., antialias=True)``, which ``degrade(x, resize_filter(s, m), s)`` reproduces away from
    the border. Separable, sum 1; the bicubic filter has small negative lobes. Shape
    ``(size, size)`` with the taps placed so that the output stays aligned (the centre at
    :func:`kfops.kernel_inr.target_center`); ``size`` defaults to the smallest support
    (4s or 4s − 1 taps for bicubic at even or odd s).
    """
    from kfops.kernel_inr import target_center

    s = _pos_int(scale, "scale")
    if method not in _RESIZE_PROFILES:
        raise KernelError(
            f"unknown resize method {method!r}; choose from {', '.join(RESIZE_METHODS)}"
        )
    radius, profile = _RESIZE_PROFILES[method]
    half = math.ceil(radius * s) + 1
    offsets = torch.arange(-half, half + 1, dtype=torch.float64) + (0.5 if s % 2 == 0 else 0.0)
    taps = profile(offsets / s)
    keep = (taps != 0).nonzero().flatten()
    taps = taps[int(keep[0]) : int(keep[-1]) + 1]
    n = taps.numel()
    if size is None:
        size = n
    size = _pos_int(size, "size")
    if size < n:
        raise KernelError(f"the x{s} {method} filter needs at least {n} taps, got size {size}")
    start = round(target_center(size, s) - (n - 1) / 2)
    line = torch.zeros(size, dtype=torch.float64)
    line[start : start + n] = taps / taps.sum()
    return torch.outer(line, line).to(dtype)


def _stress_size(size: int, name: str) -> int:
    n = _pos_int(size, f"{name} size")
    if n < 4:
        raise KernelError(f"{name} size must be at least 4, got {n}")
    return n


def _stroke(n: int) -> int:
    """Line width of the stress shapes: 2 px at size 24 (``round(n / 12)``, at least 1)."""
    return max(1, round(n / 12))


def _half_side(n: int) -> int:
    """About ``n / 2``, with the parity of ``n`` so the square centres exactly."""
    side = n // 2
    return side + 1 if (n - side) % 2 else side


def filled_square(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform square of side ~``size/2`` (12 at 24) centred in a ``(size, size)`` array, sum 1."""
    n = _stress_size(size, "filled_square")
    side = _half_side(n)
    k = torch.zeros(n, n, dtype=torch.float64)
    a = (n - side) // 2
    k[a : a + side, a : a + side] = 1.0
    return recenter(k).to(dtype)


def empty_square(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Square outline of side ~``size/2`` and line width ``round(size/12)`` (12 and 2 px at 24),
    centred in a ``(size, size)`` array, sum 1."""
    n = _stress_size(size, "empty_square")
    side, w = _half_side(n), _stroke(n)
    w = min(w, max(1, (side - 1) // 2))
    k = torch.zeros(n, n, dtype=torch.float64)
    a = (n - side) // 2
    k[a : a + side, a : a + side] = 1.0
    k[a + w : a + side - w, a + w : a + side - w] = 0.0
    return recenter(k).to(dtype)


def l_shape(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """An "L": vertical arm on the left, horizontal arm at the bottom, each ``round(size/2)``
    long and ``round(size/12)`` wide (12 and 2 px at 24), recentred so its COM sits on the
    array centre (the sub-pixel part of that shift softens the edges), sum 1."""
    n = _stress_size(size, "l_shape")
    arm, w = max(2, round(n / 2)), _stroke(n)
    k = torch.zeros(n, n, dtype=torch.float64)
    a = (n - arm) // 2
    k[a : a + arm, a : a + w] = 1.0
    k[a + arm - w : a + arm, a : a + arm] = 1.0
    return recenter(k).to(dtype)


def camera_shake(
    size: int,
    generator: torch.Generator | None = None,
    length: float | None = None,
    n_steps: int = 1000,
    anxiety: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Random camera-shake kernel ``(size, size)``, in the spirit of Boracchi & Foi (2012).

    A constant-speed 2-D trajectory of total path length ``length`` px (default ``0.8 * size``)
    is simulated in ``n_steps`` steps. The direction has inertia: at each step it is perturbed
    by Gaussian noise (a random walk of the heading), pulled back towards the start point
    (keeps the path compact), and with small probability jerked into a sharp near-reversal
    (random turn of pi +- 0.5 rad). Per-kernel strengths of these effects are drawn at random;
    ``anxiety`` scales the noise. Samples are splatted bilinearly onto the grid (equal time per
    sample), the path is scaled down about its COM if it would not fit with a 1 px margin,
    then the kernel is recentred (COM on the array centre) and normalised to sum 1.
    All randomness comes from ``generator`` (the global torch RNG if None), so a seeded
    generator reproduces the kernel.
    """
    n = _pos_int(size, "camera_shake size")
    if n < 3:
        raise KernelError(f"camera_shake size must be at least 3, got {n}")
    steps = _pos_int(n_steps, "n_steps")
    path_len = 0.8 * n if length is None else _finite(length, "length")
    noise_scale = _finite(anxiety, "anxiety")
    if path_len < 0 or noise_scale < 0:
        raise KernelError(f"length and anxiety must be >= 0, got {path_len:g}, {noise_scale:g}")

    g = dict(generator=generator, dtype=torch.float64)
    params = torch.rand(4, **g).tolist()
    noise = torch.randn(steps, 2, **g).tolist()
    jerk_u = torch.rand(steps, **g).tolist()
    jerk_a = torch.rand(steps, **g).tolist()

    shake = noise_scale * (0.5 + 2.5 * params[0])  # heading diffusion per sqrt(path)
    pull = 6.0 * params[1]  # centripetal strength
    p_jerk = 1.5 * params[2] / steps  # expected number of jerks in [0, 1.5]
    heading = 2.0 * math.pi * params[3]
    dt = 1.0 / steps
    sq = math.sqrt(dt)
    scale = max(path_len, 1e-12) / 8.0  # distance at which the pull reaches full strength
    vx, vy = math.cos(heading), math.sin(heading)
    x = y = 0.0
    xs, ys = [0.0], [0.0]
    for t in range(steps):
        vx += sq * shake * noise[t][0] - dt * pull * x / scale
        vy += sq * shake * noise[t][1] - dt * pull * y / scale
        if jerk_u[t] < p_jerk:
            turn = math.pi + (jerk_a[t] - 0.5)
            c, s = math.cos(turn), math.sin(turn)
            vx, vy = c * vx - s * vy, s * vx + c * vy
        norm = math.hypot(vx, vy) or 1.0
        vx, vy = vx / norm, vy / norm
        x += path_len * dt * vx
        y += path_len * dt * vy
        xs.append(x)
        ys.append(y)

    px = torch.tensor(xs, dtype=torch.float64)
    py = torch.tensor(ys, dtype=torch.float64)
    px, py = px - px.mean(), py - py.mean()
    half = (n - 1) / 2 - 1.0
    reach = float(torch.maximum(px.abs().max(), py.abs().max()))
    if reach > half:
        px, py = px * (half / reach), py * (half / reach)
    k = _splat(py + (n - 1) / 2, px + (n - 1) / 2, (n, n))
    return recenter(k).to(dtype)


def _splat(py: torch.Tensor, px: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Equal-weight points at array coordinates ``(py, px)`` (1-D float64, each inside
    ``[0, H-1] x [0, W-1]``) spread bilinearly onto a ``shape`` grid of zeros."""
    h, w = shape
    y0 = py.floor().clamp(0, max(h - 2, 0))
    x0 = px.floor().clamp(0, max(w - 2, 0))
    fy, fx = py - y0, px - x0
    y0, x0 = y0.long(), x0.long()
    k = torch.zeros(h * w, dtype=torch.float64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            keep = (wy * wx) > 0
            k.index_add_(0, ((y0 + dy) * w + (x0 + dx))[keep], (wy * wx)[keep])
    return k.view(h, w)


def disk(
    size: Size,
    radius: float,
    dtype: torch.dtype = torch.float64,
    supersample: int = 8,
) -> torch.Tensor:
    """Defocus (pillbox) kernel: each pixel weighted by the fraction of it that a disc of
    ``radius`` px, centred on the array centre, covers (measured on ``supersample``² points
    per pixel, so the rim is anti-aliased); sum 1. The disc must fit: ``radius`` at most
    half the shorter side of ``size`` (int or ``(H, W)``)."""
    shape = _size2(size)
    r = _finite(radius, "radius")
    m = _pos_int(supersample, "supersample")
    if r <= 0:
        raise KernelError(f"disk radius must be positive, got {r:g}")
    if r > min(shape) / 2:
        raise KernelError(f"a disk of radius {r:g} does not fit a {shape[0]}x{shape[1]} kernel")
    yy, xx = _grid(shape)
    sub = (torch.arange(m, dtype=torch.float64) + 0.5) / m - 0.5
    dy = yy[..., None, None] + sub[:, None]
    dx = xx[..., None, None] + sub[None, :]
    cover = (dy * dy + dx * dx <= r * r).to(torch.float64).mean((-2, -1))
    k = validate_kernel(cover, "disk kernel (radius too small for the grid?)")
    return (k / k.sum()).to(dtype)


def linear_motion(
    size: Size, length: float, theta: float = 0.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Uniform linear motion blur: a straight segment of ``length`` px through the array
    centre at angle ``theta`` (radians, from the +x (column) axis towards +y (rows, down),
    as in :func:`anisotropic_gaussian`), drawn as 16 points per pixel of length spread
    bilinearly (so about 2 px wide across the motion, anti-aliased); sum 1, COM on the
    array centre. ``length`` 0 is a point (a delta where the centre falls on a pixel). The
    segment must fit inside the ``size`` (int or ``(H, W)``) array."""
    h, w = _size2(size)
    n_len = _finite(length, "length")
    th = _finite(theta, "theta")
    if n_len < 0:
        raise KernelError(f"motion length must be >= 0, got {n_len:g}")
    c, s = math.cos(th), math.sin(th)
    half_y, half_x = abs(s) * n_len / 2, abs(c) * n_len / 2
    if half_y > (h - 1) / 2 or half_x > (w - 1) / 2:
        raise KernelError(f"a motion of length {n_len:g} px does not fit a {h}x{w} kernel")
    n = max(1, math.ceil(16 * n_len))
    t = ((torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5) * n_len
    k = _splat((h - 1) / 2 + s * t, (w - 1) / 2 + c * t, (h, w))
    return (k / k.sum()).to(dtype)
