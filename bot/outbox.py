"""The outbox sender: drains the Telegram channel's pending deliveries from the database.

Every message starts as a delivery row (written with the alert, in one transaction), so
nothing is lost to a crash or an outage. The sender claims a row, sends it, and records
the result. Failures are sorted into:

- flood control (429 ``retry_after``): wait as long as Telegram asks, for every delivery;
- network errors and 5xx: retry with exponential backoff, for ever (capped delay);
- a refusal (400/403: chat gone, bot blocked): give up on that delivery, log it.

A crash between Telegram accepting a message and ``mark_sent`` leaves the row in
``sending``; at start it is retried, so such a message can repeat at most once. Rows are
claimed one at a time (``Store.claim_next_due``), so a second sender on the same database
never takes a row this one holds.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from telegram import Bot, InputMediaPhoto, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.redaction import redact
from bot.render import action_line, alert_caption, alert_keyboard
from storage import Store
from storage.models import CHAT_CHANNEL, Alert, AlertStatus, Delivery, DeliveryKind

log = logging.getLogger(__name__)

CHANNEL = CHAT_CHANNEL
MAX_BACKOFF_S = 60.0  # after an outage, the first retry comes within a minute


class TelegramEdit(enum.Enum):
    """How Telegram shows a change of an alert: its one photo message is edited."""

    MEDIA = "editMessageMedia"  # a new photo, with the caption
    CAPTION = "editMessageCaption"  # the caption alone


EDITS = {DeliveryKind.ALERT_SNAPSHOT: TelegramEdit.MEDIA, DeliveryKind.ALERT_STATE: TelegramEdit.CAPTION}


class _Postpone(Exception):
    """The delivery cannot go yet (its alert's first photo has not been sent)."""


@dataclass
class OutboxStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class OutboxSender:
    def __init__(self, bot: Bot, store: Store, *, base_backoff_s: float = 1.0) -> None:
        self.bot = bot
        self.store = store
        self.base_backoff_s = base_backoff_s
        self.stats = OutboxStats()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def wake(self) -> None:
        """Something was queued: look now rather than at the next timer."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                pause = await self.drain()
            except Exception:  # the sender must outlive any single bad row or DB hiccup
                log.exception("outbox pass failed; retrying in 5 s")
                pause = 5.0
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=pause)
            except TimeoutError:
                pass

    # -- one pass --------------------------------------------------------------------

    async def drain(self) -> float:
        """Send what is due, oldest first; returns how long to sleep before the next pass."""
        while (claimed := await asyncio.to_thread(self.store.claim_next_due, CHANNEL)) is not None:
            hold = await self._deliver(claimed)
            if hold is not None:
                return hold  # flood control or an outage: everything waits
        next_at = await asyncio.to_thread(self.store.next_due_at, CHANNEL)
        if next_at is None:
            return 60.0
        return max(0.05, min(60.0, (next_at - _now()).total_seconds()))

    async def _deliver(self, claimed: Delivery) -> float | None:
        """Send one claimed delivery; returns seconds to hold all sending, or None to go on."""
        try:
            message_id = await self._send(claimed)
        except RetryAfter as exc:
            wait = _seconds(exc.retry_after)
            await self._retry(claimed, f"flood control: retry after {wait:.0f} s", wait)
            return wait
        except _Postpone as exc:
            await self._retry(claimed, str(exc), max(2.0, self.base_backoff_s), count=False)
        except (BadRequest, Forbidden) as exc:
            if "message is not modified" in str(exc).lower():
                await asyncio.to_thread(self.store.mark_sent, claimed.id, None)
                return None
            self.stats.failed += 1
            log.error("delivery %d to chat %d refused: %s", claimed.id, claimed.chat_id, redact(str(exc)))
            await asyncio.to_thread(self.store.mark_failed, claimed.id, redact(str(exc)))
        except (NetworkError, TelegramError, OSError) as exc:
            # Telegram is unreachable or failing: hold the whole pass rather than hammer it.
            delay = min(MAX_BACKOFF_S, self.base_backoff_s * 2 ** (claimed.attempts - 1))
            await self._retry(claimed, f"{type(exc).__name__}: {exc}", delay)
            return delay
        else:
            self.stats.sent += 1
            await asyncio.to_thread(self.store.mark_sent, claimed.id, message_id)
        return None

    async def _retry(self, delivery: Delivery, error: str, delay: float, count: bool = True) -> None:
        if count:
            self.stats.retried += 1
            log.warning("delivery %d to chat %d failed (%s); retry in %.1f s",
                        delivery.id, delivery.chat_id, redact(error), delay)
        when = _now() + timedelta(seconds=delay)
        await asyncio.to_thread(self.store.mark_retry, delivery.id, redact(error), when)

    # -- rendering and sending ----------------------------------------------------------

    async def _send(self, d: Delivery) -> int | None:
        if d.kind is DeliveryKind.TEXT:
            msg = await self.bot.send_message(d.chat_id, d.text, parse_mode=ParseMode.HTML)
            return msg.message_id
        alert = await asyncio.to_thread(self.store.get_alert, d.alert_id)
        if alert is None:
            raise BadRequest("alert no longer exists")
        caption = await asyncio.to_thread(caption_of, self.store, alert)
        keyboard = await asyncio.to_thread(keyboard_of, self.store, alert)
        if d.kind is DeliveryKind.ALERT:
            msg = await self._send_photo(d.chat_id, alert, caption, keyboard)
            return msg.message_id
        message_id = await asyncio.to_thread(self.store.alert_message_id, alert.id, d.chat_id, d.channel)
        if message_id is None:
            raise _Postpone("the alert's photo is not sent yet")
        if EDITS[d.kind] is TelegramEdit.MEDIA and (photo := await asyncio.to_thread(
                self.store.read_snapshot, alert.snapshot_path)) is not None:
            await self.bot.edit_message_media(
                InputMediaPhoto(photo, caption=caption, parse_mode=ParseMode.HTML),
                chat_id=d.chat_id, message_id=message_id, reply_markup=keyboard,
            )
        else:
            await self.bot.edit_message_caption(
                chat_id=d.chat_id, message_id=message_id, caption=caption,
                parse_mode=ParseMode.HTML, reply_markup=keyboard,
            )
        return message_id

    async def _send_photo(self, chat_id: int, alert: Alert, caption: str, keyboard) -> Message:  # type: ignore[no-untyped-def]
        # A file on this machine, or an edge's snapshot in the database.
        photo = await asyncio.to_thread(self.store.read_snapshot, alert.snapshot_path)
        if photo is not None:
            return await self.bot.send_photo(
                chat_id, photo, caption=caption, parse_mode=ParseMode.HTML, reply_markup=keyboard
            )
        # The snapshot could not be written (disk full) or was purged: the alert still goes out.
        return await self.bot.send_message(
            chat_id, caption + "\n(snapshot unavailable)", parse_mode=ParseMode.HTML,
            reply_markup=keyboard,
        )


def display_name(store: Store, user_id: int) -> str:
    """An operator's name; for an admin known only from the configuration, the name their
    private chat was saved under (see ``buttons``); else the bare id."""
    op = store.get_operator(user_id, active_only=False)
    if op is not None:
        return op.name
    return store.chat_title(user_id) or str(user_id)


def caption_of(store: Store, alert: Alert) -> str:
    """The alert's caption with the history of what people did about it, by name."""
    history = [action_line(a, display_name(store, a.user_id) if a.user_id is not None else None)
               for a in store.alert_actions(alert.id)]
    return alert_caption(alert, history)


def keyboard_of(store: Store, alert: Alert):  # type: ignore[no-untyped-def]
    return alert_keyboard(alert.id, false_alarm=alert.status is AlertStatus.FALSE_ALARM,
                          snoozed=store.snoozed_until(alert.camera) is not None)


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _now() -> datetime:
    return datetime.now(timezone.utc)
