"""Migration 0002 on a database written by 0001: deliveries gain their channel, alert
updates are renamed for what changed, sent message ids are kept, and the one-message-per-
alert rule holds per channel."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage import Store, upgrade
from storage.models import CHAT_CHANNEL, DeliveryKind

_ROW = ("INSERT INTO deliveries (alert_id, chat_id, kind, text, status, attempts, next_attempt_at, "
        "created_at{extra}) VALUES (:alert, :chat, :kind, '', :status, 0, '2026-01-01', '2026-01-01'{values})")


def _delivery(conn, alert: int, chat: int, kind: str, status: str = "pending", **columns: object) -> None:  # type: ignore[no-untyped-def]
    extra = "".join(f", {name}" for name in columns)
    values = "".join(f", :{name}" for name in columns)
    conn.execute(text(_ROW.format(extra=extra, values=values)),
                 {"alert": alert, "chat": chat, "kind": kind, "status": status, **columns})


def test_0002_gives_old_deliveries_the_telegram_channel_and_neutral_kinds(blank_url: str) -> None:
    url = blank_url
    upgrade(url, "0001")
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO alerts (id, camera, track_id, class_name, first_seen, last_seen, peak_confidence, "
            "peak_area, status, pushed) VALUES (1, 'yard', 3, 'fire', '2026-01-01', '2026-01-01', 0.9, 0.1, "
            "'new', true)"))
        _delivery(conn, 1, 42, "alert", "sent", telegram_message_id=777)
        _delivery(conn, 1, 42, "alert-photo")
        _delivery(conn, 1, 42, "alert-caption")
    store.close()

    upgrade(url)
    store = Store(url)
    rows = store.deliveries(1)
    assert [(d.channel, d.kind) for d in rows] == [
        (CHAT_CHANNEL, DeliveryKind.ALERT), (CHAT_CHANNEL, DeliveryKind.ALERT_SNAPSHOT),
        (CHAT_CHANNEL, DeliveryKind.ALERT_STATE)]
    assert store.alert_message_id(1, 42) == 777

    with store.engine.begin() as conn:
        _delivery(conn, 1, 42, "alert", channel="mqtt")  # another channel's recipient 42: its own message
    with store.engine.begin() as conn, pytest.raises(IntegrityError):
        _delivery(conn, 1, 42, "alert", channel=CHAT_CHANNEL)
    assert store.alert_message_id(1, 42, channel="mqtt") is None

    # An update reaches every channel that carries the alert, once per pending update.
    store.clear_alert(1, datetime(2026, 1, 2, tzinfo=timezone.utc))
    updates = [(d.channel, d.kind) for d in store.deliveries(1)][3:]
    assert updates == [("mqtt", DeliveryKind.ALERT), ("mqtt", DeliveryKind.ALERT_STATE)]
    store.close()
