"""Progress bars for long commands: drawn on a terminal, silent when output is piped or
logged (a bar's carriage returns would fill a log file)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(desc: str, total: int | None = None, unit: str = "frame") -> tqdm:
    """A bar on stderr, only when stderr is a terminal; closing it leaves no line behind."""
    return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                disable=not sys.stderr.isatty(), dynamic_ncols=True)
