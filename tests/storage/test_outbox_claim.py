"""Claiming the outbox's next delivery: oldest first, one recipient's messages in order, and
never one delivery to two senders (two bot processes on one PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from storage import Store
from storage.models import Delivery, DeliveryStatus


def claim_one(store: Store, channel: str | None = None, now: datetime | None = None) -> Delivery | None:
    """The oldest due delivery, claimed; None if none is due."""
    claimed = store.claim_due(channel, 1, now)
    return claimed[0] if claimed else None


def test_claims_oldest_first_and_holds_a_recipient_until_its_earlier_message_settles(store: Store) -> None:
    first, second = store.queue_text([1, 1], "x")
    (other,) = store.queue_text([2], "y")
    claimed = claim_one(store)
    assert (claimed.id, claimed.status, claimed.attempts) == (first.id, DeliveryStatus.SENDING, 1)
    assert claim_one(store).id == other.id  # chat 1's second waits for its first
    assert claim_one(store) is None
    store.mark_sent(first.id, 10)
    assert claim_one(store).id == second.id


def test_a_retry_waiting_holds_back_its_recipient_and_channels_are_apart(store: Store) -> None:
    (first,) = store.queue_text([1], "x")
    claim_one(store)
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    store.mark_retry(first.id, "502", later)
    store.queue_text([1], "y")
    assert claim_one(store) is None
    assert claim_one(store, channel="mqtt", now=later) is None
    assert claim_one(store, now=later).id == first.id


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL")
    return db_url


def test_a_row_locked_by_another_sender_is_skipped_not_waited_for(pg_url: str) -> None:
    store = Store(pg_url)
    first, second = store.queue_text([1, 2], "x")
    with store.engine.connect() as other_sender:
        other_sender.execute(text("SET lock_timeout = '5s'"))
        other_sender.execute(text("SELECT id FROM deliveries WHERE id = :id FOR UPDATE"), {"id": first.id})
        took = claim_one(store)  # would block (then fail) without SKIP LOCKED
        assert took.id == second.id
        other_sender.rollback()
    assert claim_one(store).id == first.id
    store.close()


def test_two_concurrent_senders_never_take_one_delivery(pg_url: str) -> None:
    setup = Store(pg_url)
    queued = [d.id for d in setup.queue_text(range(20), "x") + setup.queue_text(range(20), "y")
              + setup.queue_text(range(20), "z")]
    setup.close()
    taken: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def sender(name: str) -> None:
        store = Store(pg_url)  # an engine of its own, as in another process
        start.wait()
        while (d := claim_one(store)) is not None:
            taken[name].append(d.id)
            store.mark_sent(d.id, d.id)
        store.close()

    threads = [threading.Thread(target=sender, args=(name,)) for name in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    counts = Counter(taken["a"] + taken["b"])
    assert sorted(counts) == sorted(queued) and set(counts.values()) == {1}
    assert taken["a"] and taken["b"]  # both really sent
    check = Store(pg_url)
    assert {(d.status, d.attempts) for d in check.deliveries()} == {(DeliveryStatus.SENT, 1)}
    check.close()
