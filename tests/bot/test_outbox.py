"""The outbox sender against the fake Bot API: outages, flood control, drops, ordering.

Real database, real python-telegram-bot client, real HTTP; only Telegram's cloud is
replaced by tests/support/botapi.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.alerts import AlertRecorder
from bot.outbox import OutboxSender
from storage import Store
from storage.models import AlertStatus, DeliveryStatus
from tests.support.botapi.server import BotApiServer
from vision.types import FireEvent

TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


@pytest.fixture
async def srv():
    async with BotApiServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def snapshot(tmp_path: Path) -> str:
    path = tmp_path / "snap.jpg"
    image = np.zeros((240, 320, 3), np.uint8)
    cv2.rectangle(image, (100, 80), (200, 180), (0, 0, 255), -1)
    cv2.imwrite(str(path), image)
    return str(path)


async def make_sender(srv: BotApiServer, store: Store) -> OutboxSender:
    bot = Bot(TOKEN, base_url=srv.base_url, base_file_url=srv.base_file_url,
              request=HTTPXRequest(read_timeout=2, connect_timeout=2))
    await bot.initialize()
    return OutboxSender(bot, store, base_backoff_s=0.05)


def fire(kind: str, track: int, snapshot: str | None, area: float = 0.01) -> FireEvent:
    return FireEvent(kind=kind, camera="yard", track_id=track, class_name="fire",
                     severity="start-fire" if area < 0.02 else "fire", confidence=0.7,
                     box=(1, 2, 3, 4), area_fraction=area, frame=1, t=0.1, wall=time.time(),
                     snapshot=snapshot)


async def drain_until_done(sender: OutboxSender, store: Store, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await sender.drain()
        if all(d.status in {DeliveryStatus.SENT, DeliveryStatus.FAILED} for d in store.deliveries()):
            return
        await __import__("asyncio").sleep(0.05)
    raise AssertionError(f"outbox not drained: {[(d.id, d.status, d.last_error) for d in store.deliveries()]}")


async def test_alert_photo_then_edits_in_every_chat(srv, store, snapshot) -> None:
    ann = srv.add_user("Ann", user_id=501)
    group = srv.add_group("ops")
    store.add_chat(ann.id)
    store.add_chat(group.id)
    rec = AlertRecorder(store, can_push=True)
    alert_id = rec.record(fire("started", 1, snapshot)).alert_id
    sender = await make_sender(srv, store)
    await drain_until_done(sender, store)
    for chat in (ann.id, group.id):
        (msg,) = srv.sent_messages(chat)
        assert msg.photo_bytes == Path(snapshot).read_bytes()
        assert f"Alert #{alert_id}" in msg.caption and "STARTING FIRE on" in msg.caption
        assert [b["text"] for b in msg.buttons] == ["Acknowledge", "False alarm", "Snooze 30 min"]

    rec.record(fire("updated", 1, snapshot, area=0.08))
    store.set_alert_status(alert_id, AlertStatus.ACKNOWLEDGED, ann.id)
    rec.record(fire("cleared", 1, None))
    await drain_until_done(sender, store)
    for chat in (ann.id, group.id):
        (msg,) = srv.sent_messages(chat)  # still one message: edited, not resent
        assert "🔥 FIRE on" in msg.caption and "Cleared" in msg.caption and "Acknowledged" in msg.caption
    assert len(srv.calls_to("sendPhoto")) == 2


async def test_outage_then_recovery_delivers_everything_once_in_order(srv, store) -> None:
    ann = srv.add_user("Ann", user_id=501)
    store.add_chat(ann.id)
    srv.faults.fail_next(6, status=502, methods="sendMessage")
    srv.faults.drop(2, methods="sendMessage")
    store.queue_text([ann.id], "first")
    store.queue_text([ann.id], "second")
    store.queue_text([ann.id], "third")
    sender = await make_sender(srv, store)
    await drain_until_done(sender, store, timeout=30)
    assert [m.text for m in srv.sent_messages(ann.id)] == ["first", "second", "third"]
    assert all(d.status is DeliveryStatus.SENT for d in store.deliveries())
    assert sender.stats.retried >= 8


async def test_flood_control_waits_as_long_as_telegram_asks(srv, store) -> None:
    ann = srv.add_user("Ann", user_id=501)
    store.add_chat(ann.id)
    srv.faults.rate_limit(1, retry_after=2, methods="sendMessage")
    store.queue_text([ann.id], "hello")
    sender = await make_sender(srv, store)
    started = time.monotonic()
    pause = await sender.drain()
    assert 1.5 <= pause <= 2.5  # the whole outbox holds for retry_after
    assert srv.sent_messages(ann.id) == []
    await drain_until_done(sender, store)
    assert time.monotonic() - started >= 1.9
    assert [m.text for m in srv.sent_messages(ann.id)] == ["hello"]


async def test_a_blocked_chat_fails_alone(srv, store) -> None:
    ann = srv.add_user("Ann", user_id=501)
    bob = srv.add_user("Bob", user_id=502)
    srv.set_blocked(bob)
    store.queue_text([bob.id, ann.id], "camera lost")
    sender = await make_sender(srv, store)
    await drain_until_done(sender, store)
    statuses = {d.chat_id: d.status for d in store.deliveries()}
    assert statuses == {bob.id: DeliveryStatus.FAILED, ann.id: DeliveryStatus.SENT}


async def test_a_send_lost_after_telegram_accepted_it_repeats_at_most_once(srv, store) -> None:
    """The documented at-least-once edge: the reply is lost, the retry sends again."""
    ann = srv.add_user("Ann", user_id=501)
    srv.faults.drop(1, after_execute=True, methods="sendMessage")
    store.queue_text([ann.id], "fire!")
    sender = await make_sender(srv, store)
    await drain_until_done(sender, store)
    assert [m.text for m in srv.sent_messages(ann.id)] == ["fire!", "fire!"]
    assert store.deliveries()[0].attempts == 2


async def test_retried_delivery_records_attempts(srv, store) -> None:
    ann = srv.add_user("Ann", user_id=501)
    srv.faults.fail_next(1, status=500, methods="sendMessage")
    store.queue_text([ann.id], "x")
    sender = await make_sender(srv, store)
    await drain_until_done(sender, store)
    (delivery,) = store.deliveries()
    assert delivery.attempts == 2 and delivery.status is DeliveryStatus.SENT
    assert TOKEN not in str(delivery.last_error)
