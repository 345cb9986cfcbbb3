"""Storage: migrations, SQLite settings, and every repository operation round-tripping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from storage import Store, upgrade
from storage.db import alembic_config, current_revision
from storage.models import AlertStatus, DeliveryKind, DeliveryStatus, Role

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _alert(store: Store, push: bool = True, track: int = 1, at: datetime = T0):
    return store.record_alert(
        camera="yard", track_id=track, class_name="fire", severity="start-fire",
        confidence=0.6, area=0.01, snapshot_path="/snap/1.jpg", seen_at=at, push=push,
    )


def test_migrations_from_empty_to_head_are_idempotent(db_url: str) -> None:
    assert current_revision(db_url) == ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    upgrade(db_url)  # a second run changes nothing and does not fail
    store = Store(db_url)
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "operators", "face_templates", "chats", "arm_state", "arm_audit",
        "alerts", "deliveries", "camera_events", "snoozes", "alembic_version",
    } <= tables
    store.close()


def test_schema_matches_the_models(db_url: str) -> None:
    """Autogenerate finds nothing to do: the migration is complete."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.models import Base

    store = Store(db_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    store.close()
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(store: Store) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite settings")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_foreign_keys_are_enforced(store: Store) -> None:
    with store.engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(text(
            "INSERT INTO face_templates (operator_id, encoding, photo_hash, created_at) "
            "VALUES (999, :enc, 'h', '2026-01-01')"), {"enc": b"\x00"})


def test_times_come_back_aware_utc_whatever_zone_they_went_in(store: Store) -> None:
    berlin = timezone(timedelta(hours=1))
    alert = _alert(store, at=T0.astimezone(berlin))
    stored = store.get_alert(alert.id)
    assert stored.first_seen == T0 and stored.first_seen.utcoffset() == timedelta(0)
    if store.engine.dialect.name == "postgresql":  # the instant itself is kept, not a wall time
        with store.engine.connect() as conn:
            kinds = set(conn.execute(text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'alerts' AND column_name IN ('first_seen', 'last_seen')")).scalars())
        assert kinds == {"timestamp with time zone"}


def test_operators_and_face_templates(store: Store) -> None:
    op = store.add_operator(42, "Ann", Role.ADMIN)
    assert (op.telegram_user_id, op.name, op.role, op.active) == (42, "Ann", Role.ADMIN, True)
    enc = np.arange(128, dtype="<f8").tobytes()
    store.add_face_template(42, enc, "a" * 64)
    assert store.face_templates(42) == [enc]
    assert store.photo_seen("a" * 64) and not store.photo_seen("b" * 64)
    assert [o.name for o in store.list_operators()] == ["Ann"]
    assert store.add_operator(42, "Ann B").name == "Ann B"  # re-adding renames
    with pytest.raises(LookupError):
        store.add_face_template(7, enc, "c" * 64)
    assert store.remove_operator(42) and not store.remove_operator(42)
    assert store.get_operator(42) is None
    assert store.face_templates(42) == []  # templates went with the operator


def test_chats(store: Store) -> None:
    store.add_chat(42, "Ann")
    store.add_chat(-1001, "ops group")
    assert store.alert_chat_ids() == [42, -1001]
    assert store.remove_chat(42)
    assert store.alert_chat_ids() == [-1001]
    store.add_chat(42)
    assert store.alert_chat_ids() == [42, -1001]


def test_arm_state_and_append_only_audit(store: Store) -> None:
    assert store.arm_state().armed  # a fresh install is armed
    rearm = T0 + timedelta(hours=8)
    state = store.set_armed(False, user_id=42, method="selfie", rearm_at=rearm,
                            face_distance=0.31, photo_hash="p1")
    assert (state.armed, state.changed_by, state.rearm_at) == (False, 42, rearm)
    assert store.arm_state().rearm_at == rearm
    store.audit_failure(user_id=42, action="arm", method="selfie", detail="no face")
    store.audit_failure(user_id=42, action="arm", method="selfie", detail="mismatch",
                        face_distance=0.8)
    log = store.audit_log()
    assert [(e.action, e.success, e.face_distance) for e in log] == [
        ("arm", False, 0.8), ("arm", False, None), ("disarm", True, 0.31)]
    assert store.failed_attempt_times(42, since=datetime.now(timezone.utc)) == []
    store.audit_failure(user_id=42, action="arm", method="lockout", detail="locked")
    assert len(store.failed_attempt_times(42, since=T0 - timedelta(days=3650))) == 2
    assert store.photo_seen("p1")
    with store.engine.begin() as conn:
        with pytest.raises(Exception, match="append-only"):
            conn.execute(text("UPDATE arm_audit SET detail = 'changed'"))
    with store.engine.begin() as conn:
        with pytest.raises(Exception, match="append-only"):
            conn.execute(text("DELETE FROM arm_audit"))


def test_alert_lifecycle_queues_one_photo_per_chat_then_edits(store: Store) -> None:
    store.add_chat(1)
    store.add_chat(2)
    alert = _alert(store)
    first = store.deliveries(alert.id)
    assert [(d.chat_id, d.kind, d.status) for d in first] == [
        (1, DeliveryKind.ALERT, DeliveryStatus.PENDING), (2, DeliveryKind.ALERT, DeliveryStatus.PENDING)]

    updated = store.update_alert(alert.id, seen_at=T0 + timedelta(seconds=5), severity="fire",
                                 confidence=0.9, area=0.05, snapshot_path="/snap/2.jpg")
    assert (updated.severity, updated.peak_confidence, updated.peak_area) == ("fire", 0.9, 0.05)
    store.update_alert(alert.id, seen_at=T0 + timedelta(seconds=6), confidence=0.5)
    edits = [d for d in store.deliveries(alert.id) if d.kind is not DeliveryKind.ALERT]
    # one pending photo edit per chat covers the later caption-only change
    assert [d.kind for d in edits] == [DeliveryKind.ALERT_SNAPSHOT] * 2
    assert store.get_alert(alert.id).peak_confidence == 0.9  # peaks never go down

    for d in edits:  # the edits go out
        store.claim_delivery(d.id)
        store.mark_sent(d.id, 5)
    cleared = store.clear_alert(alert.id, T0 + timedelta(seconds=60))
    assert cleared.status is AlertStatus.CLEARED and cleared.cleared_at is not None
    acked = store.set_alert_status(alert.id, AlertStatus.ACKNOWLEDGED, user_id=42)
    assert (acked.status, acked.acted_by) == (AlertStatus.ACKNOWLEDGED, 42)
    kinds = [d.kind for d in store.deliveries(alert.id)]
    assert kinds.count(DeliveryKind.ALERT_STATE) == 2  # one per chat covers both changes


def test_first_photo_cannot_be_queued_twice(store: Store) -> None:
    store.add_chat(1)
    alert = _alert(store)
    with store.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(text(
            "INSERT INTO deliveries (alert_id, chat_id, kind, text, status, attempts, "
            "next_attempt_at, created_at) VALUES (:a, 1, 'alert', '', 'pending', 0, "
            "'2026-01-01', '2026-01-01')"), {"a": alert.id})


def test_disarmed_alert_is_recorded_without_deliveries(store: Store) -> None:
    store.add_chat(1)
    alert = _alert(store, push=False)
    assert store.get_alert(alert.id).pushed is False
    assert store.deliveries(alert.id) == []


def test_outbox_claim_retry_sent_failed_and_crash_recovery(store: Store) -> None:
    store.add_chat(1)
    alert = _alert(store)
    (d,) = store.due_deliveries()
    claimed = store.claim_delivery(d.id)
    assert claimed.status is DeliveryStatus.SENDING and claimed.attempts == 1
    assert store.claim_delivery(d.id) is None  # nobody else can take it
    assert store.due_deliveries() == []

    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    store.mark_retry(d.id, "503 Service Unavailable", later)
    assert store.due_deliveries() == []  # not before its time
    assert store.due_deliveries(now=later)[0].last_error == "503 Service Unavailable"
    assert store.next_due_at() == later

    store.claim_delivery(d.id) or store.mark_retry(d.id, "x", T0)  # make it due again
    store.mark_retry(d.id, "x", T0)
    store.claim_delivery(d.id)
    assert store.recover_interrupted() == 1  # a crash mid-send: back to pending
    again = store.claim_delivery(d.id)
    store.mark_sent(again.id, message_id=777)
    assert store.alert_message_id(alert.id, 1) == 777

    (t,) = store.queue_text([1], "camera lost")
    store.claim_delivery(t.id)
    store.mark_failed(t.id, "chat not found")
    assert store.deliveries()[-1].status is DeliveryStatus.FAILED


def test_history_filters_and_paging(store: Store) -> None:
    for i in range(5):
        store.record_alert(camera="yard", track_id=i, class_name="fire" if i % 2 else "smoke",
                           severity=None, confidence=0.5, area=0.1, snapshot_path=None,
                           seen_at=T0 + timedelta(hours=i), push=False)
    page, total = store.recent_alerts(limit=2)
    assert total == 5 and [a.track_id for a in page] == [4, 3]
    page, _ = store.recent_alerts(limit=2, offset=2)
    assert [a.track_id for a in page] == [2, 1]
    fires, total = store.recent_alerts(class_name="fire")
    assert total == 2 and {a.track_id for a in fires} == {1, 3}
    recent, total = store.recent_alerts(since=T0 + timedelta(hours=3))
    assert total == 2


def test_camera_events_snooze_and_retention(store: Store) -> None:
    store.record_camera_event("yard", "lost", "no frames for 5 s", at=T0)
    store.record_camera_event("yard", "back", at=T0 + timedelta(seconds=30))
    assert [e.kind for e in store.camera_events("yard")] == ["back", "lost"]

    now = datetime.now(timezone.utc)
    store.snooze("yard", now + timedelta(minutes=30), user_id=42)
    assert store.snoozed_until("yard") == now + timedelta(minutes=30)
    assert store.snoozed_until("yard", now=now + timedelta(hours=1)) is None
    assert store.snoozed_until("gate") is None

    store.add_chat(1)
    old = _alert(store, at=T0)
    new = _alert(store, track=2, at=now)
    removed, paths = store.purge_before(now - timedelta(days=1))
    assert (removed, paths) == (1, ["/snap/1.jpg"])
    assert store.get_alert(old.id) is None and store.get_alert(new.id) is not None
    assert store.deliveries(old.id) == []
    assert store.camera_events("yard") == []


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive"):
        _alert(store, at=datetime(2026, 1, 1))


def test_a_locked_database_waits_for_the_other_writer(db_url: str) -> None:
    """Another writer holding the lock briefly delays, rather than fails, a write."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's file lock")
    import sqlite3
    import threading

    path = db_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(1.0, other.commit).start()
    store = Store(db_url)
    store.add_chat(5)  # blocks ~1 s, then succeeds
    assert store.alert_chat_ids() == [5]
    store.close()
    other.close()


def test_a_delivery_waiting_for_retry_holds_back_its_chat_only(store: Store) -> None:
    first, second = store.queue_text([1, 1], "x")
    (other,) = store.queue_text([2], "y")
    store.claim_delivery(first.id)
    store.mark_retry(first.id, "502", datetime.now(timezone.utc) + timedelta(minutes=1))
    assert [d.id for d in store.due_deliveries()] == [other.id]  # chat 1 waits for its first
    later = datetime.now(timezone.utc) + timedelta(minutes=2)
    assert [d.id for d in store.due_deliveries(now=later)] == [first.id, second.id, other.id]


def test_snapshots_kept_in_the_database_are_capped_and_purged(store: Store) -> None:
    from storage.models import SNAPSHOT_MAX_BYTES
    from storage.repository import is_stored_snapshot

    jpeg = bytes(range(256)) * 400  # binary, 100 kB
    ref = store.save_snapshot(jpeg)
    assert is_stored_snapshot(ref) and not is_stored_snapshot("/snap/1.jpg")
    assert store.load_snapshot(ref) == jpeg
    assert store.load_snapshot("db:snapshot/999") is None and store.load_snapshot("/snap/1.jpg") is None
    with pytest.raises(ValueError, match="cap"):
        store.save_snapshot(b"x" * (SNAPSHOT_MAX_BYTES + 1))
    with store.engine.begin() as conn, pytest.raises(IntegrityError):  # the database holds the cap too
        conn.execute(text("INSERT INTO snapshots (created_at, content_type, data) VALUES (:at, 'image/jpeg', :d)"),
                     {"at": "2026-01-01", "d": b"x" * (SNAPSHOT_MAX_BYTES + 1)})

    store.record_alert(camera="yard", track_id=1, class_name="fire", severity=None, confidence=0.5,
                       area=0.1, snapshot_path=ref, seen_at=T0, push=False)
    _alert(store, track=2, at=T0)  # a snapshot file
    removed, files = store.purge_before(datetime.now(timezone.utc) + timedelta(seconds=1))
    assert (removed, files) == (2, ["/snap/1.jpg"])  # the caller removes files; the database its own
    assert store.load_snapshot(ref) is None
