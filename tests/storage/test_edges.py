"""A fleet's edges in the database: heartbeats on the database's clock, one notice when an
edge goes silent and one when it is back (never twice, whichever bot asks), retired edges
forgotten; and alert snapshots read back wherever their path says they are."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from storage import Store
from storage.models import DeliveryKind, Edge, SNAPSHOT_MAX_BYTES

KITCHEN = {"camera": "site-a/kitchen", "running": True, "health": "ok", "fps": 9.5, "frames": 120,
           "open_alerts": 1, "error": None, "state": "live", "since": None, "last_frame": None, "zones": 0}


def _gone(edge: Edge, now) -> str:  # type: ignore[no-untyped-def]
    return f"gone {edge.name} {[c['camera'] for c in edge.cameras]}"


def _back(edge: Edge, now) -> str:  # type: ignore[no-untyped-def]
    return f"back {edge.name}"


def _texts(store: Store) -> list[tuple[int, str]]:
    return [(d.chat_id, d.text) for d in store.deliveries() if d.kind is DeliveryKind.TEXT]


def test_a_beat_keeps_the_edge_and_its_cameras_on_the_database_clock(store: Store, db_url: str) -> None:
    first = store.beat("site-b", [], started_at=None)
    store.beat("site-a", [KITCHEN])
    again = store.beat("site-b", [{**KITCHEN, "camera": "site-b/yard"}])
    now, edges = store.edges()
    assert [e.name for e in edges] == ["site-a", "site-b"]
    a, b = edges
    assert a.cameras == [KITCHEN] and b.cameras[0]["camera"] == "site-b/yard"
    assert b.started_at == first.started_at  # a later beat of the same run keeps its start
    assert first.last_seen <= again.last_seen == b.last_seen <= now
    assert now.tzinfo is not None and (now - b.last_seen) < timedelta(minutes=1)
    assert b.quiet_since is None

    other = Store(db_url)  # the bot, another process
    try:
        assert [e.name for e in other.edges()[1]] == ["site-a", "site-b"]
    finally:
        other.close()


def test_silence_and_return_are_told_once_to_every_chat(store: Store, db_url: str) -> None:
    for chat in (11, 22):
        store.add_chat(chat)
    store.beat("site-a", [KITCHEN])
    store.beat("site-b", [])

    # Nothing has been silent for an hour.
    assert store.note_edge_changes(timedelta(hours=1), gone=_gone, back=_back) == ([], [])
    # A bot that cannot judge silence now (the database was just away) asks for returns only.
    assert store.note_edge_changes(timedelta(0), gone=None, back=_back) == ([], [])
    # Silent "for no time at all": both are past it, and told once.
    assert store.note_edge_changes(timedelta(0), gone=_gone, back=_back) == (["site-a", "site-b"], [])
    second_bot = Store(db_url)
    try:
        assert second_bot.note_edge_changes(timedelta(0), gone=_gone, back=_back) == ([], [])
    finally:
        second_bot.close()
    assert _texts(store) == [(11, "gone site-a ['site-a/kitchen']"), (22, "gone site-a ['site-a/kitchen']"),
                             (11, "gone site-b []"), (22, "gone site-b []")]
    quiet = {e.name: e.quiet_since for e in store.edges()[1]}
    assert all(quiet.values())

    store.beat("site-a", [KITCHEN])  # site-a is back; site-b stays silent
    assert store.note_edge_changes(timedelta(hours=1), gone=_gone, back=_back) == ([], ["site-a"])
    assert store.note_edge_changes(timedelta(hours=1), gone=_gone, back=_back) == ([], [])
    assert _texts(store)[4:] == [(11, "back site-a"), (22, "back site-a")]
    assert {e.name: e.quiet_since is None for e in store.edges()[1]} == {"site-a": True, "site-b": False}


def test_a_retired_edge_is_forgotten_and_its_open_alerts_cleared(store: Store) -> None:
    store.add_chat(11)
    seen = datetime.now(timezone.utc)
    opened = {camera: store.record_alert(camera=camera, track_id=1, class_name="fire", severity=None,
                                         confidence=0.9, area=0.1, snapshot_path=None, seen_at=seen, push=True).id
              for camera in ("old_barn/yard", "old_barn2/yard", "old%barn/yard", "yard")}
    store.beat("old_barn", [])
    store.beat("old%barn", [])
    assert store.forget_edge("old_barn") is True
    assert store.forget_edge("old_barn") is False
    assert [e.name for e in store.edges()[1]] == ["old%barn"]
    # Only its own cameras' alerts: "_" and "%" in a name are not wildcards.
    cleared = {camera for camera, alert_id in opened.items() if store.get_alert(alert_id).cleared_at is not None}  # type: ignore[union-attr]
    assert cleared == {"old_barn/yard"}
    assert [d.kind for d in store.deliveries(opened["old_barn/yard"])] == [DeliveryKind.ALERT, DeliveryKind.ALERT_STATE]


def test_snapshots_are_read_from_the_database_or_a_file(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    jpeg = b"\xff\xd8" + bytes(range(256)) * 40 + b"\xff\xd9"
    ref = store.save_snapshot(jpeg)
    assert ref.startswith("db:snapshot/")
    assert store.read_snapshot(ref) == jpeg
    on_disk = tmp_path / "snap.jpg"
    on_disk.write_bytes(jpeg[::-1])
    assert store.read_snapshot(str(on_disk)) == jpeg[::-1]
    assert store.read_snapshot(str(tmp_path / "gone.jpg")) is None
    assert store.read_snapshot("db:snapshot/999999") is None
    assert store.read_snapshot(None) is None
    try:
        store.save_snapshot(b"\0" * (SNAPSHOT_MAX_BYTES + 1))
    except ValueError as exc:
        assert "cap" in str(exc)
    else:
        raise AssertionError("an oversized snapshot was stored")
