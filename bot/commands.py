"""Bodies of CLI commands that wire several packages together."""

from __future__ import annotations

import os
from pathlib import Path

from bot.config import Settings


def data_root() -> Path:
    """The shared data folder: $FIREWATCH_DATA, else ../shared/data next to the project."""
    return Path(os.environ.get("FIREWATCH_DATA", "../shared/data"))


def detect_command(settings: Settings, source: str, model: Path | None, out_video: Path | None,
                   events: Path | None, snapshots: Path | None, fps: float | None) -> None:
    raise NotImplementedError("firewatch detect: the vision pipeline lands with issue 3")
