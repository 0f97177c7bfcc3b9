"""kfops.progress: bars redraw rarely when written to a file or pipe."""

from __future__ import annotations

import io
import time

import torch

from kfops.progress import LOG_INTERVAL, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _redraws(stream: io.StringIO, steps: int = 400) -> int:
    bar = progress_bar(steps, "work", file=stream, leave=True)
    for _ in range(steps):
        time.sleep(0.002)
        bar.update(1)
    bar.close()
    return stream.getvalue().count("\r")


def test_a_log_gets_few_redraws_and_a_terminal_many():
    log, tty = _redraws(io.StringIO()), _redraws(_Terminal())
    assert LOG_INTERVAL >= 10
    assert log <= 3, log  # the first draw, the last, and the close
    assert tty >= 5, tty  # 0.8 s at tqdm's 0.1-s interval


def test_the_final_count_is_written_to_a_log():
    stream = io.StringIO()
    _redraws(stream, steps=50)
    assert "50/50" in stream.getvalue()


def test_prior_training_logs_a_few_lines(capsys):
    """A loss shown on the bar every 10 steps must not force a redraw each time."""
    from kfops import PatchPrior

    prior = PatchPrior(hidden=8)
    prior.fit(torch.rand(1, 3, 20, 20), steps=200, crop=16, progress=True)
    err = capsys.readouterr().err
    assert "200/200" in err
    assert err.count("\r") <= 4, err.count("\r")
