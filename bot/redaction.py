"""Secrets scrubbed from log records and from text shown to users: the bot token, and the
password of any URL (the database's, the MQTT broker's).

The token is part of every Bot API URL, and httpx / python-telegram-bot log URLs and
exception texts that contain it. Rather than trusting each library, one filter on the
root handlers rewrites the final text of every record, tracebacks included.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, urlsplit

REDACTED = "<redacted>"
# Anything shaped like a Bot API token, even one we were not told about.
_TOKEN_SHAPE = re.compile(r"(?<![0-9])[0-9]{5,}:[A-Za-z0-9_-]{30,}")
# The password of any URL (database, broker, camera): scheme://user:PASSWORD@host, and a
# libpq-style "password=..." (drivers echo connection strings in some errors).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(?P<at>@)")
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


class RedactingFilter(logging.Filter):
    """Replaces known secrets, and token-shaped strings, in the formatted record."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self._secrets = [s for s in (secrets or []) if s]

    def add_secret(self, secret: str | None) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}\g<at>", text)
        text = _KEYWORD_PASSWORD.sub(rf"\g<head>{REDACTED}", text)
        return _TOKEN_SHAPE.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        # Freeze the message and traceback into text now, so that the handler formats
        # the redacted version and never the original arguments.
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


# One filter for the process: logging installs it on the root handlers (see
# firewatch.logging_setup), and ``redact`` scrubs text that does not go through logging.
token_filter = RedactingFilter()


def url_password(url: str | None) -> str | None:
    """The password in ``url`` (decoded), to be redacted wherever it appears on its own."""
    if not url or "://" not in url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def redact(text: str) -> str:
    """Scrub secrets from text shown to a user or written outside logging."""
    return token_filter.redact(text)
