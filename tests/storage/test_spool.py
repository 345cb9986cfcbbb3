"""An edge's spool (storage/spool.py) against a real PostgreSQL server that the tests stop and
start again: alerts written while it is down are kept in the SQLite spool and replayed, in
order and with their own times, exactly once; camera events and their notices too; an edge
that starts while it is down starts from the state it last read."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.alerts import AlertRecorder
from storage import Store, upgrade
from storage.db import alembic_config, current_revision
from storage.models import SNAPSHOT_MAX_BYTES, AlertStatus, DeliveryKind
from storage.spool import Spool, SpoolingStore
from tests.support.servers import PostgresCluster, create_database, migrated_database
from vision.types import ClipEvent, FireEvent, HealthEvent

PASSWORD = "spool-s3cret-pw"  # trust auth ignores it; it must never reach a log line
CHATS = (11, -100)


@pytest.fixture
def cluster(postgres_cluster: PostgresCluster) -> PostgresCluster:
    return postgres_cluster


@pytest.fixture
def db_url(cluster: PostgresCluster) -> str:
    return migrated_database(cluster, password=PASSWORD)


@pytest.fixture
def edge(db_url: str, tmp_path: Path) -> Iterator[SpoolingStore]:
    store = Store(db_url)
    for chat in CHATS:
        store.add_chat(chat)
    spooling = SpoolingStore(store, Spool(tmp_path / "spool.db"), retry_s=0.2)
    yield spooling
    spooling.close()


def at(seconds: float) -> float:
    """A capture time, in the past: replayed alerts must keep it, not take the replay's."""
    return datetime(2026, 11, 30, 21, 0, tzinfo=timezone.utc).timestamp() + seconds


def fire(kind: str, wall: float, *, track: int = 7, conf: float = 0.6, area: float = 0.01,
         camera: str = "north/yard") -> FireEvent:
    return FireEvent(kind=kind, camera=camera, track_id=track, class_name="fire", severity="fire",
                     confidence=conf, box=(10, 10, 50, 50), area_fraction=area, frame=3, t=0.3,
                     wall=wall, snapshot=None)


def wait_until(predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def utc(wall: float) -> datetime:
    return datetime.fromtimestamp(wall, timezone.utc)


def test_a_fire_recorded_while_postgresql_is_down_arrives_once_with_its_times(
        edge: SpoolingStore, cluster: PostgresCluster, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="storage.spool")
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    first = recorder.record(fire("started", at(0)))
    assert first.alert_id is not None  # the database answered
    cluster.stop()
    recorder.record(fire("updated", at(5), conf=0.9, area=0.05))
    spooled = recorder.record(fire("started", at(6), track=8))
    assert spooled.alert_id is None and spooled.queued
    recorder.record(HealthEvent(kind="frozen", camera="north/yard", t=7.0, detail="12 s", wall=at(7)))
    recorder.record(fire("updated", at(9), track=8, conf=0.8))
    recorder.record(fire("cleared", at(12), track=8))
    recorder.record(fire("cleared", at(15)))
    assert edge.spooling and len(edge.spool) == 7  # the health event: its record and its notice
    cluster.start()
    wait_until(lambda: not edge.spooling)

    check = Store(db_url)
    alerts, total = check.recent_alerts(limit=10)
    assert total == 2
    by_track = {a.track_id: a for a in alerts}
    one, two = by_track[7], by_track[8]
    assert (one.first_seen, one.last_seen, one.cleared_at) == (utc(at(0)), utc(at(5)), utc(at(15)))
    assert (one.peak_confidence, one.peak_area, one.status) == (0.9, 0.05, AlertStatus.CLEARED)
    assert (two.first_seen, two.last_seen, two.cleared_at) == (utc(at(6)), utc(at(9)), utc(at(12)))
    assert two.key is not None and two.key.startswith("north/yard/")  # the edge is in the camera name
    for alert in (one, two):  # the message that carries it: once per chat
        firsts = [d.chat_id for d in check.deliveries(alert.id) if d.kind is DeliveryKind.ALERT]
        assert sorted(firsts) == sorted(CHATS)
    assert [e.kind for e in check.camera_events()] == ["frozen"]
    assert check.camera_events()[0].at == utc(at(7))
    notices = [d for d in check.deliveries() if d.kind is DeliveryKind.TEXT]
    assert sorted(d.chat_id for d in notices) == sorted(CHATS) and "frozen" in notices[0].text
    assert len(edge.spool) == 0 and edge.spool.set_aside_count() == 0
    check.close()

    outage = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    back = [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(outage) == 1 and len(back) == 1, caplog.text
    assert "7 spooled records replayed" in back[0]
    assert PASSWORD not in caplog.text


def test_a_write_replayed_twice_after_a_crash_mid_replay_is_stored_once(
        edge: SpoolingStore, cluster: PostgresCluster, db_url: str, tmp_path: Path) -> None:
    # A crash between the database's commit and the spool's delete leaves the write in the
    # spool: the next run replays it again.
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    cluster.stop()
    recorder.record(fire("started", at(0)))
    recorder.record(fire("updated", at(3), conf=0.9))
    written = [edge.spool.first()]
    cluster.start()
    wait_until(lambda: not edge.spooling)
    again = Spool(tmp_path / "again.db")
    for write in written:
        again.append(write.op, write.args)  # type: ignore[union-attr]
    again.close()
    replayed = SpoolingStore(Store(db_url), Spool(tmp_path / "again.db"))  # a restart replays first
    try:
        assert not replayed.spooling and len(replayed.spool) == 0
        alerts, total = replayed.recent_alerts()
        assert total == 1 and alerts[0].peak_confidence == 0.9
        firsts = [d.chat_id for d in replayed.deliveries(alerts[0].id) if d.kind is DeliveryKind.ALERT]
        assert sorted(firsts) == sorted(CHATS)
    finally:
        replayed.close()


def test_the_spool_outlives_the_process_and_is_replayed_at_the_next_start(
        edge: SpoolingStore, cluster: PostgresCluster, db_url: str, tmp_path: Path) -> None:
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    cluster.stop()
    recorder.record(fire("started", at(0)))
    recorder.record(fire("cleared", at(20)))
    edge.close()  # stopped during the outage: what is spooled stays on disk
    cluster.start()
    restarted = SpoolingStore(Store(db_url), Spool(tmp_path / "spool.db"))
    try:
        assert not restarted.spooling
        alerts, total = restarted.recent_alerts()
        assert total == 1 and alerts[0].cleared_at == utc(at(20))
    finally:
        restarted.close()


def test_a_write_the_database_refuses_is_set_aside_and_the_rest_replayed(
        edge: SpoolingStore, cluster: PostgresCluster) -> None:
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    cluster.stop()
    edge.update_alert("north/yard/no-such-alert", seen_at=utc(at(1)))
    recorder.record(fire("started", at(2)))
    cluster.start()
    wait_until(lambda: not edge.spooling)
    assert edge.spool.set_aside_count() == 1
    assert edge.recent_alerts()[1] == 1


def test_while_down_the_last_arm_state_decides_and_the_database_is_not_waited_on(
        edge: SpoolingStore, cluster: PostgresCluster, db_url: str) -> None:
    edge.set_armed(False, user_id=5, method="cli")
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    assert not recorder.should_push("north/yard")  # read while up: remembered
    cluster.stop()
    recorder.record(fire("started", at(0)))
    began = time.monotonic()
    assert not recorder.should_push("north/yard")
    assert time.monotonic() - began < 1.0  # known to be away: not asked
    cluster.start()
    wait_until(lambda: not edge.spooling)
    alerts, _ = edge.recent_alerts()
    assert alerts[0].pushed is False and edge.deliveries(alerts[0].id) == []


def test_spooled_values_come_back_as_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    when = datetime(2026, 11, 30, 21, 0, 0, 123456, tzinfo=timezone.utc)
    args = {"seen_at": when, "box": [0.1, 0.2, 0.3, 0.4], "verification": {"score": 0.9, "why": {"a": 1}},
            "severity": None, "key": "north/yard/abc"}
    spool.append("record_alert", args)
    spool.append("clear_alert", {"alert_id": 3, "at": when + timedelta(seconds=5)})
    write = spool.first()
    assert write is not None and write.op == "record_alert" and write.args == args
    spool.remove(write.seq)
    assert spool.first().args == {"alert_id": 3, "at": when + timedelta(seconds=5)}  # type: ignore[union-attr]
    assert len(spool) == 1
    spool.close()


def test_a_snapshot_saved_while_down_is_stored_and_named_in_its_alert_at_the_replay(
        edge: SpoolingStore, cluster: PostgresCluster) -> None:
    jpeg = b"\xff\xd8 a snapshot taken while the database was away \xff\xd9"
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    cluster.stop()
    spooled = edge.save_snapshot(jpeg)
    assert spooled.startswith("spool:snapshot/")
    recorder.record(replace(fire("started", at(0)), snapshot=spooled))
    with pytest.raises(ValueError, match="cap"):  # refused at once, as the database would
        edge.save_snapshot(b"x" * (SNAPSHOT_MAX_BYTES + 1))
    cluster.start()
    wait_until(lambda: not edge.spooling)
    (alert,), _ = edge.recent_alerts()
    assert alert.snapshot_path.startswith("db:snapshot/")  # type: ignore[union-attr]
    assert edge.load_snapshot(alert.snapshot_path) == jpeg  # type: ignore[arg-type]


def test_an_onset_clip_cut_while_down_is_attached_at_the_replay(edge: SpoolingStore, cluster: PostgresCluster) -> None:
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    cluster.stop()
    recorder.record(fire("started", at(0)))
    clip = ClipEvent(camera="north/yard", track_id=7, path="/var/lib/firewatch/clips/7.mp4", t=5.0, wall=at(5),
                     frames=40, seconds=5.0, codec="h264")
    assert recorder.record(clip).alert_id is None  # kept for the replay, not lost
    cluster.start()
    wait_until(lambda: not edge.spooling)
    (alert,), _ = edge.recent_alerts()
    assert alert.clip_path == clip.path


def test_a_camera_notice_replayed_twice_after_a_crash_mid_replay_is_stored_and_sent_once(
        edge: SpoolingStore, cluster: PostgresCluster, db_url: str, tmp_path: Path) -> None:
    recorder = AlertRecorder(edge, can_push=True, edge="north")
    cluster.stop()
    recorder.record(HealthEvent(kind="lost", camera="north/yard", t=1.0, detail="no frames for 10 s", wall=at(1)))
    written = []  # the event and its notice (read one by one, put back in order)
    while len(written) < 2 and (write := edge.spool.first()) is not None:
        written.append(write)
        edge.spool.remove(write.seq)
    for write in written:
        edge.spool.append(write.op, write.args)
    assert [w.op for w in written] == ["record_camera_event", "queue_notice"]
    cluster.start()
    wait_until(lambda: not edge.spooling)
    again = Spool(tmp_path / "again.db")
    for write in written:
        again.append(write.op, write.args)
    again.close()
    replayed = SpoolingStore(Store(db_url), Spool(tmp_path / "again.db"))  # the next start replays them again
    try:
        assert not replayed.spooling and len(replayed.spool) == 0 and replayed.spool.set_aside_count() == 0
        events = replayed.camera_events()
        assert [(e.kind, e.at) for e in events] == [("lost", utc(at(1)))]
        notices = [d for d in replayed.deliveries() if d.kind is DeliveryKind.TEXT]
        assert sorted(d.chat_id for d in notices) == sorted(CHATS) and "lost" in notices[0].text
    finally:
        replayed.close()


def offline_error(url: str) -> BaseException:
    """What the database answers an edge at start while it is down."""
    with pytest.raises(Exception) as error:
        upgrade(url)
    return error.value


def test_an_edge_started_while_postgresql_is_down_starts_from_the_state_it_last_read(
        edge: SpoolingStore, cluster: PostgresCluster, db_url: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    camera = "north/yard"
    edge.set_armed(False, user_id=5, method="cli")
    until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2)
    edge.snooze("north/gate", until, user_id=5)
    zone = edge.add_zone(camera, [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]], created_by=5)
    edge.remember_state([camera, "north/gate"])  # what a run reads at start and at each heartbeat
    edge.close()

    cluster.stop()
    caplog.set_level(logging.INFO, logger="storage.spool")
    restarted = SpoolingStore(Store(db_url), Spool(tmp_path / "spool.db"), retry_s=0.2,
                              offline=offline_error(db_url), prepare=lambda: upgrade(db_url))
    try:
        assert restarted.spooling
        assert restarted.arm_state().armed is False
        assert restarted.snoozed_until("north/gate") == until and restarted.snoozed_until(camera) is None
        (kept,) = restarted.zones(camera)
        assert (kept.id, kept.points) == (zone.id, zone.points)
        assert restarted.open_alerts() == [] and not restarted.open_alerts_known  # asked again later
        recorder = AlertRecorder(restarted, can_push=True, edge="north")
        assert recorder.record(fire("started", at(0))).alert_id is None
        (line,) = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
        assert "unreachable at start (" in line and "starting as last read from it (disarmed, 1 snoozed cameras, 1 ignore zones)" in line

        cluster.start()
        wait_until(lambda: not restarted.spooling)
        (alert,), _ = restarted.recent_alerts()
        assert alert.first_seen == utc(at(0)) and alert.pushed is False  # disarmed, as last read
        assert restarted.deliveries(alert.id) == []
        assert [a.id for a in restarted.open_alerts()] == [alert.id] and restarted.open_alerts_known
    finally:
        restarted.close()


def test_started_while_down_the_schema_is_brought_to_head_before_the_replay(
        cluster: PostgresCluster, tmp_path: Path) -> None:
    url = create_database(cluster.url)  # a new database, never migrated
    spool = Spool(tmp_path / "spool.db")
    spool.remember("armed", True)
    cluster.stop()
    edge = SpoolingStore(Store(url), spool, retry_s=0.2, offline=offline_error(url), prepare=lambda: upgrade(url))
    try:
        AlertRecorder(edge, can_push=True, edge="north").record(fire("started", at(0)))
        cluster.start()
        wait_until(lambda: not edge.spooling)
        assert current_revision(url) == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        (alert,), _ = edge.recent_alerts()
        assert alert.first_seen == utc(at(0))
    finally:
        edge.close()


def test_a_state_kept_in_the_spool_comes_back_as_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    assert not spool.knows_state() and spool.recall("snoozes") is None
    until = datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)
    spool.remember("armed", False)
    spool.remember("snoozes", {"north/yard": until, "north/gate": None})
    spool.close()
    again = Spool(tmp_path / "spool.db")
    assert again.knows_state() and again.recall("armed") is False
    assert again.recall("snoozes") == {"north/yard": until, "north/gate": None}
    again.close()
