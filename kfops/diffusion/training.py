"""The training state of one :meth:`PatchPrior.fit` (:class:`PriorTraining`): the
optimiser and its schedule, the random crops, the recovery from non-finite steps and the
resumable checkpoint."""

from __future__ import annotations

import io as _io
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DivergenceError
from ..guard import Snapshot, checked_loss, scale_lr

CHECKPOINT_KIND = "kfops-prior-training"


class PriorTraining:
    """Training of ``prior``'s network on ``x_full`` (1, C, h, w) in [−1, 1]: ``batch``
    random crops of at most ``crop``² per step, drawn from ``generator``; Adam at ``lr``
    cosine-annealed to 0 over ``steps``. ``recipe`` identifies the training (the image's
    hash and the settings); a ``checkpoint`` written for the same recipe is resumed from
    (:attr:`start`)."""

    def __init__(
        self,
        prior,
        x_full: torch.Tensor,
        recipe: dict,
        generator: torch.Generator,
        checkpoint: Path | None,
        max_recoveries: int,
    ) -> None:
        self.prior, self.x_full, self.recipe = prior, x_full, recipe
        self.g, self.ckpt, self.max_recoveries = generator, checkpoint, max_recoveries
        self.batch = recipe["batch"]
        self.ch, self.cw = (min(recipe["crop"], n) for n in x_full.shape[-2:])
        self.params = list(prior.net.parameters())
        self.opt = adam(self.params, recipe["lr"])
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.opt, T_max=max(recipe["steps"], 1)
        )
        self.losses: list[float] = []
        self.start = self.recoveries = 0
        if checkpoint is not None and checkpoint.exists():
            self._resume(checkpoint)
        self.snapshot = Snapshot([prior.net], [self.opt])

    def _resume(self, path: Path) -> None:
        state = read_checkpoint(path, self.recipe)
        if state is None:
            return
        self.prior.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.g.set_state(state["generator"])
        self.losses = list(state["losses"])
        self.start, self.recoveries = int(state["step"]), int(state["recoveries"])

    def save_checkpoint(self, step: int) -> None:
        """Write the full state after ``step`` steps to the checkpoint, atomically."""
        net = self.prior.net
        torch_save_atomic(
            self.ckpt,
            {
                "kind": CHECKPOINT_KIND,
                "recipe": self.recipe,
                "step": step,
                "recoveries": self.recoveries,
                "losses": self.losses,
                "net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(),
                "generator": self.g.get_state(),
            },
        )

    def _loss(self) -> torch.Tensor:
        """The v-prediction MSE on one batch of random crops at uniform t (the crops' corners,
        t and the noise drawn from the generator on the CPU, in that order)."""
        g, n, (h, w), dev = self.g, self.batch, self.x_full.shape[-2:], self.x_full.device
        ys = torch.randint(0, h - self.ch + 1, (n,), generator=g).tolist()
        xs = torch.randint(0, w - self.cw + 1, (n,), generator=g).tolist()
        ch, cw = self.ch, self.cw
        x0 = torch.cat(
            [self.x_full[..., y : y + ch, x : x + cw] for y, x in zip(ys, xs, strict=True)]
        )
        schedule = self.prior.schedule
        t = torch.randint(0, len(schedule), (n,), generator=g)
        noise = torch.randn(x0.shape, generator=g).to(dev)
        t = t.to(dev)
        x_t = schedule.q_sample(x0, t, noise)
        return F.mse_loss(self.prior.net(x_t, t), schedule.v_target(x0, t, noise))

    def step(self, step: int) -> bool:
        """Training step ``step`` (0-based). False where its loss or gradient was not finite:
        the state of the last snapshot is restored and the learning rate halved (then
        :class:`DivergenceError` after ``max_recoveries`` such steps)."""
        loss = self._loss()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        value = checked_loss(loss, self.params)  # the step's one wait for the device
        if value is None:
            self.recoveries += 1
            if self.recoveries > self.max_recoveries:
                raise DivergenceError(
                    f"prior training diverged (NaN/inf) at step {step} after "
                    f"{self.max_recoveries} restarts from the last good state with a "
                    "lower learning rate"
                )
            self.snapshot.restore()
            scale_lr(self.opt, 0.5, self.sched)
            warnings.warn(
                f"non-finite loss at step {step}: restored step {self.snapshot.step}, "
                "learning rate halved",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        self.opt.step()
        self.sched.step()
        self.losses.append(value)
        if (step + 1) % 50 == 0:
            self.snapshot.take(step + 1)
        return True


def read_checkpoint(path: Path, recipe: dict) -> dict | None:
    """The training state in ``path`` if it was written for the same recipe, else None
    (an unreadable or foreign file is ignored and later overwritten)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        return None
    return state if state.get("recipe") == recipe else None


def torch_save_atomic(path: Path, state: dict) -> None:
    """``torch.save`` to ``path`` through a temporary file: a reader never sees half a file."""
    from ..io import atomic_write

    buf = _io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused multi-tensor update where this torch build has it (CPU and
    CUDA in torch >= 2.4): the optimizer step of a small net is otherwise overhead."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)
