"""Claiming several of the outbox's due deliveries at once, and recording what was sent in the
same transaction: one per recipient, oldest first, each recipient's messages in order, never
one delivery to two senders. On SQLite and PostgreSQL (tests/storage/conftest.py)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from storage import Store
from storage.models import DeliveryStatus
from storage.repository import SentDelivery


def sent(*ids: int) -> list[SentDelivery]:
    return [SentDelivery(i, 1000 + i, datetime.now(timezone.utc)) for i in ids]


def test_a_claim_takes_each_recipients_oldest_due_delivery_up_to_the_limit(store: Store) -> None:
    a1, b1, c1, a2, b2, c2 = store.queue_text([1, 2, 3], "x") + store.queue_text([1, 2, 3], "y")
    assert [d.id for d in store.claim_due(limit=2)] == [a1.id, b1.id]
    assert [d.id for d in store.claim_due(limit=5)] == [c1.id]  # 1 and 2 wait for theirs to settle
    assert all(d.status is DeliveryStatus.SENDING and d.attempts == 1 for d in store.deliveries()[:3])
    # Recording a1 sent lets its recipient's next go in the same transaction; b1 still holds 2.
    assert [d.id for d in store.claim_due(limit=5, sent=sent(a1.id))] == [a2.id]
    record = {d.id: d for d in store.deliveries()}
    assert (record[a1.id].status, record[a1.id].message_id) == (DeliveryStatus.SENT, 1000 + a1.id)
    assert record[a1.id].sent_at is not None
    assert store.claim_due(limit=0, sent=sent(b1.id, c1.id)) == []  # only records
    assert [d.id for d in store.claim_due(limit=5)] == [b2.id, c2.id]


def test_a_retry_waiting_holds_its_recipient_out_of_a_claim(store: Store) -> None:
    a1, b1 = store.queue_text([1, 2], "x")
    (a2,) = store.queue_text([1], "y")
    store.claim_due(limit=5)
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    store.mark_retry(a1.id, "502", later)
    assert store.claim_due(limit=5, sent=sent(b1.id)) == []  # a2 waits behind a1's retry
    assert [d.id for d in store.claim_due(limit=5, now=later)] == [a1.id]
    assert store.claim_due(channel="mqtt", limit=5, now=later, sent=sent(a1.id)) == []
    assert [d.id for d in store.claim_due(limit=5, now=later)] == [a2.id]


def test_two_senders_claiming_several_at_once_never_take_one_delivery_or_reorder_a_chat(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("two senders at once: PostgreSQL's row locks")
    pg_url = db_url
    setup = Store(pg_url)
    queued = [d.id for n in range(6) for d in setup.queue_text(range(12), f"message {n}")]
    setup.close()
    taken: dict[str, list[int]] = {"a": [], "b": []}
    order: dict[int, list[int]] = defaultdict(list)  # chat -> ids in the order they were claimed
    lock = threading.Lock()
    start = threading.Barrier(2)

    def sender(name: str) -> None:
        store = Store(pg_url)  # an engine of its own, as in another process
        start.wait()
        done: list[int] = []
        while True:
            claimed = store.claim_due(limit=4, sent=sent(*done))
            with lock:
                taken[name] += [d.id for d in claimed]
                for d in claimed:
                    order[d.chat_id].append(d.id)
            done = [d.id for d in claimed]
            if not claimed and all(d.status is DeliveryStatus.SENT for d in store.deliveries()):
                break  # (none claimed while the other sender holds every chat's next: go on)
        store.close()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(sender, taken))
    assert Counter(taken["a"] + taken["b"]) == Counter(queued)  # each once
    assert taken["a"] and taken["b"] and all(ids == sorted(ids) for ids in order.values())
    with Store(pg_url).engine.connect() as conn:
        settled = conn.execute(text("SELECT DISTINCT status, attempts FROM deliveries")).all()
    assert settled == [("sent", 1)]
