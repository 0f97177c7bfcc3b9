"""PatchPrior: the single-image patch-diffusion model of Phase 1 (network + schedule).

Images live in [−1, 1] here (``to_model``/``from_model`` convert from/to [0, 1]). The
prior is trained on random crops of the one LR image — each crop is a batch of thousands
of 15×15 patches — with no flips or rotations (the kernel's asymmetry lives in the patch
statistics). In Phase 2 it is frozen and used through :meth:`predict_x0`, with gradients
flowing through its input.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import ImageError, Interrupted, KfopsError
from ..guard import StopRequest
from .pdnet import PDNet
from .schedule import DDPMSchedule
from .training import PriorTraining, torch_save_atomic

__all__ = ["PatchPrior", "PriorConfig", "image_hash", "to_model", "from_model"]

FORMAT_VERSION = 1


def to_model(img01: torch.Tensor) -> torch.Tensor:
    return img01 * 2 - 1


def from_model(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


def image_hash(img: torch.Tensor) -> str:
    """SHA-256 of an image's float32 values and shape (identifies the training image)."""
    t = img.detach().to("cpu", torch.float32).contiguous()
    h = hashlib.sha256(str(tuple(t.shape)).encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()


@dataclass
class PriorConfig:
    channels: int = 3
    hidden: int = 128
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    # training (recorded so a cached prior is reused only for the same recipe)
    steps: int = 600_000
    crop: int = 64
    batch: int = 1
    lr: float = 1e-4
    extra: dict = field(default_factory=dict)


class PatchPrior(nn.Module):
    """PD network + DDPM schedule. ``PatchPrior()`` is the paper's network for RGB.

    ``generator`` (a CPU generator) draws the network's initial weights, so that a prior
    trained with the same generators is the same in every process; without it they come
    from PyTorch's global RNG, as for any ``nn.Module``."""

    def __init__(
        self,
        config: PriorConfig | None = None,
        *,
        generator: torch.Generator | None = None,
        **overrides,
    ) -> None:
        super().__init__()
        cfg = config or PriorConfig()
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise TypeError(f"unknown PatchPrior option {key!r}")
            setattr(cfg, key, value)
        self.config = cfg
        if generator is None:
            self.net = PDNet(cfg.channels, cfg.hidden)
        else:  # the global CPU RNG, seeded from the generator, then restored
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                self.net = PDNet(cfg.channels, cfg.hidden)
        self.schedule = DDPMSchedule.linear(cfg.T, cfg.beta_start, cfg.beta_end)
        self.trained_on: str | None = None
        self.trained_steps = 0
        self.resumed_from = 0
        self.recoveries = 0

    # ----------------------------------------------------------------- inference
    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v-prediction for x_t (B, C, H, W) at integer timesteps t (B,)."""
        return self.net(x_t, t)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x̂₀ = √ᾱ·x_t − √(1−ᾱ)·v̂ for x_t (B, C, H, W) in model range, t (B,) long."""
        t = self._t(t, x_t)
        return self.schedule.x0_from_v(x_t, t, self._v(x_t, t))

    def _v(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's v̂, contiguous. On the CPU it runs on channels-last activations:
        the same values up to rounding, and forward + gradient w.r.t. the input, as in Phase
        2, was 1.1–1.4× faster on 2 cores for 2×3×160² (32 filters; repeated runs on a
        shared machine) and never slower (128 filters, 512² inputs). A whole ``cpu``-preset
        Phase 2 took 158 s instead of 166. Training steps on 64² crops are not faster that
        way, so ``fit`` keeps the default layout."""
        if x_t.device.type != "cpu":
            return self.net(x_t, t)
        v = self.net(x_t.contiguous(memory_format=torch.channels_last), t)
        return v.contiguous()

    @staticmethod
    def _t(t, x: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).long()
        return t.expand(x.shape[0]) if t.dim() == 0 else t

    @torch.no_grad()
    def sample(
        self,
        shape: tuple[int, ...],
        steps: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Ancestral sampling from pure noise; ``steps`` < T uses a respaced schedule.
        Returns (B, C, H, W) in model range [−1, 1]. The generator drives all noise (CPU
        generator; noise is drawn on the CPU and moved, for device-independent results).
        ``device`` must be where the prior is (move it with ``.to`` first)."""
        device = torch.device(device) if device is not None else self._device()
        if device != self._device():
            raise ValueError(
                f"the prior is on {self._device()}, not {device}: move it with .to({str(device)!r})"
            )
        sched = self.schedule if steps is None else self.schedule.respaced(steps)
        x = torch.randn(shape, generator=generator).to(device)
        for i in reversed(range(len(sched))):
            idx = torch.full((shape[0],), i, dtype=torch.long)
            x0 = self.predict_x0(x, sched.timesteps[idx].to(device)).clamp(-1, 1)
            mean, var = sched.posterior(x0, x, idx)
            if i > 0:
                x = mean + var.sqrt() * torch.randn(shape, generator=generator).to(device)
            else:
                x = mean
        return x

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    # ----------------------------------------------------------------- training
    def fit(
        self,
        lr_image: torch.Tensor,
        steps: int | None = None,
        crop: int | None = None,
        lr: float | None = None,
        batch: int | None = None,
        generator: torch.Generator | None = None,
        progress: bool = True,
        callback=None,
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 250,
        max_recoveries: int = 3,
    ) -> list[float]:
        """Train on one LR image (1|-, C, h, w) in [0, 1]. Returns the loss per step.

        Random ``crop``² crops (the whole image when it is smaller), ``batch`` crops per
        step, uniform t, v-prediction MSE, Adam with cosine annealing to 0. No flips or
        rotations. ``callback(step, loss)`` is called after every step.

        Reliability: a non-finite loss or gradient restores the last good state (kept
        every 50 steps) and halves the learning rate, at most ``max_recoveries`` times
        (then :class:`DivergenceError`). With ``checkpoint``, the full training state
        (weights, Adam, scheduler, generator, losses) is written there atomically every
        ``checkpoint_every`` steps and when SIGINT/SIGTERM arrives (then
        :class:`Interrupted` is raised; without ``checkpoint`` signals keep their usual
        effect, e.g. KeyboardInterrupt); a later call with the same image, recipe and
        checkpoint resumes from it, bit-identically on the CPU, and the file is removed
        when training completes.
        """
        cfg = self.config
        steps = int(steps if steps is not None else cfg.steps)
        crop = int(crop if crop is not None else cfg.crop)
        lr = float(lr if lr is not None else cfg.lr)
        batch = int(batch if batch is not None else cfg.batch)
        img = lr_image if lr_image.dim() == 4 else lr_image.unsqueeze(0)
        if img.dim() != 4 or img.shape[0] != 1 or img.shape[1] != cfg.channels:
            raise ImageError(
                f"fit expects one image with {cfg.channels} channels, got {tuple(lr_image.shape)}"
            )
        if min(img.shape[-2:]) < 8:
            raise ImageError(f"image {tuple(img.shape[-2:])} is too small to learn patches from")
        if not bool(torch.isfinite(img).all()):
            raise ImageError("the training image has NaN or inf values")
        x_full = to_model(img.to(self._device(), torch.float32))
        recipe = {
            "image": image_hash(img),
            "config": asdict(cfg),
            "steps": steps,
            "crop": crop,
            "lr": lr,
            "batch": batch,
        }
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        ckpt = Path(checkpoint) if checkpoint is not None else None
        run = PriorTraining(self, x_full, recipe, g, ckpt, max_recoveries)
        self.resumed_from = start = run.start
        bar = _progress(steps, progress, "training prior")
        if bar is not None and start:
            bar.update(start)
        self.train()
        with StopRequest(enabled=ckpt is not None) as stop:
            run.snapshot.take(start)
            for step in range(start, steps):
                if not run.step(step):
                    continue
                done = step + 1
                if bar is not None:
                    bar.update(1)
                    if step % 10 == 0:
                        bar.set_postfix(loss=f"{_ema(run.losses):.4f}", refresh=False)
                if callback is not None:
                    callback(step, run.losses[-1])
                if stop and done < steps:  # only set when there is a checkpoint
                    if bar is not None:
                        bar.close()
                    run.save_checkpoint(done)
                    raise Interrupted(
                        f"{stop.name} during prior training at step {done}/{steps}; "
                        f"resumable from {ckpt}",
                        checkpoint=ckpt,
                    )
                if ckpt is not None and done % checkpoint_every == 0 and done < steps:
                    run.save_checkpoint(done)
        if bar is not None:
            bar.close()
        self.eval()
        self.trained_on = recipe["image"]
        self.trained_steps += steps
        self.recoveries = run.recoveries
        if ckpt is not None:
            ckpt.unlink(missing_ok=True)
        return run.losses

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write config, weights, schedule and the training image hash (atomically)."""
        state = {
            "format": FORMAT_VERSION,
            "config": asdict(self.config),
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "alphas_cumprod": self.schedule.alphas_cumprod,
            "trained_on": self.trained_on,
            "trained_steps": self.trained_steps,
        }
        torch_save_atomic(Path(path), state)

    @classmethod
    def load(cls, path: str | Path, map_location="cpu") -> PatchPrior:
        p = Path(path)
        try:
            state = torch.load(p, map_location=map_location, weights_only=True)
            cfg = PriorConfig(**state["config"])
            prior = cls(cfg)
            prior.net.load_state_dict(state["state_dict"])
        except FileNotFoundError:
            raise KfopsError(f"{p}: no such prior file") from None
        except Exception as exc:
            raise KfopsError(f"{p}: not a kfops prior ({type(exc).__name__})") from None
        prior.schedule = DDPMSchedule(state["alphas_cumprod"])
        if isinstance(map_location, (str, torch.device)):
            prior.to(map_location)  # the network was built on the CPU
        prior.trained_on = state.get("trained_on")
        prior.trained_steps = int(state.get("trained_steps", 0))
        prior.eval()
        return prior


def _ema(values: list[float], n: int = 50) -> float:
    tail = values[-n:]
    return sum(tail) / len(tail)


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from ..progress import progress_bar

    return progress_bar(total, desc, unit="step")


def receptive_field(net: nn.Module, channels: int = 3, size: int = 41) -> torch.Tensor:
    """Boolean (size, size) mask of input pixels that influence the centre output pixel."""
    dev = next(net.parameters()).device
    x = torch.randn(1, channels, size, size, dtype=torch.float64, device=dev, requires_grad=True)
    net = net.double()
    t = torch.tensor([500], device=dev)
    out = net(x, t)
    c = size // 2
    out[0, :, c, c].sum().backward()
    net.float()
    return x.grad.abs().sum(dim=(0, 1)) > 0
