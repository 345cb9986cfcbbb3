"""The data directory (database, snapshots, demo output): made on first use, and said where,
because a relative ``FIREWATCH_DATA_DIR`` lands in whatever directory a command runs in."""

from __future__ import annotations

from pathlib import Path

import click

from firewatch.config import Settings


def ensure_data_dir(settings: Settings) -> Path:
    """Create the data directory if it is missing, telling the user where it went (stderr)."""
    path = settings.data_dir
    if not path.exists():
        path.mkdir(parents=True)
        click.echo(f"created the data directory {path.resolve()} (set FIREWATCH_DATA_DIR to keep "
                   "it elsewhere)", err=True)
    return path
