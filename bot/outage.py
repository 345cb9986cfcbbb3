"""Telegram outages in the log: one line when polling first fails, one when Telegram answers
again, and nothing in between.

PTB retries a failed getUpdates every few seconds and hands each failure to the error handler;
logged with its traceback, a one-minute outage wrote hundreds of lines and hid real bugs.
Failures reach ``OutageLog.failed`` from the error handler; the end of an outage is seen by
the request object of getUpdates, the only call that runs all the time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from telegram.error import BadRequest, NetworkError
from telegram.request import HTTPXRequest

from bot.redaction import redact

log = logging.getLogger(__name__)


def is_outage(error: object) -> bool:
    """A failure to reach Telegram (refused, dropped, timed out, 5xx), not a refused request."""
    # BadRequest is a NetworkError in PTB, but it means our request was wrong: a bug.
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


class OutageLog:
    """Remembers when Telegram stopped answering, so that an outage is logged once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        if self._since is not None:
            log.debug("Telegram still unreachable: %s", redact(str(error)))
            return
        self._since = self._clock()
        log.warning("Telegram unreachable (%s): %s; retrying quietly until it answers",
                    type(error).__name__, redact(str(error)))

    def answered(self) -> None:
        if self._since is None:
            return
        lasted = self._clock() - self._since
        self._since = None
        log.warning("Telegram reachable again after %.0f s", lasted)


class WatchedRequest(HTTPXRequest):
    """The getUpdates connection: any answer below 500 ends an outage."""

    def __init__(self, outage: OutageLog, **kwargs: Any) -> None:
        # One connection, as PTB gives getUpdates by default.
        super().__init__(connection_pool_size=1, **kwargs)
        self._outage = outage

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if code < 500:
            self._outage.answered()
        return code, payload
