"""What each role of ``firewatch run`` does (docs/fleet.md).

- ``all``: one box: its cameras, the alerts, and the Telegram bot that sends them.
- ``edge``: cameras only; it records alerts and their deliveries in the shared database and
  checks in there; its cameras are named ``site/camera``. It never talks to Telegram.
- ``bot``: Telegram only: commands, the outbox, the scheduled jobs and the watch on edges.
"""

from __future__ import annotations

from collections.abc import Callable

from firewatch.config import ConfigError, Settings

ALL, EDGE, BOT = "all", "edge", "bot"


def owned_cameras(settings: Settings) -> Callable[[str], bool]:
    """Which cameras' alerts this process continues or clears after a restart: an edge its
    site's, a single box its own (unprefixed) ones, the bot none."""
    if settings.role == EDGE:
        prefix = f"{settings.site}/"
        return lambda camera: camera.startswith(prefix)
    if settings.role == BOT:
        return lambda camera: False
    return lambda camera: "/" not in camera


def queues_deliveries(settings: Settings) -> bool:
    """Whether started alerts get their messages queued: an edge's always (the bot sends
    them), a single box's only with a bot token."""
    return settings.role == EDGE or settings.token is not None


def check_role(settings: Settings) -> None:
    """A role that cannot work with these settings is one clear line, before anything loads."""
    if settings.role == BOT and settings.token is None:
        raise ConfigError("FIREWATCH_ROLE: the bot role needs FIREWATCH_BOT_TOKEN")
