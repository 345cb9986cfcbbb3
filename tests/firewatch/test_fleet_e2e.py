"""A fleet end to end: two edges and one bot, three real ``firewatch run`` processes, on one real
PostgreSQL database and the fake Bot API (tests/support/botapi).

Each edge replays the same fire video under its own site and camera name, with its own data
folder (so the bot cannot read an edge's snapshot files: it reads them from the database).
Each fire makes exactly one alert, captioned ``site/camera`` and carrying its snapshot; /status
on the bot lists both edges and their cameras; an edge that stops checking in is reported
once, and once more when it is back.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from storage import Store
from storage.models import DeliveryKind, DeliveryStatus
from tests.support.bot_harness import TOKEN, Daemon
from tests.support.botapi import BotApiServer
from tests.support.daemon_rig import Rig, black_frames
from tests.support.data import DATA, SHIPPED_DETECTOR

FIRE_VIDEO = DATA / "videos" / "navid__fire4.mp4"  # 101 frames at 10 FPS, fire in every one
# At 0.45 detector v1 sees this clip's flames as one fire (tests/firewatch/test_cameras_e2e.py says why v1).
DETECT_CONFIDENCE = 0.45
SITES = {"site-a": "kitchen", "site-b": "garage"}
HEARTBEAT_S, QUIET_AFTER_S = 1, 8

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FIRE_VIDEO.is_file(), reason=f"no shared videos at {DATA}"),
    pytest.mark.skipif(not SHIPPED_DETECTOR.is_file(), reason=f"{SHIPPED_DETECTOR} not exported"),
]


async def start_edge(rig: Rig, site: str, source: Path) -> Daemon:
    edge = await rig.start(wait=False, role="edge", edge_name=site, camera_name=SITES[site],
                           camera_source=source, data_dir=rig.root / site)
    await edge.wait_for_log(f"edge {site}: alerts are recorded", timeout=90)
    return edge


async def ask_status(rig: Rig) -> str:
    before = len(rig.srv.sent_messages(rig.admin))
    rig.srv.send_text(rig.admin, "/status")
    return (await rig.srv.wait_for(lambda s: s.sent_messages(rig.admin)[before:], 20))[0].text or ""


async def status_when(rig: Rig, ready, timeout: float = 60) -> str:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready(status := await ask_status(rig)):
        assert loop.time() < deadline, status
        await asyncio.sleep(0.5)
    return status


def texts_with(rig: Rig, needle: str) -> dict[int, int]:
    """Per chat: how many of the bot's texts contain ``needle``."""
    return {chat.id: sum(needle in t for t in rig.texts(chat)) for chat in rig.chats}


async def test_two_edges_and_one_bot_on_one_postgresql(tmp_path: Path, postgres_database: str) -> None:
    async with BotApiServer(token=TOKEN) as srv:
        rig = Rig.create(srv, tmp_path, FIRE_VIDEO, database_url=postgres_database, classifier_model="", detector_model="v1",
                         detect_confidence=DETECT_CONFIDENCE, heartbeat_s=HEARTBEAT_S,
                         edge_quiet_after_s=QUIET_AFTER_S,
                         # The photo stays a photo: an onset clip would replace it after a few seconds.
                         alert_clip="false")
        store = Store(postgres_database)
        try:
            bot = await rig.start(role="bot")  # first: it migrates the database and adds the chats
            assert "firewatch starting as role 'bot': cameras none" in bot.output()
            edges = await asyncio.gather(*(start_edge(rig, site, FIRE_VIDEO) for site in SITES))

            # Both edges check in while they watch; /status shows each with its cameras.
            status = await status_when(rig, lambda text: all(
                f"🛰 {site}: checked in" in text and f"📷 {site}/{camera}: " in text
                for site, camera in SITES.items()))
            assert "no camera pipeline running" not in status, status

            # Each fire: exactly one alert, in every chat, captioned with where it is.
            for edge in edges:
                assert await asyncio.wait_for(edge.proc.wait(), 180) == 0, edge.output()[-3000:]  # type: ignore[union-attr]
            alerts, total = store.recent_alerts(limit=10)
            assert total == 2 and {a.camera for a in alerts} == {f"{s}/{c}" for s, c in SITES.items()}, alerts
            for chat in rig.chats:
                await srv.wait_for(lambda s: len(rig.alert_messages(chat)) >= 2, 60)
            await asyncio.sleep(2.0)  # a third message would be sent by now
            for chat in rig.chats:
                messages = rig.alert_messages(chat)
                assert sorted(rig.alert_ids(chat)) == sorted(a.id for a in alerts), [m.caption for m in messages]
                for alert in alerts:
                    (message,) = [m for m in messages if f"Alert #{alert.id}" in (m.caption or "")]
                    assert f"on {alert.camera}" in (message.caption or ""), message.caption
                    # The snapshot came from the database: the bot has no access to the edge's folder.
                    assert alert.snapshot_path and alert.snapshot_path.startswith("db:snapshot/")
                    assert message.photo_bytes == store.load_snapshot(alert.snapshot_path)
            rig.srv.send_text(rig.admin, "/history")
            history = (await srv.wait_for(lambda s: [m for m in s.sent_messages(rig.admin)
                                                     if (m.text or "").startswith("Alerts 1–2 of 2")], 20))[0].text
            for site, camera in SITES.items():
                assert f" {site}/{camera}: " in (history or ""), history
            firsts = [d for d in store.deliveries() if d.kind is DeliveryKind.ALERT]
            assert sorted((d.alert_id, d.chat_id) for d in firsts) == sorted(
                (a.id, c.id) for a in alerts for c in rig.chats)
            assert all(d.status is DeliveryStatus.SENT for d in firsts), firsts

            # Both edges have stopped: each is reported once, in every chat.
            for site in SITES:
                notice = f"Edge {site} has not checked in for"
                await srv.wait_for(lambda s: all(texts_with(rig, notice).values()), 60)
            await asyncio.sleep(QUIET_AFTER_S / 2)  # the watch runs every QUIET_AFTER_S / 4
            for site in SITES:
                assert set(texts_with(rig, f"Edge {site} has not checked in for").values()) == {1}
            status = await ask_status(rig)
            assert re.search(r"🛰⚠️ site-a: not checked in for \d+ s \(last at ", status), status

            # site-a comes back (a dark camera this time, no fire): told once.
            frames = tmp_path / "dark"
            frames.mkdir()
            black_frames(frames, 0, 30)
            again = await start_edge(rig, "site-a", frames)
            await srv.wait_for(lambda s: all(texts_with(rig, "Edge site-a is checking in again").values()), 30)
            await again.stop()
            assert set(texts_with(rig, "Edge site-a is checking in again").values()) == {1}
            assert set(texts_with(rig, "Edge site-b is checking in again").values()) == {0}
            assert store.recent_alerts(limit=10)[1] == 2

            assert await bot.stop() == 0
            errors = [line for line in rig.all_output().splitlines() if " ERROR " in line or "Traceback" in line]
            assert not errors, "\n".join(errors)
            assert TOKEN not in rig.all_output()
        finally:
            await rig.close()
            store.close()
