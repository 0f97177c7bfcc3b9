"""Speed suite settings: 2 threads and a ratio table at the end.

Every benchmark records its group (problem) and role; the summary divides each role's
mean time by the group's reference role (``fused`` for the operator benchmarks, ``eager``
for the network ones), measured in the same run, so the figures are ratios and survive
machine changes.
"""

from __future__ import annotations

import os

import pytest  # noqa: E402
import torch  # noqa: E402

THREADS = int(os.environ.get("KFOPS_BENCH_THREADS", "2"))
torch.set_num_threads(THREADS)

_results: dict[str, dict[str, float]] = {}
_reference: dict[str, str] = {}
_notes: list[str] = []


def record(group: str, role: str, benchmark) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        _results.setdefault(group, {})[role] = stats.stats.mean


def note(text: str) -> None:
    _notes.append(text)


@pytest.fixture
def record_role(benchmark):
    roles = []

    def _set(group: str, role: str, reference: bool = False) -> None:
        benchmark.group = group
        if reference or role == "fused":
            _reference[group] = role
        benchmark.extra_info["role"] = role
        roles.append((group, role))

    yield _set
    for group, role in roles:
        record(group, role, benchmark)


def pytest_terminal_summary(terminalreporter):
    if not _results and not _notes:
        return
    tr = terminalreporter
    tr.section(f"kfops speed ratios (time / reference time, {THREADS} threads)")
    for group, roles in sorted(_results.items()):
        ref_role = _reference.get(group)
        ref = roles.get(ref_role) if ref_role else None
        if not ref:
            continue
        parts = [f"{ref_role} {ref * 1e3:.2f} ms"]
        for role, t in sorted(roles.items()):
            if role != ref_role:
                parts.append(f"{role} {t * 1e3:.2f} ms (x{t / ref:.2f})")
        tr.write_line(f"{group}: " + "; ".join(parts))
    for text in _notes:
        tr.write_line(text)


def pytest_collection_modifyitems(config, items):
    """Quality runs (minutes per image) run only when asked for with ``-m quality``."""
    if "quality" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="quality run: select with -m quality")
    for item in items:
        if "quality" in item.keywords:
            item.add_marker(skip)
