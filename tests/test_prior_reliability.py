"""PatchPrior training survives interruption (SIGINT/SIGTERM → checkpoint → resume,
bit-identical) and numeric faults (restore the last good state, lower the lr)."""

from __future__ import annotations

import os
import signal

import pytest
import torch

import kfops
from kfops.diffusion import PatchPrior
from kfops.errors import DivergenceError, Interrupted


@pytest.fixture(autouse=True)
def _default_sigint():
    """Python's own SIGINT handler for each test, whatever this process inherited (a job
    started in the background by a non-interactive shell starts with SIGINT ignored)."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


def _image():
    hr = kfops.io.load_image("examples/butterfly.png").pixels
    return kfops.degrade(hr, kfops.kernels.gaussian(8, 1.2).float(), 4)[..., :32, :32]


def _fit(prior, img, **kw):
    kw.setdefault("steps", 24)
    return prior.fit(img, crop=16, generator=torch.Generator().manual_seed(5), progress=False, **kw)


def _weights(prior):
    return torch.cat([p.detach().flatten() for p in prior.net.parameters()])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_leaves_a_checkpoint_and_the_rerun_resumes_bit_identically(tmp_path, sig):
    img = _image()
    torch.manual_seed(0)
    straight = PatchPrior(hidden=8)
    losses_straight = _fit(straight, img)

    ckpt = tmp_path / "prior.partial.pt"

    def interrupt(step, loss):
        if step == 9:
            os.kill(os.getpid(), sig)

    torch.manual_seed(0)
    first = PatchPrior(hidden=8)
    with pytest.raises(Interrupted) as info:
        _fit(first, img, checkpoint=ckpt, callback=interrupt)
    assert "step 10/24" in str(info.value) and ckpt.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored

    torch.manual_seed(123)  # a fresh process would initialise differently: must not matter
    second = PatchPrior(hidden=8)
    losses = _fit(second, img, checkpoint=ckpt)
    assert second.resumed_from == 10
    assert losses == losses_straight
    assert torch.equal(_weights(second), _weights(straight))
    assert not ckpt.exists()  # removed once training completed


def test_checkpoint_of_another_recipe_is_ignored(tmp_path):
    img = _image()
    ckpt = tmp_path / "c.pt"

    def interrupt(step, loss):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Interrupted):
        _fit(PatchPrior(hidden=8), img, checkpoint=ckpt, callback=interrupt)
    other = PatchPrior(hidden=8)
    _fit(other, img, checkpoint=ckpt, steps=30)  # different step count: start over
    assert other.resumed_from == 0
    ckpt.write_bytes(b"garbage")
    third = PatchPrior(hidden=8)
    _fit(third, img, checkpoint=ckpt)
    assert third.resumed_from == 0 and not ckpt.exists()


def test_nan_restores_the_last_good_state_and_lowers_the_lr():
    img = _image()
    prior = PatchPrior(hidden=8)
    poisoned = []

    def poison(step, loss):
        if step == 60 and not poisoned:
            poisoned.append(step)
            with torch.no_grad():
                next(prior.net.parameters()).fill_(float("nan"))

    with pytest.warns(RuntimeWarning, match="restored step 50"):
        losses = _fit(prior, img, steps=80, callback=poison)
    assert prior.recoveries == 1
    assert all(torch.isfinite(torch.tensor(losses)))
    assert torch.isfinite(_weights(prior)).all()
    assert len(losses) == 79  # the faulty step is dropped, the others kept


def test_persistent_nan_fails_with_a_clear_error():
    img = _image()
    prior = PatchPrior(hidden=8)
    with torch.no_grad():
        next(prior.net.parameters()).fill_(float("inf"))
    with pytest.warns(RuntimeWarning), pytest.raises(DivergenceError, match="diverged"):
        _fit(prior, img, max_recoveries=2)


def test_without_a_checkpoint_ctrl_c_is_a_plain_keyboard_interrupt():
    def interrupt(step, loss):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        _fit(PatchPrior(hidden=8), _image(), callback=interrupt)


@pytest.mark.parametrize("fused", [True, False], ids=["get_total_norm", "fallback"])
def test_checked_loss_returns_the_loss_only_when_it_and_every_gradient_are_finite(
    fused, monkeypatch
):
    from kfops import guard

    if not fused:
        monkeypatch.delattr(torch.nn.utils, "get_total_norm", raising=False)
    w = [
        torch.zeros(3, dtype=torch.float64, requires_grad=True),
        torch.zeros(2, requires_grad=True),
    ]
    loss = torch.tensor(1 / 3, dtype=torch.float64)
    assert guard.checked_loss(loss, w) == 1 / 3  # no gradients yet; fp64 not rounded
    w[0].grad = torch.full((3,), 1e30, dtype=torch.float64)  # large but finite
    w[1].grad = torch.ones(2)
    assert guard.checked_loss(loss.float(), w) == pytest.approx(1 / 3)
    for bad in (float("nan"), float("inf"), -float("inf")):
        w[1].grad = torch.tensor([0.0, bad])
        assert guard.checked_loss(loss, w) is None
        w[1].grad = torch.ones(2)
        assert guard.checked_loss(torch.tensor(bad), w) is None
