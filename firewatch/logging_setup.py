"""Logging for the daemon and the CLI: one root handler, with the bot token scrubbed from
every record by ``bot.redaction``'s filter."""

from __future__ import annotations

import logging

from bot.redaction import RedactingFilter, token_filter
from vision.opencv_log import quiet_opencv


def setup_logging(level: str = "INFO", secrets: list[str | None] | None = None) -> RedactingFilter:
    """Configure root logging once; every handler gets the redacting filter."""
    for secret in secrets or []:
        token_filter.add_secret(secret)
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        handler.addFilter(token_filter)
        root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL (with the token) at INFO: keep it for debugging only.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    quiet_opencv(debug=level == "DEBUG")
    return token_filter
