"""The long-lived objects handlers need, kept in ``application.bot_data["services"]``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telegram.ext import ContextTypes

if TYPE_CHECKING:
    from bot.access import Access
    from bot.config import Settings
    from bot.outbox import OutboxSender
    from bot.selfie import SelfieGate
    from storage import Store
    from vision.faces import FaceEncoder
    from vision.pipeline import Pipeline


@dataclass
class Services:
    settings: Settings
    store: Store
    access: Access
    encoder: FaceEncoder
    gate: SelfieGate
    outbox: OutboxSender | None = None
    pipeline: Pipeline | None = None
    model_name: str = ""
    started: float = field(default_factory=time.monotonic)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data["services"]  # type: ignore[no-any-return]
