"""The alert buttons: Acknowledge, False alarm (confirmed first), It is a real fire,
Snooze 30 min and End snooze. Every press lands in the alert's history, shown in every
chat's copy, so no press hides another."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.access import members_only
from bot.outbox import keyboard_of
from bot.render import (
    ACK,
    ALERT_BUTTONS,
    CONFIRM_FALSE_ALARM,
    FALSE_ALARM,
    KEEP_ALERT,
    REAL_FIRE,
    SNOOZE,
    UNSNOOZE,
    confirm_false_alarm_rows,
    parse_alert_button,
)
from bot.services import services
from bot.snooze import end_snooze, snooze_from
from storage.models import AlertActionKind, AlertStatus
from vision.annotate import raw_frame_path

log = logging.getLogger(__name__)

_STATUS = {
    ACK: (AlertStatus.ACKNOWLEDGED, AlertActionKind.ACKNOWLEDGED, "Acknowledged."),
    CONFIRM_FALSE_ALARM: (AlertStatus.FALSE_ALARM, AlertActionKind.FALSE_ALARM, "Marked as false alarm."),
    REAL_FIRE: (AlertStatus.ACKNOWLEDGED, AlertActionKind.REAL_FIRE,
                "Marked as a real fire; its frame is out of the training negatives."),
}


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
        await query.answer(await snooze_from(update, context, alert))
        return
    if action == UNSNOOZE:
        ended = await end_snooze(svc, alert.camera, user_id)
        await query.answer("Snooze ended." if ended else "It was not snoozed.")
        return
    if action == FALSE_ALARM:
        # Asked on this copy only: a mistaken press would teach the detector that a fire is not one.
        await query.answer("Sure? Confirm below.")
        await query.edit_message_reply_markup(InlineKeyboardMarkup(confirm_false_alarm_rows(alert_id)))
        return
    if action == KEEP_ALERT:
        await query.answer("Kept.")
        await query.edit_message_reply_markup(await asyncio.to_thread(keyboard_of, svc.store, alert))
        return
    status, kind, toast = _STATUS[action]
    if user_id in svc.settings.admin_ids:
        # An admin from the configuration has no operator row to take a name from: keep the
        # Telegram name on their chat (which the daemon keeps active anyway) for the caption.
        await asyncio.to_thread(svc.store.add_chat, user_id, update.effective_user.full_name)
    await asyncio.to_thread(svc.store.set_alert_status, alert_id, status, user_id, kind)
    if kind is AlertActionKind.FALSE_ALARM:
        await asyncio.to_thread(_keep_hard_negative, svc.settings.data_dir, alert.snapshot_path, alert_id)
    elif kind is AlertActionKind.REAL_FIRE:
        await asyncio.to_thread(_drop_hard_negative, svc.settings.data_dir, alert_id)
    log.info("user %d marked alert #%d %s", user_id, alert_id, kind.value)
    await query.answer(toast)
    if svc.outbox:
        svc.outbox.wake()  # every chat's copy is edited to show who pressed what


def _hard_negatives(data_dir: Path) -> Path:
    return Path(data_dir) / "hard-negatives"


def _keep_hard_negative(data_dir: Path, snapshot: str | None, alert_id: int) -> None:
    """Keep the false alarm's frame for the next training round."""
    if not snapshot or not Path(snapshot).is_file():
        return
    raw = raw_frame_path(Path(snapshot))  # the pipeline's unannotated copy
    source = raw if raw.is_file() else Path(snapshot)
    target = _hard_negatives(data_dir) / f"alert-{alert_id}{source.suffix}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    except OSError as exc:  # a full disk must not break the button
        log.error("could not keep hard negative for alert #%d: %s", alert_id, exc)


def _drop_hard_negative(data_dir: Path, alert_id: int) -> None:
    for kept in _hard_negatives(data_dir).glob(f"alert-{alert_id}.*"):
        kept.unlink(missing_ok=True)


def button_handlers() -> list:  # type: ignore[type-arg]
    return [
        CallbackQueryHandler(alert_button, pattern=rf"^({'|'.join(sorted(ALERT_BUTTONS))}):"),
    ]
