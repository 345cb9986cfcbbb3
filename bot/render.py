"""How alerts look in Telegram: caption text and buttons, built from the stored alert.

Messages are rendered when they are sent, never when queued, so every chat's copy shows
the alert as it is now (grown, cleared, acknowledged by someone).
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from storage.models import Alert, AlertAction, AlertActionKind, AlertStatus

# Callback data prefixes of the alert buttons ("ack:12").
ACK, FALSE_ALARM, SNOOZE = "ack", "fa", "snooze"
CONFIRM_FALSE_ALARM, KEEP_ALERT, REAL_FIRE, UNSNOOZE = "fa-yes", "fa-no", "real", "unsnooze"
ALERT_BUTTONS = frozenset({ACK, FALSE_ALARM, SNOOZE, CONFIRM_FALSE_ALARM, KEEP_ALERT, REAL_FIRE, UNSNOOZE})
SNOOZE_MINUTES = 30
MAX_HISTORY_LINES = 6  # a caption holds 1024 characters

_ACTION_LINE = {
    AlertActionKind.ACKNOWLEDGED: "✅ Acknowledged",
    AlertActionKind.FALSE_ALARM: "🚫 Marked as false alarm",
    AlertActionKind.REAL_FIRE: "🔥 Confirmed as a real fire",
    AlertActionKind.SNOOZED: "🔕 Camera snoozed",
    AlertActionKind.SNOOZE_ENDED: "🔔 Snooze ended",
}


def local_time(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def age(seconds: float) -> str:
    """'just now', '40 s ago', '12 min ago', '3 h 5 min ago'."""
    if seconds < 2:
        return "just now"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    return f"{minutes // 60} h {minutes % 60} min ago"


def clock(at: datetime) -> str:
    """Local time of day, for times within the day (snooze ends, actions on an alert)."""
    return at.astimezone().strftime("%H:%M")


def action_line(action: AlertAction, name: str | None) -> str:
    """'🔕 Camera snoozed by Barack at 00:15 until 00:45'; no name: the system did it."""
    kind = AlertActionKind(action.action)
    line = _ACTION_LINE[kind] + (f" by {escape(name)}" if name else "") + f" at {clock(action.at)}"
    if kind is AlertActionKind.SNOOZED and action.detail:
        line += f" until {clock(datetime.fromisoformat(action.detail))}"
    return line


def alert_caption(alert: Alert, history: list[str] | None = None) -> str:
    """HTML caption: class and severity, camera, local time, confidence, id, state, and the
    lines of what people did about it (``action_line``), oldest first."""
    icon = "🔥" if alert.class_name == "fire" else "💨"
    lines = [
        f"{icon} <b>{escape(alert.kind.upper())}</b> on "
        f"<b>{escape(alert.camera)}</b>",
        f"🕒 {local_time(alert.first_seen)}",
        f"Confidence {alert.peak_confidence:.0%}, size {alert.peak_area:.1%} of the frame",
        f"Alert #{alert.id}",
    ]
    if alert.cleared_at is not None:
        lines.append(f"✔️ Cleared: not seen since {local_time(alert.cleared_at)}")
    lines.extend((history or [])[-MAX_HISTORY_LINES:])
    return "\n".join(lines)


def alert_keyboard(alert_id: int, *, false_alarm: bool = False, snoozed: bool = False) -> InlineKeyboardMarkup:
    """The alert's buttons as its state allows: a false alarm can be taken back, a snooze ended."""
    second = (InlineKeyboardButton("It is a real fire", callback_data=f"{REAL_FIRE}:{alert_id}") if false_alarm
              else InlineKeyboardButton("False alarm", callback_data=f"{FALSE_ALARM}:{alert_id}"))
    third = (InlineKeyboardButton("End snooze", callback_data=f"{UNSNOOZE}:{alert_id}") if snoozed
             else InlineKeyboardButton(f"Snooze {SNOOZE_MINUTES} min", callback_data=f"{SNOOZE}:{alert_id}"))
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton("Acknowledge", callback_data=f"{ACK}:{alert_id}"), second], [third]]
    )


def confirm_false_alarm_rows(alert_id: int) -> list[list[InlineKeyboardButton]]:
    """Asked before a frame goes to the hard negatives; one row per choice, so that other
    choices about a false alarm can be added as rows."""
    return [
        [InlineKeyboardButton("Yes, it is a false alarm", callback_data=f"{CONFIRM_FALSE_ALARM}:{alert_id}")],
        [InlineKeyboardButton("No, keep the alert", callback_data=f"{KEEP_ALERT}:{alert_id}")],
    ]


def parse_alert_button(data: str | None) -> tuple[str, int] | None:
    """'ack:12' -> ('ack', 12); None for anything else (forged or stale data)."""
    if not data or data.count(":") != 1:
        return None
    action, _, raw_id = data.partition(":")
    if action not in ALERT_BUTTONS or not (raw_id.isascii() and raw_id.isdigit()):
        return None
    if len(raw_id) > 12:
        return None
    return action, int(raw_id)
