"""Snoozing a camera: visible to everyone, shown in /status, ended by /unsnooze, the
alert's "End snooze" button, or its time running out (a job). While a camera is snoozed
its fires are recorded, not pushed; those still burning when it ends are pushed then."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from html import escape

from telegram import Update
from telegram.ext import CommandHandler, ContextTypes

from bot.access import members_only
from bot.outbox import display_name
from bot.render import SNOOZE_MINUTES, clock
from bot.services import Services, services
from storage.models import Alert, Snooze

log = logging.getLogger(__name__)

# An old alert's button must not silence a camera that has a new fire since.
SNOOZE_FROM_ALERTS_WITHIN = timedelta(hours=1)


def _wake(svc: Services) -> None:
    if svc.outbox:
        svc.outbox.wake()


async def snooze_from(update: Update, context: ContextTypes.DEFAULT_TYPE, alert: Alert) -> str:
    """The Snooze button: silence the alert's camera; returns the presser's toast."""
    svc = services(context)
    now = datetime.now(timezone.utc)
    if now - alert.last_seen > SNOOZE_FROM_ALERTS_WITHIN:
        return "This alert is over an hour old: snooze from a recent alert."
    user = update.effective_user
    until = now + timedelta(minutes=SNOOZE_MINUTES)
    name = await asyncio.to_thread(display_name, svc.store, user.id)
    notice = (f"🔕 {escape(name)} snoozed <b>{escape(alert.camera)}</b> until {clock(until)}: its fires are "
              f"recorded, not pushed. /unsnooze ends it.")
    await asyncio.to_thread(svc.store.snooze, alert.camera, until, user.id, alert_id=alert.id, notice=notice)
    log.info("user %d snoozed %s until %s", user.id, alert.camera, until)
    _wake(svc)
    return f"{alert.camera} snoozed until {clock(until)}"


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


def snooze_lines(snoozes: list[Snooze], names: dict[int, str], now: datetime) -> list[str]:
    """For /status: '🔕 yard snoozed by Barack until 00:45 (27 min left)'."""
    lines = []
    for s in snoozes:
        left = s.until - now
        if left.total_seconds() <= 0:
            continue
        who = f" by {escape(names[s.by_user_id])}" if s.by_user_id in names else ""
        lines.append(f"🔕 <b>{escape(s.camera)}</b> snoozed{who} until {clock(s.until)} "
                     f"({max(1, round(left.total_seconds() / 60))} min left)")
    return lines


async def status_lines(svc: Services) -> list[str]:
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
    return [CommandHandler("unsnooze", unsnooze)]
