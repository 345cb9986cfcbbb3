"""Snoozing a camera (the alert's button, or /snooze): visible to everyone, shown in /status,
ended by /unsnooze, the alert's "End snooze" button, or its time running out (a job). While
a camera is snoozed its fires are recorded, not pushed; those still burning when it ends are
pushed then."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from html import escape

from telegram import Update
from telegram.ext import CommandHandler, ContextTypes

from bot.access import members_only
from bot.outbox import display_name
from bot.periods import parse_period
from bot.render import SNOOZE_MINUTES, clock
from bot.services import Services, services
from storage.models import Alert, Snooze

log = logging.getLogger(__name__)

# An old alert's button must not silence a camera that has a new fire since.
SNOOZE_FROM_ALERTS_WITHIN = timedelta(hours=1)
MAX_SNOOZE = timedelta(hours=24)


def _wake(svc: Services) -> None:
    if svc.outbox:
        svc.outbox.wake()


async def snooze_from(update: Update, context: ContextTypes.DEFAULT_TYPE, alert: Alert) -> str:
    """The Snooze button: silence the alert's camera; returns the presser's toast."""
    svc = services(context)
    now = datetime.now(timezone.utc)
    if now - alert.last_seen > SNOOZE_FROM_ALERTS_WITHIN:
        return "This alert is over an hour old: snooze from a recent alert."
    until = now + timedelta(minutes=SNOOZE_MINUTES)
    await _snooze(svc, alert.camera, until, update.effective_user.id, alert_id=alert.id)
    return f"{alert.camera} snoozed until {clock(until)}"


async def _snooze(svc: Services, camera: str, until: datetime, user_id: int, alert_id: int | None = None) -> None:
    name = await asyncio.to_thread(display_name, svc.store, user_id)
    notice = (f"🔕 {escape(name)} snoozed <b>{escape(camera)}</b> until {clock(until)}: its fires are "
              f"recorded, not pushed. /unsnooze ends it.")
    await asyncio.to_thread(svc.store.snooze, camera, until, user_id, alert_id=alert_id, notice=notice)
    log.info("user %d snoozed %s until %s", user_id, camera, until)
    _wake(svc)


def parse_snooze_args(args: list[str], cameras: list[str]) -> tuple[str, timedelta]:
    """'/snooze [CAMERA] [30m | 2h]' -> (camera, length); ValueError with what to fix.
    Without a name, the only camera; ``cameras`` empty (no camera runs here): any name."""
    length = timedelta(minutes=SNOOZE_MINUTES)
    names = list(args)
    if names and names[-1][:1].isdigit():
        length = parse_period(names.pop())
        if length > MAX_SNOOZE:
            raise ValueError(f"at most {MAX_SNOOZE.total_seconds() / 3600:g} h")
    if len(names) > 1:
        raise ValueError("one camera at a time")
    if not names:
        if len(cameras) != 1:
            raise ValueError(f"which camera? {', '.join(cameras) or 'name it'}")
        return cameras[0], length
    if cameras and names[0] not in cameras:
        raise ValueError(f"no camera {names[0]!r}; cameras: {', '.join(cameras)}")
    return names[0], length


@members_only
async def snooze(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/snooze [CAMERA] [30m | 2h]: silence a camera ahead of a planned fire (a barbecue)."""
    svc = services(context)
    try:
        camera, length = parse_snooze_args(context.args or [], list(svc.pipelines))
    except ValueError as exc:
        await update.effective_message.reply_text(f"{exc}. Usage: /snooze [CAMERA] [30m | 2h]")
        return
    until = datetime.now(timezone.utc) + length
    await _snooze(svc, camera, until, update.effective_user.id)
    await update.effective_message.reply_text(f"{camera} snoozed until {clock(until)}.")


async def end_snooze(svc: Services, camera: str, user_id: int | None) -> Snooze | None:
    """End ``camera``'s snooze (``user_id`` None: its time ran out), telling every chat."""
    who = escape(await asyncio.to_thread(display_name, svc.store, user_id)) if user_id is not None else None
    notice = (f"🔔 {who} ended the snooze on <b>{escape(camera)}</b>: alerts are pushed again." if who
              else f"🔔 The snooze on <b>{escape(camera)}</b> is over: alerts are pushed again.")
    ended = await asyncio.to_thread(svc.store.end_snooze, camera, user_id, notice=notice)
    if ended is not None:
        log.info("snooze on %s ended by %s", camera, user_id if user_id is not None else "its time")
        _wake(svc)
    return ended


@members_only
async def unsnooze(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/unsnooze [CAMERA]: end every snooze, or one camera's."""
    svc = services(context)
    wanted = set(context.args or [])
    cameras = [s.camera for s in await asyncio.to_thread(svc.store.snoozes) if not wanted or s.camera in wanted]
    ended = [c for c in cameras if await end_snooze(svc, c, update.effective_user.id) is not None]
    await update.effective_message.reply_text(
        f"Snooze ended: {', '.join(ended)}." if ended else "Nothing is snoozed.")


def snooze_lines(snoozes: list[Snooze], names: dict[int, str], now: datetime) -> dict[str, str]:
    """For /status, by camera: '🔕 yard snoozed by Barack until 00:45 (27 min left)'."""
    lines = {}
    for s in snoozes:
        left = s.until - now
        if left.total_seconds() <= 0:
            continue
        who = f" by {escape(names[s.by_user_id])}" if s.by_user_id in names else ""
        lines[s.camera] = (f"🔕 <b>{escape(s.camera)}</b> snoozed{who} until {clock(s.until)} "
                           f"({max(1, round(left.total_seconds() / 60))} min left)")
    return lines


async def status_lines(svc: Services) -> dict[str, str]:
    """The running snoozes' /status lines, by camera."""
    snoozes = await asyncio.to_thread(svc.store.snoozes)
    names = {s.by_user_id: await asyncio.to_thread(display_name, svc.store, s.by_user_id)
             for s in snoozes if s.by_user_id is not None}
    return snooze_lines(snoozes, names, datetime.now(timezone.utc))


async def expire_snoozes(context: ContextTypes.DEFAULT_TYPE) -> None:
    """A JobQueue job: snoozes whose time is up end, and what they held back is pushed."""
    svc = services(context)
    now = datetime.now(timezone.utc)
    for s in await asyncio.to_thread(svc.store.snoozes):
        if s.until <= now:
            await end_snooze(svc, s.camera, None)


def snooze_handlers() -> list:  # type: ignore[type-arg]
    return [CommandHandler("snooze", snooze), CommandHandler("unsnooze", unsnooze)]
