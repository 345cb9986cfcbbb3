"""Misspelt settings: pydantic-settings ignores a ``FIREWATCH_`` key it does not know, so a
typo in ``.env`` (``FIREWATCH_CONFRIM_HITS``) would silently leave the default in force."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values

from firewatch.config import Settings

PREFIX = "FIREWATCH_"
# Read by other parts than Settings: the datasets' location and the tests' servers.
_OTHER_KEYS = frozenset({"FIREWATCH_DATA", "FIREWATCH_TEST_POSTGRES_URL", "FIREWATCH_TEST_MQTT_URL"})


def known_keys() -> frozenset[str]:
    return frozenset(PREFIX + name.upper() for name in Settings.model_fields) | _OTHER_KEYS


def unknown_key_warnings(keys: Iterable[str], where: str) -> list[str]:
    """One line per unknown ``FIREWATCH_`` key, with the closest known key when there is one."""
    known = known_keys()
    lines = []
    for key in sorted(set(keys)):
        if not key.startswith(PREFIX) or key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"unknown setting {key} in {where}{hint}: ignored")
    return lines


def check_keys(env_file: Path = Path(".env"), environ: Mapping[str, str] = os.environ) -> list[str]:
    """The warnings for the environment and ``env_file``."""
    lines = unknown_key_warnings((k.upper() for k in environ), "the environment")
    if env_file.is_file():
        lines += unknown_key_warnings((k.upper() for k in dotenv_values(env_file)), str(env_file))
    return lines
