"""The alert's onset clip (issue 19, item 17): the daemon sends the photo at once, then,
once the fire has been in view for FIREWATCH_ALERT_CLIP_AFTER_S, edits the message's media
into a short MP4 (editMessageMedia with a video upload), caption and buttons kept. The edit
is an outbox delivery: a kill -9 while it cannot be sent loses nothing and sends nothing twice.

First the outbox rows a clip makes (real SQLite) and the sender against the fake Bot API
(real PTB over HTTP); then the real ``firewatch run``, whose camera is a folder of the
fire2_mp4 frames (fire from ~1.3 s, 5.1 s in all).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import pytest
import pytest_asyncio
from telegram import Bot

from bot.outbox import OutboxSender
from storage import Store
from storage.models import AlertStatus, DeliveryKind, DeliveryStatus
from tests.support.bot_harness import TOKEN
from tests.support.botapi import BotApiServer, Message
from tests.support.data import FIRE2, SHIPPED_DETECTOR
from tests.support.daemon_rig import Rig, fire_rig
from vision.clips import encode_mp4

needs_daemon_data = pytest.mark.skipif(len(FIRE2) != 51 or not SHIPPED_DETECTOR.is_file(),
                                       reason="needs the shared fire2_mp4 frames and the shipped detector")


@pytest.fixture
def media(tmp_path: Path) -> tuple[str, str]:
    """A snapshot and an onset clip written as the pipeline writes them, from real frames."""
    if len(FIRE2) < 16:
        pytest.skip("needs the shared fire2_mp4 frames")
    frames = [cv2.imread(str(p)) for p in FIRE2[:16]]
    photo = tmp_path / "snap.jpg"
    cv2.imwrite(str(photo), frames[0])
    clip = tmp_path / "clip.mp4"
    encode_mp4([cv2.resize(f, (480, 270)) for f in frames], 8.0, clip)
    return str(photo), str(clip)


def new_alert(store: Store, snapshot: str | None, push: bool = True) -> int:
    return store.record_alert(camera="yard", track_id=1, class_name="fire", severity="fire", confidence=0.8,
                              area=0.05, snapshot_path=snapshot, seen_at=datetime.now(timezone.utc),
                              push=push).id


def kinds(store: Store) -> list[tuple[int, str]]:
    return sorted((d.chat_id, d.kind.value) for d in store.deliveries() if d.kind is not DeliveryKind.ALERT)


def test_a_clip_is_one_edit_per_recipient_and_covers_later_state_edits(store: Store, media) -> None:
    store.add_chat(1)
    store.add_chat(2)
    alert_id = new_alert(store, media[0])
    store.update_alert(alert_id, seen_at=datetime.now(timezone.utc), snapshot_path=media[0])  # a bigger fire
    store.attach_clip(alert_id, media[1])  # not covered by the pending photo edit
    store.clear_alert(alert_id, datetime.now(timezone.utc))  # covered: the clip's edit shows the state
    assert kinds(store) == [(1, "alert-clip"), (1, "alert-snapshot"), (2, "alert-clip"), (2, "alert-snapshot")]
    assert store.get_alert(alert_id).clip_path == media[1]
    removed, files = store.purge_before(datetime.now(timezone.utc) + timedelta(seconds=1))
    assert removed == 1 and sorted(files) == sorted(media)


def test_an_alert_pushed_late_brings_its_clip(store: Store, media) -> None:
    store.add_chat(1)
    store.set_armed(False, user_id=None, method="test")
    alert_id = new_alert(store, media[0], push=False)
    store.attach_clip(alert_id, media[1])
    assert store.deliveries() == []  # recorded, not pushed
    store.set_armed(True, user_id=None, method="test")  # the fire still burns: pushed now
    assert sorted((d.chat_id, d.kind.value) for d in store.deliveries()) == [(1, "alert"), (1, "alert-clip")]


async def test_the_sender_puts_the_clip_in_place_of_the_photo_and_keeps_it(store: Store, media) -> None:
    async with BotApiServer(token=TOKEN) as srv:
        ann = srv.add_user("Ann", user_id=501)
        store.add_chat(ann.id)
        alert_id = new_alert(store, media[0])
        bot = Bot(TOKEN, base_url=srv.base_url, base_file_url=srv.base_file_url)
        await bot.initialize()
        sender = OutboxSender(bot, store, base_backoff_s=0.05)
        await sender.drain()
        store.attach_clip(alert_id, media[1])
        await sender.drain()
        (message,) = srv.sent_messages(ann.id)
        assert message.video_bytes == Path(media[1]).read_bytes()
        assert_photo_became_clip(message)
        # The fire grows: the caption follows, the clip stays.
        store.update_alert(alert_id, seen_at=datetime.now(timezone.utc), severity="fire", snapshot_path=media[0])
        store.set_alert_status(alert_id, AlertStatus.ACKNOWLEDGED, ann.id)
        await sender.drain()
        (message,) = srv.sent_messages(ann.id)
        assert message.video_bytes == Path(media[1]).read_bytes() and "Acknowledged" in message.caption
        assert {d.status for d in store.deliveries()} == {DeliveryStatus.SENT}
        # A clip that is gone leaves the photo's message as it is, and is not retried.
        Path(media[1]).unlink()
        store.attach_clip(alert_id, media[1])
        await sender.drain()
        (last,) = [d for d in store.deliveries() if d.status is not DeliveryStatus.SENT]
        assert last.status is DeliveryStatus.FAILED and "clip is gone" in last.last_error


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    # Temporal verification off: this is about delivery, not about what is confirmed.
    async with fire_rig(tmp_path, verify="false", alert_clip_after_s=2) as r:
        yield r


def video_edits(rig: Rig) -> list:
    return [c for c in rig.srv.calls_to("editMessageMedia")
            if isinstance(media := c.params.get("media"), dict) and media.get("type") == "video"]


def clipped(rig: Rig) -> list[Message]:
    return [m for c in rig.chats for m in rig.alert_messages(c) if m.video_bytes]


def assert_photo_became_clip(message: Message) -> None:
    photo = next(v for v in reversed(message.history) if "photo" in v)  # as first sent
    assert "photo" not in message.content and message.content["video"]["duration"] >= 2
    assert message.caption.splitlines()[0] == photo["caption"].splitlines()[0]
    assert message.reply_markup == photo["reply_markup"]  # the same buttons
    assert 5_000 < len(message.video_bytes) < 1_000_000  # type: ignore[arg-type]


@pytest.mark.slow
@needs_daemon_data
async def test_the_photo_goes_first_then_becomes_the_onset_clip_in_every_chat(rig: Rig) -> None:
    await rig.start()
    # The photo, at once, in both chats: it never waits for the clip.
    await rig.srv.wait_for(lambda s: all(rig.alert_messages(c) for c in rig.chats), timeout=90)
    await rig.srv.wait_for(lambda s: len(clipped(rig)) >= len(rig.chats), timeout=60)
    for chat in rig.chats:
        clip_messages = [m for m in rig.alert_messages(chat) if m.video_bytes]
        assert clip_messages, f"no clip in {chat}"
        for message in clip_messages:
            assert_photo_became_clip(message)
    await rig.srv.wait_for(lambda s: all(d.status is DeliveryStatus.SENT for d in rig.store.deliveries()), 30)
    clip_rows = [d for d in rig.store.deliveries() if d.kind is DeliveryKind.ALERT_CLIP]
    assert len(video_edits(rig)) == len(clip_rows) == len(clipped(rig))  # one edit each, none repeated
    for alert_id in {d.alert_id for d in clip_rows}:
        alert = rig.store.get_alert(alert_id)
        assert alert is not None and alert.clip_path and Path(alert.clip_path).is_file()
        # Every chat's photo was asked for before the clip was even written.
        photos = [c for c in rig.srv.calls_to("sendPhoto") if f"Alert #{alert_id}" in str(c.params.get("caption"))]
        assert len(photos) == len(rig.chats)
        assert max(c.time for c in photos) < Path(alert.clip_path).stat().st_mtime
    await rig.daemon.wait_for_log("onset clip of")


@pytest.mark.slow
@needs_daemon_data
async def test_a_clip_that_cannot_go_yet_survives_a_kill_9_and_goes_once(rig: Rig, tmp_path: Path) -> None:
    rig.srv.faults.fail_next(10_000, status=502, methods="editMessageMedia")
    await rig.start()
    await rig.srv.wait_for(lambda s: any(d.kind is DeliveryKind.ALERT_CLIP and d.attempts >= 1
                                         for d in rig.store.deliveries()), timeout=90)
    os.kill(rig.daemon.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    await rig.daemon.proc.wait()  # type: ignore[union-attr]
    assert clipped(rig) == []
    rig.srv.faults.clear()
    empty = tmp_path / "empty-camera"
    empty.mkdir()
    await rig.start(camera_source=empty)
    await rig.srv.wait_for(lambda s: all(d.status is DeliveryStatus.SENT for d in rig.store.deliveries()
                                         if d.kind is DeliveryKind.ALERT_CLIP), timeout=60)
    await asyncio.sleep(2)  # a repeat would follow by now
    clip_rows = [d for d in rig.store.deliveries() if d.kind is DeliveryKind.ALERT_CLIP]
    assert clip_rows and {d.chat_id for d in clip_rows} == {c.id for c in rig.chats}
    delivered = [c for c in video_edits(rig) if c.status == 200]
    assert len(delivered) == len(clip_rows) == len(clipped(rig))
    for message in clipped(rig):
        assert_photo_became_clip(message)


def test_an_edge_keeps_the_clip_in_the_database_for_the_bot(store: Store, media) -> None:
    """Fleet: the bot on another machine cannot read the edge's file; like the snapshot, the
    clip goes into the shared database and the alert names it there."""
    from firewatch.edge_recorder import EdgeRecorder
    from vision.types import ClipEvent, FireEvent

    store.add_chat(1)
    recorder = EdgeRecorder(store, can_push=True)
    start = FireEvent("started", "site/yard", 3, "fire", "fire", 0.8, (1, 2, 3, 4), 0.05, 1, 0.1,
                      datetime.now(timezone.utc).timestamp(), snapshot=media[0])
    alert_id = recorder.record(start).alert_id
    recorder.record(ClipEvent("site/yard", 3, media[1], 5.1, start.wall + 5, 40, 5.0, "h264"))
    alert = store.get_alert(alert_id)
    assert alert.clip_path.startswith("db:snapshot/") and store.read_snapshot(alert.clip_path) == Path(media[1]).read_bytes()
    assert [d.kind for d in store.deliveries()] == [DeliveryKind.ALERT, DeliveryKind.ALERT_CLIP]
