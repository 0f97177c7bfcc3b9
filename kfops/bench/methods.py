"""The registry of benchmark methods and the built-in ones: ``bicubic``, the oracle
``gt-backprojection`` (back-projection with the true kernel) and the blind ``kfops``
method with its ablations (Tables 3-4 of the paper).

A method is ``fn(lr, scale, context) -> (sr, kernel | None)``; see :mod:`kfops.bench` for
the protocol and what ``context`` holds.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..degradation import backproject, bicubic_upsample
from ..errors import KfopsError

DEFAULT_METHODS = ("bicubic", "gt-backprojection")
ENTRY_POINT_GROUP = "kfops.bench_methods"

MethodFn = Callable[[torch.Tensor, int, dict], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class Method:
    """A registered SR method: ``fn(lr, scale, context) -> (sr, kernel | None)``."""

    name: str
    fn: MethodFn
    estimates_kernel: bool = False


_METHODS: dict[str, Method] = {}
_plugins_loaded = False


def register_method(
    name: str, fn: MethodFn, estimates_kernel: bool = False, replace: bool = False
) -> Method:
    """Add a method to the registry under ``name`` (letters, digits, ``._-``).

    ``estimates_kernel``: the method returns a kernel (it gets a row in ``kernels.png``).
    Registering an existing name raises :class:`KfopsError` unless ``replace``.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise KfopsError(f"bad method name {name!r}: use letters, digits, '.', '_', '-'")
    if not callable(fn):
        raise KfopsError(f"method {name!r}: fn must be callable")
    if name in _METHODS and not replace:
        raise KfopsError(f"method {name!r} is already registered (pass replace=True)")
    method = Method(name, fn, bool(estimates_kernel))
    _METHODS[name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a method from the registry (no error if absent)."""
    _METHODS.pop(name, None)


def _load_plugins() -> None:
    """Call the zero-argument registering functions of the ``kfops.bench_methods``
    entry points once (a failing plugin only warns)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as exc:  # a broken plugin must not break the built-in methods
            warnings.warn(f"kfops bench plugin {ep.name!r} failed: {exc}", stacklevel=2)


def available_methods() -> list[str]:
    """Names of the registered methods, in registration order."""
    _load_plugins()
    return list(_METHODS)


def get_method(name: str) -> Method:
    """The registered method ``name``; an unknown name raises :class:`KfopsError` listing
    the known ones."""
    if name not in _METHODS:
        _load_plugins()
    if name not in _METHODS:
        raise KfopsError(f"unknown method {name!r}; known methods: {', '.join(_METHODS)}")
    return _METHODS[name]


def _bicubic(lr: torch.Tensor, scale: int, context: dict) -> tuple[torch.Tensor, None]:
    return bicubic_upsample(lr, scale).clamp(0, 1), None


def _gt_backprojection(lr: torch.Tensor, scale: int, context: dict) -> tuple[torch.Tensor, None]:
    k = context["gt_kernel"].to(device=lr.device, dtype=lr.dtype)
    return backproject(lr, k, scale), None


def _kfops_method(preset: str, **overrides) -> MethodFn:
    """The blind method: train the prior on the LR image, then Phase 2 (preset + overrides,
    e.g. an ablation ``mode`` or ``kernel_model``)."""

    def fn(lr: torch.Tensor, scale: int, context: dict):
        from ..diffusion import PatchPrior
        from ..presets import prior_config, recon_config
        from ..reconstructor import Reconstructor

        g = torch.Generator().manual_seed(int(context["seed"]))
        cfg = recon_config(preset, **overrides)
        prior = None
        if cfg.mode in ("full", "pd_unet"):
            cfg_p = prior_config(preset, channels=lr.shape[1])
            prior = PatchPrior(cfg_p, generator=g).to(lr.device)
            prior.fit(lr, generator=g, progress=False)
        res = Reconstructor(scale, cfg).run(lr, prior, generator=g)
        return res.hr, res.kernel

    return fn


register_method("bicubic", _bicubic)
register_method("gt-backprojection", _gt_backprojection)
register_method("kfops", _kfops_method("cpu"), estimates_kernel=True)
register_method("kfops-paper", _kfops_method("paper"), estimates_kernel=True)
for _mode in ("dip", "unet_only", "pd_unet"):
    register_method(f"kfops-{_mode}", _kfops_method("cpu", mode=_mode), estimates_kernel=True)
for _km in ("direct_relu", "direct_sigmoid", "linear_cnn"):
    register_method(f"kfops-{_km}", _kfops_method("cpu", kernel_model=_km), estimates_kernel=True)
