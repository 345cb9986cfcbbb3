"""An outage is one line when it starts and one when it ends; a bug keeps its traceback."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.app import _on_error
from bot.outage import OutageLog, is_outage


def test_network_failures_are_outages_but_a_refused_request_is_not() -> None:
    assert is_outage(NetworkError("httpx.ConnectError: All connection attempts failed"))
    assert is_outage(TimedOut())
    assert not is_outage(BadRequest("Bad Request: message text is empty"))
    assert not is_outage(RuntimeError("a bug"))


def test_an_outage_is_logged_when_it_starts_and_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = OutageLog(clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="bot.outage")
    outage.answered()  # no outage: nothing to say
    for _ in range(20):
        outage.failed(NetworkError("Bad Gateway"))
        now[0] += 3
    outage.answered()
    outage.answered()
    assert [r.getMessage() for r in caplog.records] == [
        "Telegram unreachable (NetworkError): Bad Gateway; retrying quietly until it answers",
        "Telegram reachable again after 60 s",
    ]
    assert all(r.exc_info is None for r in caplog.records)
    assert not outage.down


def _has_traceback(record: logging.LogRecord) -> bool:
    # Once the daemon's logging is set up in this process, its redacting filter has already
    # turned the traceback into (redacted) text.
    return bool(record.exc_info or record.exc_text)


async def test_the_error_handler_keeps_tracebacks_for_bugs_only(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog()
    caplog.set_level(logging.DEBUG)
    try:
        raise NetworkError("Server disconnected without sending a response.")
    except NetworkError as exc:
        await _on_error(None, SimpleNamespace(error=exc, bot_data={"outage": outage}))  # type: ignore[arg-type]
    assert outage.down and not [r for r in caplog.records if _has_traceback(r)]
    try:
        raise KeyError("a bug in a handler")
    except KeyError as exc:
        await _on_error(None, SimpleNamespace(error=exc, bot_data={"outage": outage}))  # type: ignore[arg-type]
    [bug] = [r for r in caplog.records if _has_traceback(r)]
    assert bug.levelno == logging.ERROR and "a bug in a handler" in bug.getMessage()
