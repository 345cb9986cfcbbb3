"""``firewatch info``: the settings as this directory resolves them, secrets masked, so that
"which database, which camera, which model?" has an answer without reading code."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from firewatch.config import Settings
from firewatch.masking import MASK, mask_url_credentials
from firewatch.tables import key_values


def _shown(value: object) -> str:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else "(not set)"
    if value is None or value == []:
        return "(not set)"
    if isinstance(value, Path):
        return str(value.resolve())
    return mask_url_credentials(str(value))


def settings_report(settings: Settings) -> str:
    """Every setting under its environment name, then the paths it resolves to."""
    pairs: list[tuple[str, object]] = [
        (f"FIREWATCH_{name.upper()}", _shown(getattr(settings, name))) for name in type(settings).model_fields
    ]
    pairs += [
        ("database (resolved)", mask_url_credentials(settings.db_url)),
        ("snapshots (resolved)", _shown(settings.snapshots)),
        ("data directory exists", "yes" if settings.data_dir.is_dir() else "no (made on first use)"),
    ]
    return key_values(pairs)
