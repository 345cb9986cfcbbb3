"""The long-lived objects handlers need, kept in ``application.bot_data["services"]``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from telegram.ext import ContextTypes

if TYPE_CHECKING:
    from bot.access import Access
    from bot.outbox import OutboxSender
    from bot.selfie import SelfieGate
    from storage import Store
    from vision.faces import FaceEncoder
    from vision.pipeline import Pipeline


@dataclass(frozen=True)
class BotSettings:
    """What the Telegram side reads from the configuration; the application builds it
    (``firewatch.wiring.bot_settings``) so that bot/ never sees the whole of it."""

    token: str
    api_base_url: str = "https://api.telegram.org/bot"
    api_file_url: str = "https://api.telegram.org/file/bot"
    admin_ids: tuple[int, ...] = ()
    data_dir: Path = Path("data")
    keep_face_photos: bool = False
    rearm_after_h: float = 8.0
    retention_days: int = 30
    summary_hour: int = 8
    stall_after_s: float = 60.0
    edge_quiet_after_s: float = 60.0  # a fleet's edge silent this long is reported


@dataclass
class Services:
    settings: BotSettings
    store: Store
    access: Access
    encoder: FaceEncoder
    gate: SelfieGate
    outbox: OutboxSender | None = None
    # One pipeline per camera, by camera name, in the configuration's order.
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    model_name: str = ""
    started: float = field(default_factory=time.monotonic)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data["services"]  # type: ignore[no-any-return]
