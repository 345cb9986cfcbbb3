"""How alerts look in Telegram: caption text and buttons, built from the stored alert.

Messages are rendered when they are sent, never when queued, so every chat's copy shows
the alert as it is now (grown, cleared, acknowledged by someone).
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from storage.models import Alert, AlertStatus

ACK, FALSE_ALARM, SNOOZE = "ack", "fa", "snooze"
SNOOZE_MINUTES = 30

_STATUS_LINE = {
    AlertStatus.ACKNOWLEDGED: "✅ Acknowledged",
    AlertStatus.FALSE_ALARM: "🚫 Marked as false alarm",
}


def local_time(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def alert_caption(alert: Alert, acted_by_name: str | None = None) -> str:
    """HTML caption: camera, local time, class, severity, confidence, id, and state."""
    icon = "🔥" if alert.class_name == "fire" else "💨"
    severity = f" — {alert.severity}" if alert.severity else ""
    lines = [
        f"{icon} <b>{escape(alert.class_name.upper())}{escape(severity)}</b> on "
        f"<b>{escape(alert.camera)}</b>",
        f"🕒 {local_time(alert.first_seen)}",
        f"Confidence {alert.peak_confidence:.0%}, size {alert.peak_area:.1%} of the frame",
        f"Alert #{alert.id}",
    ]
    if alert.cleared_at is not None:
        lines.append(f"✔️ Cleared: not seen since {local_time(alert.cleared_at)}")
    status = _STATUS_LINE.get(alert.status)
    if status:
        who = f" by {escape(acted_by_name)}" if acted_by_name else ""
        when = f" at {local_time(alert.acted_at)}" if alert.acted_at else ""
        lines.append(f"{status}{who}{when}")
    return "\n".join(lines)


def alert_keyboard(alert_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Acknowledge", callback_data=f"{ACK}:{alert_id}"),
                InlineKeyboardButton("False alarm", callback_data=f"{FALSE_ALARM}:{alert_id}"),
            ],
            [
                InlineKeyboardButton(
                    f"Snooze {SNOOZE_MINUTES} min", callback_data=f"{SNOOZE}:{alert_id}"
                )
            ],
        ]
    )


def parse_alert_button(data: str | None) -> tuple[str, int] | None:
    """'ack:12' -> ('ack', 12); None for anything else (forged or stale data)."""
    if not data or data.count(":") != 1:
        return None
    action, _, raw_id = data.partition(":")
    if action not in {ACK, FALSE_ALARM, SNOOZE} or not (raw_id.isascii() and raw_id.isdigit()):
        return None
    if len(raw_id) > 12:
        return None
    return action, int(raw_id)
