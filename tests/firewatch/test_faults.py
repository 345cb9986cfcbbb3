"""Fault injection on the real daemon: crashes, Telegram outages, camera faults, a locked
database, a full snapshot disk, and SIGTERM.

Every test runs ``firewatch run`` as a subprocess against the fake Bot API with its own
database (tests/daemon_rig.py). The camera is a folder of real frames: the fire2_mp4
clip, on which the shipped detector raises one smoke alert at confidence 0.15 from
frame 13, i.e. ~1.3 s after the camera starts. Restarts play an empty folder, so the
fire is not raised a second time and every alert message can be counted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.bot_harness import TOKEN
from tests.support.botapi import BotApiServer
from tests.support.data import FIRE2, SHIPPED_DETECTOR
from tests.support.daemon_rig import ALERT_RE, Rig, black_frames, fire_clip, repeat_frame
from tests.support.mjpeg_camera import MjpegCamera

SEND_METHODS = ["sendPhoto", "sendMessage", "editMessageCaption", "editMessageMedia"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(len(FIRE2) != 51 or not SHIPPED_DETECTOR.is_file(),
                       reason="needs the shared fire2_mp4 frames and the shipped detector"),
]


@pytest.fixture
def camera(tmp_path: Path) -> Path:
    folder = tmp_path / "camera"
    folder.mkdir()
    fire_clip(folder)
    return folder


@pytest.fixture
def empty_camera(tmp_path: Path) -> Path:
    folder = tmp_path / "empty-camera"
    folder.mkdir()
    return folder


@pytest_asyncio.fixture
async def rig(tmp_path: Path, camera: Path) -> AsyncIterator[Rig]:
    async with BotApiServer(token=TOKEN) as srv:
        r = Rig.create(srv, tmp_path, camera, detector_model=SHIPPED_DETECTOR)
        try:
            yield r
        finally:
            await r.close()
            output = r.all_output()
            assert TOKEN.split(":", 1)[1] not in output, "the bot token was logged"


async def alert_everywhere(rig: Rig, timeout: float = 60) -> None:
    """Wait until every chat has a message for every recorded alert."""
    await rig.srv.wait_for(lambda s: all(set(rig.alert_ids(c)) >= all_alert_ids(rig) for c in rig.chats)
                           and all_alert_ids(rig), timeout)


def all_alert_ids(rig: Rig) -> set[int]:
    # The detector at 0.15 raises one smoke alert on this clip, sometimes also a short fire one.
    alerts, _ = rig.store.recent_alerts(limit=50)
    return {a.id for a in alerts}


async def poll(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def kill9(rig: Rig) -> None:
    proc = rig.daemon.proc
    assert proc is not None and proc.returncode is None
    os.kill(proc.pid, signal.SIGKILL)


# -- crash mid-send -------------------------------------------------------------------------


async def test_sigkill_while_a_send_is_in_flight_repeats_it_at_most_once(rig: Rig, empty_camera: Path) -> None:
    # The first alert photo reaches Telegram 4 s after it was asked for; the daemon is
    # killed meanwhile, so it never learns that it was sent (the documented repeat case).
    # The other chat's photo goes meanwhile (chats are sent to side by side), or is still
    # queued; either way it must arrive exactly once.
    rig.srv.faults.stall(1, seconds=4, methods="sendPhoto")
    await rig.start()
    # Poll: the fake notifies waiters only when a call is answered, and this one stalls.
    await poll(lambda: rig.srv.calls_to("sendPhoto"), timeout=60)
    await asyncio.sleep(0.5)
    kill9(rig)
    await rig.daemon.proc.wait()  # type: ignore[union-attr]
    (in_flight,) = [c for c in rig.srv.calls_to("sendPhoto") if c.outcome == "fault:stall"]
    await asyncio.sleep(4)  # the stalled call completes on Telegram's side
    await rig.start(camera_source=empty_camera)
    await rig.daemon.wait_for_log("deliveries interrupted by the last shutdown will be retried")
    await alert_everywhere(rig)
    await asyncio.sleep(3)  # any duplicate beyond the documented one would arrive by now
    per_chat = {c.id: Counter(rig.alert_ids(c)) for c in rig.chats}
    first_chat = int(in_flight.params["chat_id"])
    first_alert = int(ALERT_RE.search(str(in_flight.params["caption"])).group(1))  # type: ignore[union-attr]
    for chat_id, counts in per_chat.items():
        assert set(counts) == all_alert_ids(rig), per_chat
        for alert_id, copies in counts.items():
            if (chat_id, alert_id) == (first_chat, first_alert):
                assert copies in (1, 2), per_chat  # reached Telegram, not recorded: at most one repeat
            else:
                assert copies == 1, per_chat
    assert all(d.status.value == "sent" for d in rig.store.deliveries())
    assert rig.daemon.running
    print(f"\nalert copies per chat after SIGKILL mid-send: {per_chat} (in flight: chat {first_chat})")


async def test_sigkill_with_alerts_queued_delivers_each_exactly_once(rig: Rig, empty_camera: Path) -> None:
    # Every send fails (502), so the alert's deliveries sit queued when the daemon dies.
    rig.srv.faults.fail_next(10_000, status=502, methods=SEND_METHODS)
    await rig.start()
    await rig.srv.wait_for(lambda s: rig.store.recent_alerts()[1] >= 1, timeout=60)
    await rig.srv.wait_for(lambda s: s.calls_to("sendPhoto"), timeout=30)
    kill9(rig)
    await rig.daemon.proc.wait()  # type: ignore[union-attr]
    queued = [d for d in rig.store.deliveries() if d.status.value != "sent"]
    assert queued, "nothing was queued when the daemon died"
    rig.srv.faults.clear()
    await rig.start(camera_source=empty_camera)
    await alert_everywhere(rig)
    await rig.srv.wait_for(lambda s: all(d.status.value == "sent" for d in rig.store.deliveries()), 30)
    await asyncio.sleep(2)
    for chat in rig.chats:
        assert Counter(rig.alert_ids(chat)) == Counter(all_alert_ids(rig)), rig.alert_ids(chat)


# -- Telegram outage ------------------------------------------------------------------------


async def test_telegram_outage_during_a_fire_then_everything_in_order(rig: Rig) -> None:
    await rig.start()
    srv = rig.srv
    calls_before = len(srv.calls)
    began = time.monotonic()
    # 4 s of 502 on every method (getUpdates too), 4 s of dropped connections, then 3
    # flood-control answers asking for 2 s each on the sends.
    srv.faults.fail_next(100_000, status=502)
    await asyncio.sleep(4)
    srv.faults.clear()
    srv.faults.drop(100_000)
    await asyncio.sleep(4)
    # On a loaded machine the pipeline may need longer to confirm the fire: the outage
    # lasts until it has (at most 60 s more), so the alert is always raised during it.
    deadline = time.monotonic() + 60
    while rig.store.recent_alerts()[1] < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    srv.faults.clear()
    srv.faults.rate_limit(3, retry_after=2, methods=SEND_METHODS)
    outage_calls = len(srv.calls) - calls_before
    outage_s = time.monotonic() - began
    assert rig.store.recent_alerts()[1] >= 1, f"the fire was not raised during the outage:\n{rig.daemon.output()[-4000:]}"

    def delivered(_: BotApiServer) -> bool:
        return all(d.status.value == "sent" for d in rig.store.deliveries()) and all(
            rig.alert_messages(c) and all("Cleared" in (m.caption or "") for m in rig.alert_messages(c))
            for c in rig.chats)

    await srv.wait_for(delivered, timeout=90)
    recovered_s = time.monotonic() - began
    assert rig.daemon.running
    for chat in rig.chats:
        # One photo per alert, in the order the alerts were raised, each edited to "Cleared".
        assert rig.alert_ids(chat) == sorted(all_alert_ids(rig)), rig.alert_ids(chat)
        # (a photo sent after the clear already carries "Cleared": its edit is a no-op)
        assert all(m.photo_bytes for m in rig.alert_messages(chat))
    # No busy loop: backoff keeps the daemon to a few calls a second while Telegram is down.
    assert outage_calls <= 6 * outage_s, f"{outage_calls} API calls in {outage_s:.0f} s of outage"
    assert "retry in" in rig.daemon.output()
    print(f"\noutage {outage_s:.1f} s: {outage_calls} API calls; all delivered {recovered_s:.1f} s after it began")


async def test_telegram_down_at_start_up_detection_goes_on_and_alerts_follow(rig: Rig) -> None:
    # Every call fails (getMe included) from the first second: the bot cannot start.
    rig.srv.faults.fail_next(100_000, status=502)
    await rig.start(wait=False)
    await rig.daemon.wait_for_log("firewatch starting")  # its database is migrated
    await poll(lambda: rig.store.recent_alerts()[1] >= 1, timeout=90)  # recorded all the same
    assert "bot started" not in rig.daemon.output()
    pending = rig.store.deliveries()
    assert pending and all(d.status.value == "pending" for d in pending)
    rig.srv.faults.clear()
    await rig.daemon.wait_for_log("bot started", timeout=60)
    await alert_everywhere(rig)
    await rig.srv.wait_for(lambda s: all(d.status.value == "sent" for d in rig.store.deliveries()), 30)


async def test_sigterm_while_telegram_is_unreachable_at_start_up(rig: Rig) -> None:
    rig.srv.faults.fail_next(100_000, status=502)
    await rig.start(wait=False)
    await rig.daemon.wait_for_log("firewatch starting")  # its database is migrated
    await poll(lambda: rig.store.recent_alerts()[1] >= 1, timeout=90)
    began = time.monotonic()
    assert await rig.daemon.stop(timeout=15) == 0
    assert time.monotonic() - began < 10
    assert "firewatch stopped" in rig.daemon.output()
    assert all(d.status.value == "pending" for d in rig.store.deliveries())  # kept for the next run


# -- camera faults ----------------------------------------------------------------------------


async def test_frozen_and_black_camera_are_reported_and_back(tmp_path: Path) -> None:
    # 1 s of moving picture, 12 s of one repeated frame, 1 s moving, 6 s black, 1 s moving.
    folder = tmp_path / "camera"
    folder.mkdir()
    frames = FIRE2
    n = 0
    for frame in frames[:10]:
        n = repeat_frame(folder, frame, n, 1)
    n = repeat_frame(folder, frames[10], n, 120)
    for frame in frames[11:21]:
        n = repeat_frame(folder, frame, n, 1)
    n = black_frames(folder, n, 60)
    for frame in frames[21:31]:
        n = repeat_frame(folder, frame, n, 1)
    async with BotApiServer(token=TOKEN) as srv:
        rig = Rig.create(srv, tmp_path, folder, detector_model=SHIPPED_DETECTOR, detect_confidence=0.9)
        try:
            await rig.start()
            started = time.monotonic()
            arrivals: dict[str, float] = {}

            def health_seen(_: BotApiServer) -> bool:
                for key, needle in (("frozen", "frozen"), ("black", "black: lens covered")):
                    if key not in arrivals and all(any(needle in t for t in rig.texts(c)) for c in rig.chats):
                        arrivals[key] = time.monotonic() - started
                return len(arrivals) == 2 and all(
                    sum("is back" in t for t in rig.texts(c)) >= 2 for c in rig.chats)

            await srv.wait_for(health_seen, timeout=90)
            for chat in rig.chats:
                health = [t for t in rig.texts(chat) if "Camera" in t]
                kinds = ["frozen" if "frozen" in t else "black" if "black" in t else "back" for t in health]
                assert kinds == ["frozen", "back", "black", "back"], health
            # The frozen run starts at media time 1 s, the black one at 14 s.
            assert arrivals["frozen"] - 1.0 <= 30 and arrivals["black"] - 14.0 <= 30, arrivals
            print(f"\nhealth messages after camera start: {arrivals}")
        finally:
            await rig.close()


async def test_network_camera_lost_then_back(tmp_path: Path) -> None:
    # An IP camera served by this test (real frames as MJPEG over HTTP, read by OpenCV's
    # FFmpeg backend in the daemon): the stream ends and refuses connections for 8 s.
    frames = FIRE2[:20]
    with MjpegCamera(frames) as cam:
        async with BotApiServer(token=TOKEN) as srv:
            rig = Rig.create(srv, tmp_path, tmp_path, detector_model=SHIPPED_DETECTOR,
                             camera_source=cam.url, detect_confidence=0.9)
            try:
                await rig.start()
                await asyncio.sleep(3)  # frames flowing
                assert not any("Camera" in t for c in rig.chats for t in rig.texts(c))
                cut = time.monotonic()
                cam.online = False
                await srv.wait_for(lambda s: all(any("lost" in t for t in rig.texts(c)) for c in rig.chats), 30)
                lost_s = time.monotonic() - cut
                await asyncio.sleep(max(0.0, 8 - lost_s))
                restored = time.monotonic()
                cam.online = True
                await srv.wait_for(lambda s: all(any("is back" in t for t in rig.texts(c)) for c in rig.chats), 40)
                back_s = time.monotonic() - restored
                for chat in rig.chats:
                    health = [t for t in rig.texts(chat) if "Camera" in t]
                    assert len(health) == 2 and "lost" in health[0] and "is back" in health[1], health
                assert rig.daemon.running
                print(f"\ncamera lost reported {lost_s:.1f} s after the cut, back {back_s:.1f} s after restore")
            finally:
                await rig.close()


# -- database and disk --------------------------------------------------------------------------


async def test_database_locked_by_another_writer_while_the_alert_is_raised(rig: Rig) -> None:
    await rig.start()
    db = sqlite3.connect(rig.root / "data" / "firewatch.db", timeout=1, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # hold the write lock longer than the daemon's 10 s busy timeout
    try:
        await rig.daemon.wait_for_log("could not record", timeout=40)
    finally:
        db.execute("ROLLBACK")
        db.close()
    await alert_everywhere(rig)
    assert rig.daemon.running
    output = rig.daemon.output()
    assert "database is locked" in output and "retrying in 2 s" in output


async def test_unwritable_snapshot_dir_still_sends_the_alert_as_text(rig: Rig, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the snapshot folder's parent should be")
    await rig.start(snapshot_dir=blocker / "snapshots")
    await alert_everywhere(rig)
    for chat in rig.chats:
        messages = rig.alert_messages(chat)
        assert sorted(rig.alert_ids(chat)) == sorted(all_alert_ids(rig))
        assert all(m.photo_bytes is None and "(snapshot unavailable)" in (m.text or "") for m in messages)
    assert rig.daemon.running


# -- shutdown -------------------------------------------------------------------------------


async def test_sigterm_exits_quickly_and_queued_deliveries_survive(rig: Rig, empty_camera: Path) -> None:
    rig.srv.faults.fail_next(10_000, status=502, methods=SEND_METHODS)
    await rig.start()
    await rig.srv.wait_for(lambda s: rig.store.recent_alerts()[1] >= 1 and s.calls_to("sendPhoto"), 60)
    began = time.monotonic()
    assert await rig.daemon.stop(timeout=15) == 0  # -9 if it hangs
    took = time.monotonic() - began
    assert "firewatch stopped" in rig.daemon.output()
    queued = [d for d in rig.store.deliveries() if d.status.value != "sent"]
    assert queued
    rig.srv.faults.clear()
    await rig.start(camera_source=empty_camera)
    await alert_everywhere(rig)
    await rig.srv.wait_for(lambda s: all(d.status.value == "sent" for d in rig.store.deliveries()), 30)
    for chat in rig.chats:
        assert Counter(rig.alert_ids(chat)) == Counter(all_alert_ids(rig))
    print(f"\nSIGTERM to exit: {took:.1f} s; {len(queued)} queued deliveries sent after restart")
