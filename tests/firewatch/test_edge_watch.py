"""The bot's watch on a fleet's edges (the JobQueue job): silence told once, a return told once,
and no edge reported silent just because the database itself was away."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from bot.fleet import watch_edges
from storage import Store, upgrade
from storage.models import DeliveryKind
from tests.support.servers import free_port

QUIET_AFTER_S = 0.3
CHAT = 77


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'fw.db'}"
    upgrade(url)
    s = Store(url)
    s.add_chat(CHAT)
    yield s
    s.close()


def watch(context: SimpleNamespace, store: Store) -> None:
    context.bot_data["services"] = SimpleNamespace(
        store=store, outbox=None, settings=SimpleNamespace(edge_quiet_after_s=QUIET_AFTER_S))
    asyncio.run(watch_edges(context))  # type: ignore[arg-type]


def told(store: Store) -> list[str]:
    return [d.text.split(" (")[0].split(" has not")[0] for d in store.deliveries()
            if d.kind is DeliveryKind.TEXT and d.chat_id == CHAT]


def test_silence_and_return_are_told_once_and_not_after_a_database_outage(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    context = SimpleNamespace(bot_data={})
    store.beat("site-a", [{"camera": "site-a/yard"}])
    time.sleep(QUIET_AFTER_S * 1.5)  # site-a is now silent for longer than QUIET_AFTER_S

    unreachable = Store(f"postgresql+psycopg://firewatch@127.0.0.1:{free_port()}/none?connect_timeout=2")
    with caplog.at_level(logging.WARNING, logger="bot.fleet"):
        watch(context, unreachable)
        watch(context, unreachable)
    unreachable.close()
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "edge watch: the database cannot be reached"]
    # Back on the database at once: the edges had no chance to check in, none is called silent.
    watch(context, store)
    assert told(store) == []

    time.sleep(QUIET_AFTER_S * 1.1)  # the database has been back long enough: now it counts
    watch(context, store)
    watch(context, store)
    assert told(store) == ["🛰⚠️ Edge <b>site-a</b>"]
    store.beat("site-a", [{"camera": "site-a/yard"}])
    watch(context, store)
    watch(context, store)
    assert told(store) == ["🛰⚠️ Edge <b>site-a</b>", "🛰✅ Edge <b>site-a</b> is checking in again"]
