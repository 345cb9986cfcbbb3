"""Progress bars for long commands: drawn on a terminal, silent when output is piped or
logged (a bar's carriage returns would fill a log file)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


@contextmanager
def progress_bar(desc: str, total: int | None = None, unit: str = "frame") -> Iterator[tqdm]:
    """A bar on stderr, only when stderr is a terminal; closing it leaves no line behind.

    While the bar is drawn, console log lines go through ``tqdm.write``: a record written
    straight to stderr would land in the middle of the bar and leave its remains on every
    line after it."""
    shown = sys.stderr.isatty()
    with ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                                       disable=not shown, dynamic_ncols=True))
        if shown:
            stack.enter_context(logging_redirect_tqdm())
        yield bar
