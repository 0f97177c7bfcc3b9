"""Result rows of the measurement scripts: shown as they come and appended to a TSV file,
so that a run cut short keeps every row it finished."""

from __future__ import annotations

from pathlib import Path


def emit_row(line: str, out: Path) -> None:
    """Print ``line`` (tab-separated fields, no newline) and append it to ``out``."""
    print(line, flush=True)
    with open(out, "a") as fh:
        fh.write(line + "\n")
