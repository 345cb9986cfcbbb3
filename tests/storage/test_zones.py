"""Ignore zones added from Telegram: stored per camera with who and when, listed oldest
first, removed by id, and still there for the next Store on the same database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from storage import Store

KITCHEN_BOX = [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8], [0.1, 0.8]]
PORCH_BOX = [[0.6, 0.0], [1.0, 0.0], [1.0, 0.4], [0.6, 0.4]]


def test_zones_are_kept_per_camera_with_who_and_when(store: Store, db_url: str) -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    first = store.add_zone("kitchen", KITCHEN_BOX, created_by=1001, alert_id=7)
    porch = store.add_zone("porch", PORCH_BOX, created_by=None)
    second = store.add_zone("kitchen", PORCH_BOX, created_by=2002)
    assert first.id < porch.id < second.id

    kitchen = store.zones("kitchen")
    assert [z.id for z in kitchen] == [first.id, second.id]
    assert kitchen[0].points == KITCHEN_BOX
    assert (kitchen[0].created_by, kitchen[0].alert_id) == (1001, 7)
    assert (kitchen[1].created_by, kitchen[1].alert_id) == (2002, None)
    assert before <= kitchen[0].created_at <= datetime.now(timezone.utc)
    assert kitchen[0].created_at.tzinfo is not None
    assert [z.id for z in store.zones()] == [first.id, porch.id, second.id]
    assert store.zones("attic") == []

    reopened = Store(db_url)  # what a restarted daemon reads
    try:
        assert [(z.camera, z.points) for z in reopened.zones()] == [
            ("kitchen", KITCHEN_BOX), ("porch", PORCH_BOX), ("kitchen", PORCH_BOX)]
    finally:
        reopened.close()


def test_remove_zone_returns_what_it_deleted_once(store: Store) -> None:
    kept = store.add_zone("kitchen", KITCHEN_BOX, created_by=1001)
    gone = store.add_zone("kitchen", PORCH_BOX, created_by=1001, alert_id=3)

    removed = store.remove_zone(gone.id)
    assert removed is not None and (removed.id, removed.camera, removed.alert_id) == (gone.id, "kitchen", 3)
    assert [z.id for z in store.zones("kitchen")] == [kept.id]
    assert store.remove_zone(gone.id) is None  # a second press on a stale /zones button
    assert store.remove_zone(999_999) is None
    assert [z.id for z in store.zones()] == [kept.id]
