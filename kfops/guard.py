"""Run guards shared by the training loops: stop requests from SIGINT/SIGTERM, and
last-good-state snapshots for recovering from NaN/inf.

``StopRequest`` turns the first SIGINT or SIGTERM into a flag that the loop checks between
steps (so a checkpoint is written from a consistent state); a second SIGINT raises
``KeyboardInterrupt`` at once. Handlers are installed only in the main thread and are
restored on exit.
"""

from __future__ import annotations

import copy
import math
import signal
import threading

import torch
from torch import nn

__all__ = ["StopRequest", "Snapshot", "checked_loss", "scale_lr"]


class StopRequest:
    """Context manager; ``bool(stop)`` is True once SIGINT or SIGTERM was received.
    With ``enabled=False`` it installs nothing (signals keep their usual effect)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __bool__(self) -> bool:
        return self.signal is not None

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> StopRequest:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""


class Snapshot:
    """An in-memory copy of modules' and optimizers' state, restorable in place."""

    def __init__(self, modules: list[nn.Module], optimizers: list[torch.optim.Optimizer]):
        self.modules = modules
        self.optimizers = optimizers
        self.step = -1
        self._states: tuple | None = None

    def take(self, step: int) -> None:
        self.step = step
        self._states = (
            [copy.deepcopy(m.state_dict()) for m in self.modules],
            [copy.deepcopy(o.state_dict()) for o in self.optimizers],
        )

    def restore(self) -> None:
        if self._states is None:
            raise RuntimeError("no snapshot taken")
        mods, opts = self._states
        for m, s in zip(self.modules, mods, strict=True):
            m.load_state_dict(s)
        for o, s in zip(self.optimizers, opts, strict=True):
            lrs = [g["lr"] for g in o.param_groups]  # keep the (lowered) learning rates
            o.load_state_dict(s)
            for g, lr in zip(o.param_groups, lrs, strict=True):
                g["lr"] = lr


def checked_loss(loss: torch.Tensor, params) -> float | None:
    """The loss as a float when it and every existing gradient of ``params`` are finite,
    else None. One device-to-host transfer and a fused reduction over the gradients (their
    largest magnitude), so a training step on a GPU waits once here instead of once per
    check, and the check costs a few kernel launches, not two per parameter."""
    grads = [p.grad for p in params if p.grad is not None]
    value = loss.detach().reshape(())
    value = value.to(torch.promote_types(value.dtype, torch.float32))  # the loss unrounded
    values = [value] if not grads else [value, _max_abs(grads).to(value)]
    out = torch.stack(values).tolist()
    return out[0] if all(math.isfinite(v) for v in out) else None


def _max_abs(tensors: list[torch.Tensor]) -> torch.Tensor:
    """max |x| over a list of tensors (NaN if any holds a NaN), as a 0-dim tensor."""
    total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # torch >= 2.6
    if total_norm is not None:
        return total_norm(tensors, norm_type=math.inf)
    return torch.stack([t.detach().abs().amax().float() for t in tensors]).amax()


def scale_lr(optimizer: torch.optim.Optimizer, factor: float, scheduler=None) -> None:
    """Multiply the learning rate (and a scheduler's base rates) by ``factor``."""
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    if scheduler is not None and hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
