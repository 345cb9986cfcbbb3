"""Periods as people type them ('30m', '24h', '7d'), for /history and ``firewatch history``."""

from __future__ import annotations

from datetime import timedelta

_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_period(text: str) -> timedelta:
    """'24h', '7d', '30m' -> a timedelta; ValueError for anything else."""
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        raise ValueError(f"period {text!r} not understood: use e.g. 30m, 24h or 7d")
    amount = int(text[:-1])
    if not 0 < amount <= 10_000:
        raise ValueError(f"period {text!r} out of range")
    return timedelta(**{_UNITS[text[-1]]: amount})
