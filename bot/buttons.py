"""The alert buttons: Acknowledge, False alarm, Snooze 30 min."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.access import members_only
from bot.render import ACK, FALSE_ALARM, SNOOZE, SNOOZE_MINUTES, local_time, parse_alert_button
from bot.services import services
from vision.annotate import raw_frame_path
from storage.models import AlertStatus

log = logging.getLogger(__name__)


@members_only
async def alert_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    parsed = parse_alert_button(query.data)
    svc = services(context)
    alert = await asyncio.to_thread(svc.store.get_alert, parsed[1]) if parsed else None
    if parsed is None or alert is None:
        await query.answer("Unknown or expired alert.")
        return
    action, alert_id = parsed
    user_id = update.effective_user.id
    if action == SNOOZE:
        until = datetime.now(timezone.utc) + timedelta(minutes=SNOOZE_MINUTES)
        await asyncio.to_thread(svc.store.snooze, alert.camera, until, user_id)
        await query.answer(f"{alert.camera} snoozed until {local_time(until)}")
        log.info("user %d snoozed %s until %s", user_id, alert.camera, until)
        return
    status = AlertStatus.ACKNOWLEDGED if action == ACK else AlertStatus.FALSE_ALARM
    if user_id in svc.settings.admin_ids:
        # An admin from the configuration has no operator row to take a name from: keep the
        # Telegram name on their chat (which the daemon keeps active anyway) for the caption.
        await asyncio.to_thread(svc.store.add_chat, user_id, update.effective_user.full_name)
    await asyncio.to_thread(svc.store.set_alert_status, alert_id, status, user_id)
    if status is AlertStatus.FALSE_ALARM:
        await asyncio.to_thread(_keep_hard_negative, svc.settings.data_dir, alert.snapshot_path, alert_id)
    log.info("user %d marked alert #%d %s", user_id, alert_id, status.value)
    await query.answer("Acknowledged." if status is AlertStatus.ACKNOWLEDGED else "Marked as false alarm.")
    if svc.outbox:
        svc.outbox.wake()  # every chat's copy is edited to show who pressed what


def _keep_hard_negative(data_dir: Path, snapshot: str | None, alert_id: int) -> None:
    """Keep the false alarm's frame for the next training round."""
    if not snapshot or not Path(snapshot).is_file():
        return
    raw = raw_frame_path(Path(snapshot))  # the pipeline's unannotated copy
    source = raw if raw.is_file() else Path(snapshot)
    target = Path(data_dir) / "hard-negatives" / f"alert-{alert_id}{source.suffix}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    except OSError as exc:  # a full disk must not break the button
        log.error("could not keep hard negative for alert #%d: %s", alert_id, exc)


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer("Unknown button.")


def button_handlers() -> list:  # type: ignore[type-arg]
    return [
        CallbackQueryHandler(alert_button, pattern=rf"^({ACK}|{FALSE_ALARM}|{SNOOZE}):"),
    ]
