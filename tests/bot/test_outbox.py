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
from storage.models import AlertStatus, DeliveryKind, DeliveryStatus
from tests.support.bot_harness import TOKEN
from tests.support.botapi.server import BotApiServer
from vision.types import FireEvent


@pytest.fixture
def snapshot(tmp_path: Path) -> str:
    path = tmp_path / "snap.jpg"
    image = np.zeros((240, 320, 3), np.uint8)
    cv2.rectangle(image, (100, 80), (200, 180), (0, 0, 255), -1)
    cv2.imwrite(str(path), image)
    return str(path)


async def make_sender(srv: BotApiServer, store: Store, parallel: int = 8) -> OutboxSender:
    bot = Bot(TOKEN, base_url=srv.base_url, base_file_url=srv.base_file_url,
              request=HTTPXRequest(read_timeout=2, connect_timeout=2))
    await bot.initialize()
    return OutboxSender(bot, store, base_backoff_s=0.05, parallel=parallel)


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


def photos_sent(srv: BotApiServer, method: str = "sendPhoto") -> list[str]:
    """What each answered call carried: "upload" (the fake server logs an upload as
    "<file NAME, N bytes>") or the file_id it named."""
    out = []
    for call in srv.calls_to(method):
        if call.status == 200:
            media = call.params.get("photo") or (call.params.get("media") or {}).get("media", "")
            out.append("upload" if media.startswith(("<file", "attach://")) else media)
    return out


async def test_a_photo_is_uploaded_once_and_named_by_its_file_id_for_the_other_chats(srv, store, snapshot,
                                                                                      tmp_path) -> None:
    chats = [srv.add_user(name, user_id=501 + i).id for i, name in enumerate(["Ann", "Bob", "Cat"])]
    for chat in chats:
        store.add_chat(chat)
    rec = AlertRecorder(store, can_push=True)
    rec.record(fire("started", 1, snapshot))
    sender = await make_sender(srv, store)
    await drain_until_done(sender, store)
    messages = [msg for chat in chats for msg in srv.sent_messages(chat)]
    assert len(messages) == 3 and all(m.photo_bytes == Path(snapshot).read_bytes() for m in messages)
    file_ids = {m.media.file_id for m in messages}
    assert len(file_ids) == 1  # one file at Telegram, shown in every chat
    assert sorted(photos_sent(srv)) == sorted(["upload", *file_ids, *file_ids])

    # A new photo of the fire: each message is edited to it, the photo uploaded once.
    bigger = tmp_path / "bigger.jpg"
    image = np.zeros((240, 320, 3), np.uint8)
    cv2.circle(image, (160, 120), 90, (0, 128, 255), -1)
    cv2.imwrite(str(bigger), image)
    rec.record(fire("updated", 1, str(bigger), area=0.08))
    await drain_until_done(sender, store)
    edited = [msg for chat in chats for msg in srv.sent_messages(chat)]
    assert all(m.photo_bytes == bigger.read_bytes() for m in edited)
    (new_file,) = {m.media.file_id for m in edited}
    assert sorted(photos_sent(srv, "editMessageMedia")) == sorted(["upload", new_file, new_file])


async def test_a_file_id_telegram_refuses_is_uploaded_again_in_the_same_try(srv, store, snapshot) -> None:
    ann, bob = srv.add_user("Ann", user_id=501), srv.add_user("Bob", user_id=502)
    store.add_chat(ann.id)
    store.add_chat(bob.id)
    srv.faults.fail_next(1, status=400, description="Bad Request: wrong file identifier/HTTP URL specified",
                         methods="sendPhoto", chats=[bob.id])
    AlertRecorder(store, can_push=True).record(fire("started", 1, snapshot))
    sender = await make_sender(srv, store, parallel=1)  # Ann's upload first, then Bob's by its file_id
    await drain_until_done(sender, store)
    (ann_msg,), (bob_msg,) = srv.sent_messages(ann.id), srv.sent_messages(bob.id)
    assert bob_msg.photo_bytes == ann_msg.photo_bytes == Path(snapshot).read_bytes()
    bob_calls = [(c.status, c.params["photo"].startswith("<file"))
                 for c in srv.calls_to("sendPhoto") if c.params["chat_id"] == bob.id]
    assert bob_calls == [(400, False), (200, True)]  # the file_id refused, then the upload
    assert {(d.status, d.attempts) for d in store.deliveries()} == {(DeliveryStatus.SENT, 1)}
    assert sender.stats.failed == sender.stats.retried == 0


async def test_a_chat_refusing_the_first_upload_leaves_the_others_to_upload_it(srv, store, snapshot) -> None:
    ann, bob, cat = (srv.add_user(name, user_id=501 + i) for i, name in enumerate(["Ann", "Bob", "Cat"]))
    srv.set_blocked(ann)  # Ann's send, claimed first, uploads: refused
    for user in (ann, bob, cat):
        store.add_chat(user.id)
    AlertRecorder(store, can_push=True).record(fire("started", 1, snapshot))
    sender = await make_sender(srv, store)
    await drain_until_done(sender, store)
    assert srv.sent_messages(ann.id) == []
    for user in (bob, cat):
        (msg,) = srv.sent_messages(user.id)
        assert msg.photo_bytes == Path(snapshot).read_bytes()
    assert {d.chat_id: d.status for d in store.deliveries()} == {
        ann.id: DeliveryStatus.FAILED, bob.id: DeliveryStatus.SENT, cat.id: DeliveryStatus.SENT}


async def test_what_was_sent_is_recorded_by_the_time_the_sender_stops(srv, store) -> None:
    users = [srv.add_user(f"U{i}", user_id=501 + i).id for i in range(5)]
    for n in range(4):
        store.queue_text(users, f"notice {n}")
    sender = await make_sender(srv, store, parallel=3)
    sender.start()
    await srv.wait_for(lambda s: len(s.calls_to("sendMessage")) >= 20, timeout=20)
    await sender.stop()
    assert {d.status for d in store.deliveries()} == {DeliveryStatus.SENT}
    for user in users:  # each chat's messages in the order queued, each once
        assert [m.text for m in srv.sent_messages(user)] == [f"notice {n}" for n in range(4)]


async def test_an_edit_telegram_applied_but_whose_answer_was_lost_is_sent_not_failed(srv, store, snapshot) -> None:
    """The retry of an edit that did arrive is answered "message is not modified": the edit is
    done, so it is recorded sent, with no error and nothing sent twice."""
    ann = srv.add_user("Ann", user_id=501)
    store.add_chat(ann.id)
    rec = AlertRecorder(store, can_push=True)
    alert_id = rec.record(fire("started", 1, snapshot)).alert_id
    sender = await make_sender(srv, store)
    await drain_until_done(sender, store)

    srv.faults.drop(1, after_execute=True, methods="editMessageCaption")
    store.set_alert_status(alert_id, AlertStatus.ACKNOWLEDGED, ann.id)
    await drain_until_done(sender, store)
    (msg,) = srv.sent_messages(ann.id)
    assert "Acknowledged" in msg.caption
    edits = srv.calls_to("editMessageCaption")
    assert len(edits) == 2 and edits[-1].status == 400, [(c.status, c.params) for c in edits]
    (edit,) = [d for d in store.deliveries() if d.kind is DeliveryKind.ALERT_STATE]
    assert edit.status is DeliveryStatus.SENT and edit.attempts == 2
    assert sender.stats.failed == 0
