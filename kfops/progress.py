"""Progress bars (tqdm) that keep logs short: on a terminal a bar redraws several times a
second (as does a notebook's widget); written to a file or a pipe it draws at most once
every 30 s, so a redirected run leaves a few lines, not thousands of carriage-return
updates."""

from __future__ import annotations

import sys
from typing import IO

LOG_INTERVAL = 30.0  # seconds between redraws when the stream is not a terminal


def progress_bar(total: int, desc: str, unit: str = "it", file: IO[str] | None = None, **kwargs):
    """A ``tqdm`` bar over ``total`` units on ``file`` (default ``sys.stderr``), with an
    ETA; ``kwargs`` go to tqdm (``disable``, ``leave``, ...). Callers pass
    ``refresh=False`` to ``set_postfix``, which would otherwise redraw at once."""
    from tqdm.auto import tqdm
    from tqdm.autonotebook import tqdm as auto_notebook
    from tqdm.std import tqdm as plain

    stream = sys.stderr if file is None else file
    is_tty = getattr(stream, "isatty", lambda: False)()
    in_notebook = auto_notebook is not plain  # a widget, whatever the stream says
    if not is_tty and not in_notebook:  # a log: rare redraws, and each bar's last state kept
        kwargs.setdefault("mininterval", LOG_INTERVAL)
        kwargs.setdefault("leave", True)
    kwargs.setdefault("leave", False)
    return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True, **kwargs)
