"""The outbox sender: drains the Telegram channel's pending deliveries from the database.

Every message starts as a delivery row (written with the alert, in one transaction), so
nothing is lost to a crash or an outage. The sender claims a row, sends it, and records
the result. Failures are sorted into:

- flood control (429 ``retry_after``): wait as long as Telegram asks, for every delivery;
- network errors and 5xx: retry with exponential backoff, for ever (capped delay), all
  chats held (Telegram is out of reach for every chat alike);
- no answer in time (a read timeout: the request went out whole, so Telegram may have
  carried it out): the delivery is *in doubt* and sent once more, that chat alone waiting;
  if that try is not answered in time either, it is not sent a third time but ends
  ``in-doubt`` (it most likely arrived; its later edits cannot find it and are dropped);
- a refusal (400/403: chat gone, bot blocked): give up on that delivery, log it.

A crash between Telegram accepting a message and its recording leaves the row in
``sending``; at start it is retried, in doubt, so such a message can repeat at most once,
whether the doubt came from a crash or a timeout. Rows are claimed as many at once as there
are free places (``Store.claim_due``), never a chat's delivery while an earlier one of that
chat is unsettled: each chat's messages go in order, while different chats are sent to at
once (up to ``parallel``), so that one slow chat holds back only itself. What was sent is
recorded with the next claim, in its transaction (the sent chats' next rows can go at once).
A second sender on the same database never takes a row this one holds.

A photo or clip goes to every chat, but is uploaded once: the first send uploads it, the
others name the ``file_id`` Telegram gave it (a file_id refused is uploaded again).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
from telegram import Bot, InputMediaPhoto, InputMediaVideo, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.redaction import redact
from bot.render import action_line, alert_caption, alert_keyboard
from storage import Store
from storage.models import CHAT_CHANNEL, Alert, AlertStatus, Delivery, DeliveryKind, DeliveryStatus
from storage.repository import SentDelivery

log = logging.getLogger(__name__)

CHANNEL = CHAT_CHANNEL
MAX_BACKOFF_S = 60.0  # after an outage, the first retry comes within a minute
# A photo or clip of a few hundred kB on a slow uplink takes tens of seconds to upload, and
# Telegram answers an upload only once it has processed it: PTB's 5 s read timeout would
# call such a send lost while it is arriving.
MEDIA_TIMEOUT_S = 60.0
# Chats sent to at once: enough that a few slow chats leave the rest untouched, few enough
# to stay inside Telegram's 30 messages a second.
PARALLEL_CHATS = 8
STOP_GRACE_S = 5.0  # at shutdown, sends in flight get this long to be answered
# An alert's first message goes to every chat within a moment, the same to each: it is read
# (alert, history, snooze, photo) once for them all, and again after this. A change in that
# moment reaches every chat anyway, by the edit it queues. (A fleet's bot: bench/fleet.py.)
SHOWN_REUSE_S = 1.0
# Other processes queue deliveries too (a fleet's edges, the command line), and nothing wakes
# this one then: with nothing due, it looks again this often.
IDLE_POLL_S = 1.0
# A chat's send of a file that another chat's send is uploading waits for its file_id until
# that upload is this old, then uploads the file itself: one chat's slow upload (Telegram
# answers an upload once it has processed it, typically well within a second) holds the
# others back only this long.
UPLOAD_WAIT_S = 2.0
FILE_IDS_KEPT = 1024  # the file_ids of the latest files sent (a few alerts' photos and clips)


class TelegramEdit(enum.Enum):
    """How Telegram shows a change of an alert: its one message is edited."""

    MEDIA = "editMessageMedia"  # a new photo, with the caption
    CLIP = "editMessageMedia (video)"  # the onset clip in place of the photo, with the caption
    CAPTION = "editMessageCaption"  # the caption alone


EDITS = {DeliveryKind.ALERT_SNAPSHOT: TelegramEdit.MEDIA, DeliveryKind.ALERT_CLIP: TelegramEdit.CLIP,
         DeliveryKind.ALERT_STATE: TelegramEdit.CAPTION}


class _Postpone(Exception):
    """The delivery cannot go yet (its alert's first photo has not been sent)."""


class _Undeliverable(Exception):
    """The delivery can never go (its alert's message never arrived, or is not known)."""


@dataclass(frozen=True)
class _Shown:
    """An alert's first message, as every chat receives it."""

    alert: Alert
    caption: str
    keyboard: object  # InlineKeyboardMarkup
    photo: bytes | None  # None: the snapshot is gone, the alert goes as text


@dataclass(frozen=True)
class _Upload:
    """A file's first upload: its file_id at Telegram once answered (None: it failed)."""

    file_id: asyncio.Future[str | None]
    started: float  # monotonic


@dataclass
class OutboxStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    in_doubt: int = 0  # tries not answered in time (each may have arrived)


class OutboxSender:
    def __init__(self, bot: Bot, store: Store, *, base_backoff_s: float = 1.0,
                 media_timeout_s: float = MEDIA_TIMEOUT_S, parallel: int = PARALLEL_CHATS) -> None:
        self.bot = bot
        self.store = store
        self.base_backoff_s = base_backoff_s
        self.media_timeout_s = media_timeout_s
        self.parallel = parallel
        self.stats = OutboxStats()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._held_until = 0.0  # monotonic: flood control or an outage holds every chat till then
        self._shown: dict[int, tuple[float, asyncio.Task[_Shown]]] = {}  # alert id -> (read until, reading)
        self._sent: list[SentDelivery] = []  # sent, to record with the next claim
        self._uploads: OrderedDict[bytes, _Upload] = OrderedDict()  # a file's digest -> its first upload

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
        # A send cut off here is retried at the next start, in doubt: let it be answered.
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=STOP_GRACE_S)
        for task in list(self._in_flight):
            task.cancel()
        if self._sent:
            try:
                await self._claim(0)
            except Exception:  # they stay "sending": retried in doubt at the next start
                log.exception("recording %d sent deliveries failed", len(self._sent))

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
        """Send what is due, oldest first, each chat in order and up to ``parallel`` chats at
        once; returns, once nothing more can go now, how long to sleep before the next pass.
        Sends still in flight when flood control or an outage holds the outbox go on."""
        while True:
            hold = self._held_until - time.monotonic()
            if hold > 0:
                if self._sent:
                    await self._claim(0)
                return hold  # flood control or an outage: everything waits
            self._wake.clear()
            free = self.parallel - len(self._in_flight)
            if free > 0 or self._sent:
                for claimed in await self._claim(max(free, 0)):
                    task = asyncio.create_task(self._deliver_and_hold(claimed), name=f"delivery-{claimed.id}")
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
            if self._sent:
                continue  # a send ended meanwhile: record it, its chat's next row may go
            if not self._in_flight:
                break
            # Until a send ends (its chat's next row may go), a row is queued, or a retry of
            # another chat comes due (looked for every second).
            woken = asyncio.create_task(self._wake.wait())
            await asyncio.wait({*self._in_flight, woken}, timeout=IDLE_POLL_S, return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
        return await self._next_due_in()

    async def _claim(self, limit: int) -> list[Delivery]:
        """Record what was sent, and claim up to ``limit`` due deliveries, in one transaction.
        If it fails, what was sent is recorded with the next."""
        sent, self._sent = self._sent, []
        try:
            return await asyncio.to_thread(self.store.claim_due, CHANNEL, limit, sent=sent)
        except BaseException:
            self._sent[:0] = sent
            raise

    async def _next_due_in(self) -> float:
        next_at = await asyncio.to_thread(self.store.next_due_at, CHANNEL)
        if next_at is None:
            return IDLE_POLL_S
        return max(0.05, min(IDLE_POLL_S, (next_at - _now()).total_seconds()))

    async def _deliver_and_hold(self, claimed: Delivery) -> None:
        try:
            hold = await self._deliver(claimed)
        except Exception:  # a database error: the row stays claimed until the next start
            log.exception("delivery %d: recording its outcome failed", claimed.id)
            hold = 5.0
        if hold is not None:
            self._held_until = max(self._held_until, time.monotonic() + hold)

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
        except _Undeliverable as exc:
            log.warning("delivery %d to chat %d dropped: %s", claimed.id, claimed.chat_id, exc)
            await asyncio.to_thread(self.store.mark_failed, claimed.id, str(exc))
        except (BadRequest, Forbidden) as exc:
            if _not_modified(exc):
                self._record_sent(claimed, None)
                return None
            self.stats.failed += 1
            log.error("delivery %d to chat %d refused: %s", claimed.id, claimed.chat_id, redact(str(exc)))
            await asyncio.to_thread(self.store.mark_failed, claimed.id, redact(str(exc)))
        except TimedOut as exc:
            if not _unanswered(exc):  # not connected, or the upload never finished: nothing arrived
                return await self._network_error(claimed, exc)
            await self._in_doubt(claimed)
        except (NetworkError, TelegramError, OSError) as exc:
            return await self._network_error(claimed, exc)
        else:
            self.stats.sent += 1
            self._record_sent(claimed, message_id)
        return None

    def _record_sent(self, claimed: Delivery, message_id: int | None) -> None:
        self._sent.append(SentDelivery(claimed.id, message_id, _now()))
        self._wake.set()  # recorded by the sending loop, even while flood control holds it

    async def _network_error(self, claimed: Delivery, exc: Exception) -> float:
        # Telegram is unreachable or failing: hold the whole pass rather than hammer it.
        delay = self._backoff(claimed)
        await self._retry(claimed, f"{type(exc).__name__}: {exc}", delay)
        return delay

    async def _in_doubt(self, claimed: Delivery) -> None:
        """No answer in time: the message may be there. Once more, that chat alone waiting."""
        self.stats.in_doubt += 1
        delay = self._backoff(claimed)
        when = _now() + timedelta(seconds=delay)
        again = await asyncio.to_thread(self.store.mark_in_doubt, claimed.id, "no answer in time: it may have arrived", when)
        if again:
            log.warning("delivery %d to chat %d: no answer in time, it may have arrived; sent once more in %.1f s",
                        claimed.id, claimed.chat_id, delay)
        else:
            log.warning("delivery %d to chat %d: no answer in time again; in doubt, not sent a third time",
                        claimed.id, claimed.chat_id)

    def _backoff(self, delivery: Delivery) -> float:
        return min(MAX_BACKOFF_S, self.base_backoff_s * 2 ** (delivery.attempts - 1))

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
        if d.kind is DeliveryKind.ALERT:
            msg = await self._send_photo(d.chat_id, await self._first_message(d.alert_id))  # type: ignore[arg-type]
            return msg.message_id
        alert = await asyncio.to_thread(self.store.get_alert, d.alert_id)
        if alert is None:
            raise BadRequest("alert no longer exists")
        caption = await asyncio.to_thread(caption_of, self.store, alert)
        keyboard = await asyncio.to_thread(keyboard_of, self.store, alert)
        message_id = await self._alert_message(alert.id, d.chat_id)
        edit = EDITS[d.kind]
        if edit is TelegramEdit.MEDIA and alert.clip_path:
            edit = TelegramEdit.CAPTION  # the clip stays: a later photo would replace it
        if edit is TelegramEdit.CLIP:
            # Like a snapshot: a file here, or an edge's clip in the database.
            if (clip := await asyncio.to_thread(self.store.read_snapshot, alert.clip_path)) is None:
                raise _Undeliverable("the alert's clip is gone")
            await self._upload_once(clip, lambda media: self.bot.edit_message_media(
                InputMediaVideo(media, caption=caption, parse_mode=ParseMode.HTML, supports_streaming=True,
                                filename=f"alert-{alert.id}.mp4"),
                chat_id=d.chat_id, message_id=message_id, reply_markup=keyboard, **self._media_timeouts,
            ))
        elif edit is TelegramEdit.MEDIA and (photo := await asyncio.to_thread(
                self.store.read_snapshot, alert.snapshot_path)) is not None:
            await self._upload_once(photo, lambda media: self.bot.edit_message_media(
                InputMediaPhoto(media, caption=caption, parse_mode=ParseMode.HTML),
                chat_id=d.chat_id, message_id=message_id, reply_markup=keyboard, **self._media_timeouts,
            ))
        else:
            await self.bot.edit_message_caption(
                chat_id=d.chat_id, message_id=message_id, caption=caption,
                parse_mode=ParseMode.HTML, reply_markup=keyboard,
            )
        return message_id

    async def _alert_message(self, alert_id: int, chat_id: int) -> int:
        """The id of the message that carries the alert to this chat, to edit."""
        message_id = await asyncio.to_thread(self.store.alert_message_id, alert_id, chat_id, CHANNEL)
        if message_id is not None:
            return message_id
        first = await asyncio.to_thread(self.store.first_message, alert_id, chat_id, CHANNEL)
        if first is None or first.status is DeliveryStatus.FAILED:
            raise _Undeliverable("the alert's message never reached this chat")
        if first.status is DeliveryStatus.IN_DOUBT:
            raise _Undeliverable("the alert's message was not answered for: which message to edit is unknown")
        raise _Postpone("the alert's photo is not sent yet")

    @property
    def _media_timeouts(self) -> dict[str, float]:
        return {"read_timeout": self.media_timeout_s, "write_timeout": self.media_timeout_s}

    async def _first_message(self, alert_id: int) -> _Shown:
        """The alert's first message: read once for the chats it goes to at the same time."""
        now = time.monotonic()
        self._shown = {k: v for k, v in self._shown.items() if v[0] > now}
        if alert_id not in self._shown:
            self._shown[alert_id] = (now + SHOWN_REUSE_S, asyncio.create_task(self._read_first_message(alert_id)))
        reading = self._shown[alert_id][1]
        try:
            return await asyncio.shield(reading)  # one chat's send cancelled stops no other's read
        except Exception:
            if self._shown.get(alert_id, (0, None))[1] is reading:
                del self._shown[alert_id]  # a failed read is not reused
            raise

    async def _read_first_message(self, alert_id: int) -> _Shown:
        alert = await asyncio.to_thread(self.store.get_alert, alert_id)
        if alert is None:
            raise BadRequest("alert no longer exists")
        caption = await asyncio.to_thread(caption_of, self.store, alert)
        keyboard = await asyncio.to_thread(keyboard_of, self.store, alert)
        # A file on this machine, or an edge's snapshot in the database.
        photo = await asyncio.to_thread(self.store.read_snapshot, alert.snapshot_path)
        return _Shown(alert, caption, keyboard, photo)

    async def _send_photo(self, chat_id: int, shown: _Shown) -> Message:
        if shown.photo is not None:
            return await self._upload_once(shown.photo, lambda media: self.bot.send_photo(
                chat_id, media, caption=shown.caption, parse_mode=ParseMode.HTML,
                reply_markup=shown.keyboard, **self._media_timeouts,  # type: ignore[arg-type]
            ))
        # The snapshot could not be written (disk full) or was purged: the alert still goes out.
        return await self.bot.send_message(
            chat_id, shown.caption + "\n(snapshot unavailable)", parse_mode=ParseMode.HTML,
            reply_markup=shown.keyboard,  # type: ignore[arg-type]
        )

    async def _upload_once(self, data: bytes, send: Callable[[bytes | str], Awaitable[Message | bool]]) -> Message:
        """``send`` the file ``data`` (a photo, a clip) by its file_id once a send of it to
        another chat has uploaded it, else upload it. Telegram refusing the file_id (400)
        leaves nothing sent: the file is uploaded then, in the same try."""
        key = hashlib.blake2b(data, digest_size=16).digest()
        first = self._uploads.get(key)
        if first is None:
            return await self._first_upload(key, data, send)
        self._uploads.move_to_end(key)
        try:
            wait = max(0.0, first.started + UPLOAD_WAIT_S - time.monotonic())
            file_id = await asyncio.wait_for(asyncio.shield(first.file_id), wait)
        except TimeoutError:
            file_id = None  # that upload is slow: this chat does not wait longer for it
        if file_id is not None:
            try:
                return await send(file_id)  # type: ignore[return-value]
            except BadRequest as exc:
                if _not_modified(exc):
                    raise
                log.warning("Telegram refused a file_id it gave (%s): uploading the file again", redact(str(exc)))
                self._forget_upload(key, first)
        return await send(data)  # type: ignore[return-value]

    async def _first_upload(self, key: bytes, data: bytes,
                            send: Callable[[bytes | str], Awaitable[Message | bool]]) -> Message:
        upload = _Upload(asyncio.get_running_loop().create_future(), time.monotonic())
        self._uploads[key] = upload
        while len(self._uploads) > FILE_IDS_KEPT:
            self._uploads.popitem(last=False)
        try:
            message = await send(data)
        except BaseException:
            upload.file_id.set_result(None)  # the chats waiting for it upload it themselves
            self._forget_upload(key, upload)
            raise
        file_id = _file_id(message)
        upload.file_id.set_result(file_id)
        if file_id is None:
            self._forget_upload(key, upload)
        return message  # type: ignore[return-value]

    def _forget_upload(self, key: bytes, upload: _Upload) -> None:
        if self._uploads.get(key) is upload:
            del self._uploads[key]


def _file_id(message: Message | bool) -> str | None:
    """The file_id of the photo (its largest size) or clip a message carries."""
    if not isinstance(message, Message):
        return None  # an edit of an inline message answers True
    if message.photo:
        return message.photo[-1].file_id
    media = message.video or message.animation or message.document
    return media.file_id if media else None


def _not_modified(exc: BadRequest) -> bool:
    return "message is not modified" in str(exc).lower()


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


def _unanswered(exc: TimedOut) -> bool:
    """Whether the request went out whole and its answer did not come in time (so it may
    have been carried out), rather than never connecting or never finishing the upload."""
    return isinstance(exc.__cause__, httpx.ReadTimeout)


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _now() -> datetime:
    return datetime.now(timezone.utc)
