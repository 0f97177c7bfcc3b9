"""Every ``python -m benchmarks.NAME ...`` command quoted in README.md, benchmarks/RESULTS.md
or a benchmark script's docstring names a script that exists and options it accepts, so
the record's commands can be run again as written."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# (script, the rest of the command): in Markdown inline code, in a docstring up to a blank line
_IN_CODE = re.compile(r"`python -m benchmarks\.([a-z0-9_]+)([^`]*)`")
_IN_DOCSTRING = re.compile(r"python -m benchmarks\.([a-z0-9_]+)((?:[^`\n]|\n(?!\n))*)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][\w-]*)")


def _quoted_commands() -> dict[str, set[str]]:
    """{script: the options quoted with it} over the documents; a command ends at the
    closing backtick or a blank line (inside a docstring)."""
    texts = [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md"]
    texts += sorted((ROOT / "benchmarks").glob("*.py"))
    found: dict[str, set[str]] = {}
    for path in texts:
        pattern = _IN_CODE if path.suffix == ".md" else _IN_DOCSTRING
        for name, rest in pattern.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).update(_FLAG.findall(rest))
    return found


COMMANDS = _quoted_commands()


def test_the_documents_quote_commands():
    assert {"phase2_ablation", "final_step", "cv_pick", "prior_curve"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_quoted_command_exists_and_takes_its_options(name, monkeypatch, capsys):
    assert (ROOT / "benchmarks" / f"{name}.py").is_file(), f"benchmarks/{name}.py is quoted"
    module = importlib.import_module(f"benchmarks.{name}")
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as stop:
        module.main()
    assert stop.value.code == 0
    usage = capsys.readouterr().out
    missing = sorted(f for f in COMMANDS[name] if f not in usage)
    assert not missing, f"benchmarks.{name} is quoted with options it lacks: {missing}"


def _quoted_kf_commands() -> dict[str, set[str]]:
    """{subcommand: the options quoted with it} for the ``kf`` lines of README.md and
    benchmarks/RESULTS.md (inline code and the lines of code blocks)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md"):
        text = path.read_text(encoding="utf-8")
        spans = re.findall(r"`(kf [a-z][^`]*)`", text)
        for block in re.findall(r"```\w*\n(.*?)```", text, flags=re.S):
            spans += [line for line in block.splitlines() if re.search(r"(^|\s)kf ", line)]
        for span in spans:
            for m in re.finditer(r"(?:^|\s)kf ([a-z][a-z-]*)([^&`]*)", span):
                flags = re.findall(r"(?<![\w-])(--[a-z][\w-]*|-[a-zA-Z])\b", m.group(2))
                found.setdefault(m.group(1), set()).update(flags)
    return found


KF_COMMANDS = _quoted_kf_commands()


def test_the_documents_quote_kf_commands():
    assert {"upscale", "kernel", "degrade", "bench"} <= set(KF_COMMANDS)


@pytest.mark.parametrize("name", sorted(KF_COMMANDS))
def test_quoted_kf_command_takes_its_options(name):
    from click.testing import CliRunner

    from kfcli.main import cli

    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, f"kf {name} is quoted but does not exist"
    missing = sorted(f for f in KF_COMMANDS[name] if not re.search(rf"{f}\b", result.output))
    assert not missing, f"kf {name} is quoted with options it lacks: {missing}"
