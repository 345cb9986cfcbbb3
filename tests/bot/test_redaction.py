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


def test_url_passwords_are_redacted_wherever_they_appear() -> None:
    from bot.redaction import url_password

    url = "postgresql+psycopg://fleet:s3cr%40t-pw@db.example:5432/firewatch"
    assert url_password(url) == "s3cr@t-pw" and url_password("sqlite:///data/firewatch.db") is None
    logger, stream = _logger_with_filter([url_password(url)])
    logger.error("cannot reach %s", url)
    logger.error("mqtt://ha:broker-pass@10.0.0.2:1883 refused; rtsp://cam:campw@cam.lan/stream")
    logger.error("psycopg: host=db.example password='s3cr@t-pw' user=fleet; password=plain")
    logger.error("auth failed with s3cr@t-pw")  # the decoded password alone
    text = stream.getvalue()
    for secret in ("s3cr%40t-pw", "s3cr@t-pw", "broker-pass", "campw", "plain"):
        assert secret not in text
    assert "postgresql+psycopg://fleet:<redacted>@db.example:5432/firewatch" in text
    assert "https://api.telegram.org/file/bot/x.jpg" in RedactingFilter([]).redact(
        "https://api.telegram.org/file/bot/x.jpg")  # no credentials: untouched
