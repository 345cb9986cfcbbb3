"""Settings shown to a person (``firewatch info``, log hints) without their secrets."""

from __future__ import annotations

MASK = "***"


def mask_url_credentials(value: str) -> str:
    """``rtsp://user:pass@host/path`` -> ``rtsp://***@host/path``; anything else unchanged."""
    if "://" not in value:
        return value
    scheme, rest = value.split("://", 1)
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return value
    return f"{scheme}://{MASK}@{authority.rsplit('@', 1)[1]}{slash}{path}"
