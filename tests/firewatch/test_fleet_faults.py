"""A fleet's faults on a real PostgreSQL server that the tests stop and start, with real
python-telegram-bot talking HTTP to the fake Bot API: the database down during a fire, an
edge killed (-9) while it records and while it replays its spool, an edge (re)started while
the database is down, and the bot killed (-9) while a send is in flight. Nothing is lost;
nothing is duplicated beyond the one repeat the outbox documents for a send cut off mid-flight.

Edges and the bot run as the daemon runs them (the alert recorder writing through the spool;
the outbox sender with PTB's ``Bot``), or are the daemon itself (``firewatch run``); the killed
ones are child processes of their own.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import pytest_asyncio
from telegram.ext import AIORateLimiter, ApplicationBuilder

from bot.alerts import AlertRecorder
from bot.outbox import OutboxSender
from firewatch.edge_recorder import EdgeRecorder
from storage import Store
from storage.models import DeliveryKind
from storage.spool import Spool, SpoolingStore
from tests.support.bot_harness import TOKEN
from tests.support.botapi import BotApiServer
from tests.support.daemon_rig import ALERT_RE, Rig, black_frames, fire_clip
from tests.support.data import FIRE2, REPO, SHIPPED_DETECTOR
from tests.support.servers import PostgresCluster, create_database, migrated_database
from vision.types import FireEvent

pytestmark = pytest.mark.slow
OPERATORS = (1001, 1002)
BASE = datetime(2026, 11, 30, 21, 0, tzinfo=timezone.utc).timestamp()  # capture times, in the past


@pytest.fixture
def cluster(postgres_cluster: PostgresCluster) -> PostgresCluster:
    return postgres_cluster


@pytest.fixture
def db_url(cluster: PostgresCluster) -> str:
    url = migrated_database(cluster)
    store = Store(url)
    for chat in OPERATORS:
        store.add_chat(chat)
    store.close()
    return url


@pytest_asyncio.fixture
async def srv() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(token=TOKEN) as server:
        for user_id in OPERATORS:
            server.add_user(f"Operator {user_id}", user_id=user_id)
        yield server


def fire(kind: str, track: int, at: float, snapshot: str | None = None) -> FireEvent:
    return FireEvent(kind=kind, camera="north/yard", track_id=track, class_name="fire", severity="fire",
                     confidence=0.7, box=(100.0, 80.0, 300.0, 260.0), area_fraction=0.1, frame=track, t=at - BASE,
                     wall=at, snapshot=snapshot, frame_size=(640, 480))


def alert_photos(srv: BotApiServer, user_id: int) -> list[int]:
    """The alert ids of the photos the bot sent to this operator, in order."""
    return [int(ALERT_RE.search(m.caption or m.text or "").group(1))  # type: ignore[union-attr]
            for m in srv.sent_messages(user_id) if ALERT_RE.search(m.caption or m.text or "")]


async def wait_until(predicate, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# -- PostgreSQL down during a fire ------------------------------------------------------------


async def test_postgresql_down_during_a_fire_the_alert_arrives_once_with_its_capture_time(
        srv: BotApiServer, cluster: PostgresCluster, db_url: str, tmp_path: Path) -> None:
    edge = SpoolingStore(Store(db_url), Spool(tmp_path / "spool.db"), retry_s=0.5)
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    bot_store = Store(db_url)
    app = (ApplicationBuilder().token(TOKEN).base_url(srv.base_url).base_file_url(srv.base_file_url)
           .rate_limiter(AIORateLimiter(max_retries=0)).build())
    await app.initialize()
    sender = OutboxSender(app.bot, bot_store, base_backoff_s=0.2)
    sender.start()
    try:
        cluster.stop()
        # The fire, from its start to its end, while the database is away.
        started = await asyncio.to_thread(recorder.record, fire("started", 1, BASE, snapshot=str(FIRE2[13])))
        await asyncio.to_thread(recorder.record, fire("updated", 1, BASE + 4, snapshot=str(FIRE2[20])))
        assert started.alert_id is None and edge.spooling
        await asyncio.sleep(1.5)  # the bot meets the outage too, and lives through it
        await asyncio.to_thread(cluster.start)
        await wait_until(lambda: not edge.spooling)
        # Nothing wakes the bot: it finds the replayed alert's deliveries by its own poll.
        await srv.wait_for(lambda s: all(alert_photos(s, u) for u in OPERATORS), timeout=60)
        await asyncio.to_thread(recorder.record, fire("cleared", 1, BASE + 9))
        await srv.wait_for(lambda s: all(d.status.value == "sent" for d in bot_store.deliveries()), timeout=60)
        await asyncio.sleep(1)  # a duplicate would be on its way by now

        alerts, total = bot_store.recent_alerts()
        assert total == 1
        (alert,) = alerts
        assert alert.first_seen == datetime.fromtimestamp(BASE, timezone.utc)  # captured, not replayed, time
        assert alert.cleared_at == datetime.fromtimestamp(BASE + 9, timezone.utc)
        for user_id in OPERATORS:
            assert alert_photos(srv, user_id) == [alert.id]  # one message, edited, never sent again
        firsts = [d for d in bot_store.deliveries(alert.id) if d.kind is DeliveryKind.ALERT]
        assert sorted(d.chat_id for d in firsts) == sorted(OPERATORS)
    finally:
        await sender.stop()
        await app.shutdown()
        bot_store.close()
        edge.close()


# -- an edge killed with -9 ---------------------------------------------------------------------

_EDGE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bot.alerts import AlertRecorder
    from storage import Store
    from storage.spool import Spool, SpoolingStore
    from vision.types import FireEvent, HealthEvent

    url, spool, first, count, base = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    edge = SpoolingStore(Store(url), Spool(spool), retry_s=0.2)
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    print("started", flush=True)
    go = spool.with_suffix(".go")  # the test says when the fire begins
    while not go.exists():
        time.sleep(0.01)
    for track in range(first, first + count):
        for kind, at in (("started", base + track), ("cleared", base + track + 0.5)):
            recorder.record(FireEvent(kind=kind, camera="north/yard", track_id=track, class_name="fire",
                                      severity="fire", confidence=0.7, box=(1.0, 1.0, 9.0, 9.0), area_fraction=0.1,
                                      frame=track, t=0.0, wall=at))
        if track % 10 == 0:  # a camera notice now and then: spooled and replayed like alerts
            recorder.record(HealthEvent(kind="frozen", camera="north/yard", t=0.0, detail=f"track {track}",
                                        wall=base + track + 0.7))
        print(f"recorded {track}", flush=True)
    while edge.spooling:
        time.sleep(0.05)
    print("drained", flush=True)
    time.sleep(600)
""")


class EdgeProcess:
    """The edge script above in a child process; its output lines, read as they come."""

    def __init__(self, url: str, spool: Path, first: int, count: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _EDGE, url, str(spool), str(first), str(count), str(BASE)],
                                     cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []

    def wait_for(self, predicate, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            assert self.proc.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < deadline, "\n".join(self.lines[-20:])
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if line:
                self.lines.append(line.rstrip())

    def recorded(self) -> int:
        return sum(line.startswith("recorded ") for line in self.lines)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()  # type: ignore[union-attr]


def test_an_edge_killed_while_it_spools_and_again_while_it_replays_loses_and_duplicates_nothing(
        cluster: PostgresCluster, db_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    check = Store(db_url)
    try:
        # PostgreSQL goes down: the edge records 400 fires (and their ends) into its spool, and
        # is killed at some point in the middle of that.
        edge = EdgeProcess(db_url, spool, 1, 400)
        edge.wait_for(lambda lines: "started" in lines)
        cluster.stop()
        spool.with_suffix(".go").touch()
        edge.wait_for(lambda lines: sum(line.startswith("recorded ") for line in lines) >= 150)
        edge.kill9()
        recorded = edge.recorded()
        cluster.start()
        # Restarted with the database back, it replays the spool first: killed again mid-replay.
        edge = EdgeProcess(db_url, spool, 0, 0)
        deadline = time.monotonic() + 60
        while check.recent_alerts(limit=1)[1] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        edge.kill9()
        partly = check.recent_alerts(limit=1)[1]
        # And started once more: the rest of the replay.
        edge = EdgeProcess(db_url, spool, 0, 0)
        edge.wait_for(lambda lines: "drained" in lines, timeout=120)
        edge.kill9()

        alerts, total = check.recent_alerts(limit=1000)
        print(f"\nrecorded before the first kill: {recorded} (+1 in flight); in the database when killed "
              f"mid-replay: {partly}; in the end: {total}")
        assert 20 <= partly < total
        # Each fully recorded fire once; the one being recorded at the kill at most once.
        assert recorded <= total <= recorded + 1
        assert len({a.key for a in alerts}) == total
        assert sorted(a.track_id for a in alerts) == list(range(1, total + 1))
        for alert in alerts:
            assert alert.first_seen == datetime.fromtimestamp(BASE + alert.track_id, timezone.utc)
            if alert.track_id <= recorded:
                assert alert.cleared_at == datetime.fromtimestamp(BASE + alert.track_id + 0.5, timezone.utc)
        firsts = Counter((d.alert_id, d.chat_id) for d in check.deliveries() if d.kind is DeliveryKind.ALERT)
        assert set(firsts.values()) == {1} and len(firsts) == total * len(OPERATORS)
        # Each camera notice once, and its message once per chat (the one in flight at the kill: at most).
        events = Counter(e.detail for e in check.camera_events(limit=1000))
        done = {f"track {t}" for t in range(10, recorded + 1, 10)}
        assert set(events.values()) == {1} and done <= set(events) <= done | {f"track {recorded + 1}"}
        notices = Counter((re.search(r"track \d+", d.text).group(0), d.chat_id)  # type: ignore[union-attr]
                          for d in check.deliveries() if d.kind is DeliveryKind.TEXT)
        assert set(notices.values()) == {1}
        assert {(detail, chat) for detail in done for chat in OPERATORS} <= set(notices)
    finally:
        check.close()


# -- an edge (re)started while PostgreSQL is down ----------------------------------------------------


def test_started_while_down_an_edge_carries_the_last_runs_open_alert_over_once_the_database_answers(
        cluster: PostgresCluster, db_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    last_run = SpoolingStore(Store(db_url), Spool(spool))
    last_run.remember_state(["north/yard"])
    left_open = AlertRecorder(last_run, can_push=True, edge="north").record(fire("started", 1, BASE)).alert_id
    last_run.close()  # died with its fire open

    cluster.stop()
    with pytest.raises(Exception) as away:
        Store(db_url).arm_state()
    edge = SpoolingStore(Store(db_url), Spool(spool), retry_s=0.2, offline=away.value)
    recorder = EdgeRecorder(edge, can_push=True, clear_after_s=0, owns=lambda camera: camera.startswith("north/"),
                            edge="north")
    try:
        recorder.record(fire("started", 2, BASE + 60))  # a new fire, spooled
        assert not recorder.expire_carried({"north/yard": True})  # nothing known of the last run yet
        cluster.start()
        while edge.spooling:
            time.sleep(0.05)
        # Now the last run's alert is carried (and, not seen again, cleared); this run's is not.
        assert recorder.expire_carried({"north/yard": True})
        alerts = {a.track_id: a for a in edge.recent_alerts()[0]}
        assert alerts[1].id == left_open and alerts[1].cleared_at == alerts[1].last_seen
        assert alerts[2].cleared_at is None and [a.track_id for a in edge.open_alerts()] == [2]
    finally:
        edge.close()

SPOOLED_FIRE_RE = re.compile(r"alert (site-a/kitchen/[0-9a-f]{32}) started: fire")


@pytest.mark.skipif(not SHIPPED_DETECTOR.is_file(), reason=f"{SHIPPED_DETECTOR} not exported")
async def test_an_edge_started_while_postgresql_is_down_detects_and_its_alert_arrives_once(
        cluster: PostgresCluster, tmp_path: Path) -> None:
    dark, fire_then_dark = tmp_path / "dark", tmp_path / "fire"
    dark.mkdir()
    fire_then_dark.mkdir()
    black_frames(dark, 0, 20)
    black_frames(fire_then_dark, fire_clip(fire_then_dark), 900)  # the fire, then 90 s of night
    url = create_database(cluster.url)  # new: the first edge to reach it migrates it
    edge_dir = tmp_path / "site-a"
    async with BotApiServer(token=TOKEN) as srv:
        rig = Rig.create(srv, tmp_path, dark, database_url=url, detector_model=SHIPPED_DETECTOR,
                         spool_retry_s=0.5, heartbeat_s=1, alert_clip="false")
        edge_env = {"role": "edge", "edge_name": "site-a", "camera_name": "kitchen", "data_dir": edge_dir}
        store = Store(url)
        try:
            # Its first start ever, without the database: nothing to start from, so it waits.
            cluster.stop()
            first = await rig.start(wait=False, **edge_env)
            await first.wait_for_log("has no state read from it yet to start from, so it waits for it")
            await asyncio.sleep(2)  # retried meanwhile, quietly
            await asyncio.to_thread(cluster.start)
            await first.wait_for_log("edge site-a: alerts are recorded", timeout=120)
            assert await asyncio.wait_for(first.proc.wait(), 120) == 0, first.output()[-3000:]  # type: ignore[union-attr]
            assert first.output().count("unreachable") == 1, first.output()
            bot = await rig.start(role="bot")  # adds the chats; sends what edges record

            # Rebooted during an outage: it starts from what it read, watches, spools the fire.
            await asyncio.to_thread(cluster.stop)
            second = await rig.start(wait=False, camera_source=fire_then_dark, **edge_env)
            await second.wait_for_log("starting as last read from it (armed,", timeout=120)
            await second.wait_for_log("edge site-a: alerts are recorded", timeout=120)
            await second.wait_for_log(" started: fire", timeout=120)
            (key,) = SPOOLED_FIRE_RE.findall(second.output())
            back = datetime.now(timezone.utc)
            await asyncio.to_thread(cluster.start)
            await second.wait_for_log("reachable again after", timeout=60)
            for chat in rig.chats:
                await srv.wait_for(lambda s: rig.alert_messages(chat), 60)
            await second.stop()
            await asyncio.sleep(2)  # a second message would be sent by now

            # The clip's smoke may be confirmed too, as an alert of its own (a loaded machine's
            # live source drops other frames): "once" holds for each alert, the fire's included.
            alerts, total = store.recent_alerts(limit=10)
            fires = [a for a in alerts if a.class_name == "fire"]
            assert len(fires) == 1 and total == len(alerts) <= 2, (
                [(a.key, a.class_name, a.track_id, a.first_seen) for a in alerts], second.output()[-6000:])
            (alert,) = fires
            assert alert.key == key and alert.pushed
            assert alert.first_seen < back  # its capture time, not its replay's
            for chat in rig.chats:
                await srv.wait_for(lambda s: len(rig.alert_ids(chat)) >= total, 30)
                assert sorted(rig.alert_ids(chat)) == sorted(a.id for a in alerts)
            firsts = [d.chat_id for d in store.deliveries(alert.id) if d.kind is DeliveryKind.ALERT]
            assert sorted(firsts) == sorted(c.id for c in rig.chats)
            out = second.output()
            assert out.count("unreachable") == 1 and out.count("reachable again after") == 1, out
            assert await bot.stop() == 0
            for edge in (first, second):
                assert "Traceback" not in edge.output() and " ERROR " not in edge.output(), edge.output()[-4000:]
        finally:
            if not cluster.running():
                cluster.start()
            await rig.close()
            store.close()


# -- the bot killed with -9 mid-send -----------------------------------------------------------------

_BOT = textwrap.dedent("""
    import asyncio, sys
    from telegram.ext import AIORateLimiter, ApplicationBuilder
    from bot.outbox import OutboxSender
    from storage import Store

    async def main(url, token, base_url, file_url):
        store = Store(url)
        print(f"recovered {store.recover_interrupted()}", flush=True)
        app = (ApplicationBuilder().token(token).base_url(base_url).base_file_url(file_url)
               .rate_limiter(AIORateLimiter(max_retries=0)).build())
        await app.initialize()
        sender = OutboxSender(app.bot, store, base_backoff_s=0.2)
        sender.start()
        print("sending", flush=True)
        await asyncio.Event().wait()  # it polls the shared outbox by itself

    asyncio.run(main(*sys.argv[1:5]))
""")


async def test_the_bot_killed_mid_send_sends_each_delivery_once_or_the_cut_one_at_most_twice(
        srv: BotApiServer, db_url: str) -> None:
    store = Store(db_url)
    recorder = AlertRecorder(store, can_push=True, edge="north")
    for track in range(1, 4):
        recorder.record(fire("started", track, BASE + track, snapshot=str(FIRE2[13])))
    # The first photo reaches "Telegram" 4 s after it is asked for; the bot dies meanwhile.
    srv.faults.stall(1, seconds=4, methods="sendPhoto")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", _BOT, db_url, TOKEN, srv.base_url, srv.base_file_url]
    bot = await asyncio.create_subprocess_exec(*args, cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL)
    try:
        await wait_until(lambda: srv.calls_to("sendPhoto"))
        await asyncio.sleep(0.5)
        bot.send_signal(signal.SIGKILL)
        await bot.wait()
        # Sends asked for before the kill (the stalled one, maybe another chat's): each may
        # have arrived unrecorded, so each may come once more.
        cut = {(int(c.params["chat_id"]), int(ALERT_RE.search(str(c.params["caption"])).group(1)))  # type: ignore[union-attr]
               for c in srv.calls_to("sendPhoto")}
        await asyncio.sleep(4)  # the stalled call completes on Telegram's side
        bot = await asyncio.create_subprocess_exec(*args, cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL)
        await srv.wait_for(lambda s: all(d.status.value not in ("pending", "sending") for d in store.deliveries()),
                           timeout=60)
        await asyncio.sleep(2)  # any duplicate beyond the documented one would arrive by now
    finally:
        if bot.returncode is None:
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
    alert_ids = sorted(a.id for a in store.recent_alerts()[0])
    repeated = []
    for user_id in OPERATORS:
        copies = Counter(alert_photos(srv, user_id))
        assert sorted(copies) == alert_ids, copies
        for alert_id, n in copies.items():
            assert n == 1 or ((user_id, alert_id) in cut and n == 2), (user_id, copies, cut)
            repeated += [(user_id, alert_id)] * (n - 1)
    store.close()
    print(f"\ncut off by the kill: {sorted(cut)}; sent twice: {repeated}")
