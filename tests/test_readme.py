"""The Python examples of README.md run as written (the blind one on tiny presets)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import kfops
from kfops import presets

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_the_operator_and_the_blind_examples():
    blocks = _python_blocks()
    assert any("kfops.degrade(" in b for b in blocks)
    assert any("Reconstructor(" in b for b in blocks)


def test_readme_operator_example_runs():
    (block,) = [b for b in _python_blocks() if "kfops.degrade(" in b]
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)
    assert ns["y"].shape == (1, 3, 64, 64) and ns["xt"].shape == (1, 3, 256, 256)
    # the adjoint is the transpose: <A x, y> = <x, Aᵀ y>
    lhs, rhs = float((ns["y"] * ns["y"]).sum()), float((ns["x"] * ns["xt"]).sum())
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)


def test_readme_blind_example_runs(monkeypatch):
    """The same calls on presets shrunk to seconds: the result has the documented shapes,
    range and kernel normalisation."""
    (block,) = [b for b in _python_blocks() if "Reconstructor(" in b]
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(
        presets.PRIOR_PRESETS, "cpu", dict(presets.PRIOR_PRESETS["cpu"], steps=3, crop=16)
    )
    monkeypatch.setitem(presets.RECON_PRESETS, "cpu", dict(presets.RECON_PRESETS["smoke"]))
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)
    lr, sr, kernel = ns["lr"], ns["sr"], ns["kernel"]
    assert isinstance(ns["result"], kfops.ReconResult)
    assert sr.shape == (1, lr.shape[1], 4 * lr.shape[2], 4 * lr.shape[3])
    assert float(sr.min()) >= 0 and float(sr.max()) <= 1
    assert kernel.shape == (24, 24) and abs(float(kernel.sum()) - 1) < 1e-5
    assert torch.isfinite(sr).all()
