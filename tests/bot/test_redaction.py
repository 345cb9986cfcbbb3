"""The bot token never reaches a log line, whoever logs it and however."""

from __future__ import annotations

import io
import logging

from bot.redaction import REDACTED, RedactingFilter

TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


def _logger_with_filter(secrets: list[str]) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    logger = logging.getLogger(f"test.redact.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_token_in_message_args_and_traceback_is_redacted() -> None:
    logger, stream = _logger_with_filter([TOKEN])
    logger.info("POST https://api.telegram.org/bot%s/getMe", TOKEN)
    logger.warning(f"plain text {TOKEN}")
    try:
        raise RuntimeError(f"connection to /bot{TOKEN}/sendPhoto failed")
    except RuntimeError:
        logger.exception("send failed")
    text = stream.getvalue()
    assert TOKEN not in text
    assert text.count(REDACTED) == 3
    assert "RuntimeError" in text and "sendPhoto" in text  # the useful part stays


def test_unknown_token_shaped_strings_are_redacted_too() -> None:
    logger, stream = _logger_with_filter([])
    other = "987654321:ZZHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T1"
    logger.error("url /bot%s/x", other)
    assert other not in stream.getvalue()
    assert REDACTED in stream.getvalue()


def test_ordinary_numbers_are_left_alone() -> None:
    logger, stream = _logger_with_filter([TOKEN])
    logger.info("alert 12:30 chat -1001234567 conf 0.91")
    assert stream.getvalue().strip() == "INFO alert 12:30 chat -1001234567 conf 0.91"
