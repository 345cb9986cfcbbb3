"""From pipeline events to stored alerts and queued deliveries (bot/alerts.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from bot.alerts import AlertRecorder
from bot.queries import parse_history_args
from bot.outbox import caption_of
from bot.render import parse_alert_button
from storage import Store, upgrade
from storage.models import AlertStatus, DeliveryKind
from vision.types import FireEvent, HealthEvent


@pytest.fixture
def store(tmp_path) -> Store:
    url = f"sqlite:///{tmp_path / 'fw.db'}"
    upgrade(url)
    s = Store(url)
    s.add_chat(11)
    s.add_chat(-100)
    yield s
    s.close()


def fire(kind: str, track: int = 7, severity: str | None = "start-fire", conf: float = 0.6,
         area: float = 0.01, snapshot: str | None = None, camera: str = "yard") -> FireEvent:
    return FireEvent(kind=kind, camera=camera, track_id=track, class_name="fire", severity=severity,
                     confidence=conf, box=(10, 10, 50, 50), area_fraction=area, frame=3, t=0.3,
                     wall=time.time(), snapshot=snapshot)


def test_started_updated_cleared_make_one_alert_and_its_edits(store: Store) -> None:
    rec = AlertRecorder(store, can_push=True)
    started = rec.record(fire("started", snapshot="/s/1.jpg"))
    assert started.queued
    rec.record(fire("updated", severity="fire", conf=0.9, area=0.05, snapshot="/s/2.jpg"))
    rec.record(fire("cleared"))
    alerts, total = store.recent_alerts()
    assert total == 1
    a = alerts[0]
    assert (a.severity, a.peak_confidence, a.peak_area, a.snapshot_path) == ("fire", 0.9, 0.05, "/s/2.jpg")
    assert a.status is AlertStatus.CLEARED and a.cleared_at is not None
    kinds = [(d.chat_id, d.kind) for d in store.deliveries(a.id)]
    assert kinds[:2] == [(11, DeliveryKind.ALERT), (-100, DeliveryKind.ALERT)]
    assert sorted(k for _, k in kinds[2:]) == [DeliveryKind.ALERT_SNAPSHOT] * 2  # covers the clear too


def test_the_alert_keeps_why_it_was_confirmed(store: Store) -> None:
    why = {"verified": True, "score": 0.997, "reason": "moves like fire: flicker 2 %", "features": {"flicker": 0.02}}
    rec = AlertRecorder(store, can_push=True)
    result = rec.record(replace(fire("started"), verification=why))
    assert store.get_alert(result.alert_id).verification == why  # type: ignore[union-attr]


def test_two_tracks_are_two_alerts(store: Store) -> None:
    rec = AlertRecorder(store, can_push=True)
    rec.record(fire("started", track=1))
    rec.record(fire("started", track=2))
    assert store.recent_alerts()[1] == 2


def test_disarmed_or_snoozed_or_tokenless_records_without_pushing(store: Store) -> None:
    rec = AlertRecorder(store, can_push=False)
    rec.record(fire("started", track=1))
    rec.record(fire("cleared", track=1))
    rec.can_push = True
    store.set_armed(False, user_id=5, method="cli")
    rec.record(fire("started", track=2))
    rec.record(fire("cleared", track=2))
    store.set_armed(True, user_id=5, method="cli")
    store.snooze("yard", datetime.now(timezone.utc) + timedelta(minutes=30), 5)
    rec.record(fire("started", track=3))
    rec.record(fire("started", track=4, camera="gate"))  # another camera is not snoozed
    alerts, total = store.recent_alerts()
    assert total == 4
    pushed = {a.track_id: a.pushed for a in alerts}
    assert pushed == {1: False, 2: False, 3: False, 4: True}
    assert [d.alert_id for d in store.deliveries()] == [alerts[0].id] * 2


def test_arming_and_a_snooze_end_push_the_fires_still_open(store: Store) -> None:
    rec = AlertRecorder(store, can_push=True)
    store.set_armed(False, user_id=5, method="cli")
    burning = rec.record(fire("started", track=1)).alert_id
    out = rec.record(fire("started", track=2)).alert_id
    rec.record(fire("cleared", track=2))
    assert store.deliveries() == []
    store.set_armed(True, user_id=5, method="cli")
    assert [(d.alert_id, d.kind) for d in store.deliveries()] == [(burning, DeliveryKind.ALERT)] * 2
    assert not store.get_alert(out).pushed  # over before anyone could act: history only
    store.snooze("yard", datetime.now(timezone.utc) + timedelta(minutes=30), 5, alert_id=burning,
                 notice="snoozed")
    quiet = rec.record(fire("started", track=3)).alert_id
    assert not store.get_alert(quiet).pushed
    assert store.end_snooze("yard", None, notice="over") is not None
    assert store.get_alert(quiet).pushed
    assert [a.action for a in store.alert_actions(burning)] == ["snoozed", "snooze-ended"]
    texts = [d.text for d in store.deliveries() if d.kind is DeliveryKind.TEXT]
    assert texts == ["snoozed"] * 2 + ["over"] * 2


def test_a_restart_carries_open_alerts_and_clears_them_only_after_looking(store: Store) -> None:
    first = AlertRecorder(store, can_push=True)
    burning = first.record(fire("started", track=1)).alert_id
    gone = first.record(fire("started", track=2, camera="gate")).alert_id
    fresh = AlertRecorder(store, can_push=True, clear_after_s=0.2)
    assert fresh.record(fire("updated", track=1)).alert_id is None  # track ids restart with the process
    # The fire still burns: the new track continues the alert, no second one.
    assert fresh.record(fire("started", track=9)).alert_id == burning
    assert store.recent_alerts()[1] == 2
    assert not fresh.expire_carried({"gate": False})  # not looking yet: nothing is declared out
    time.sleep(0.3)
    assert not fresh.expire_carried({"gate": True})  # looking from now on
    assert store.get_alert(gone).cleared_at is None
    time.sleep(0.3)
    assert fresh.expire_carried({"gate": True})
    assert store.get_alert(gone).status is AlertStatus.CLEARED
    assert store.get_alert(burning).cleared_at is None


def test_health_events_are_stored_and_pushed_when_armed(store: Store) -> None:
    rec = AlertRecorder(store, can_push=True)
    rec.record(HealthEvent(camera="yard", kind="lost", t=1.0, wall=time.time(), detail="no frames <b>"))
    assert [e.kind for e in store.camera_events("yard")] == ["lost"]
    texts = [d.text for d in store.deliveries()]
    assert len(texts) == 2 and "lost" in texts[0] and "&lt;b&gt;" in texts[0]  # escaped HTML


def test_caption_and_buttons(store: Store) -> None:
    rec = AlertRecorder(store, can_push=True)
    alert_id = rec.record(fire("started", conf=0.87)).alert_id
    store.add_operator(11, "Ann")
    alert = store.set_alert_status(alert_id, AlertStatus.FALSE_ALARM, 11)
    caption = caption_of(store, alert)
    assert "<b>STARTING FIRE</b> on" in caption and "start-fire" not in caption and "yard" in caption and "87%" in caption
    assert f"Alert #{alert_id}" in caption and "false alarm by Ann" in caption
    assert parse_alert_button(f"ack:{alert_id}") == ("ack", alert_id)
    for forged in ["ack:", "ack:-1", "ack:1:2", "rm:1", "ack:１", None, "ack:" + "9" * 20]:
        assert parse_alert_button(forged) is None


@pytest.mark.parametrize(("args", "expected"), [
    ([], (200, None, None)),
    (["5"], (5, None, None)),
    (["24h", "fire"], (200, timedelta(hours=24), "fire")),
    (["smoke", "7d"], (200, timedelta(days=7), "smoke")),
])
def test_history_arguments(args, expected) -> None:  # type: ignore[no-untyped-def]
    assert parse_history_args(args) == expected


@pytest.mark.parametrize("args", [["-5"], ["0"], ["99999999999"], ["abc"], ["５"], ["1", "2", "3"], ["24y"]])
def test_bad_history_arguments_are_refused(args) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        parse_history_args(args)


def test_the_recorder_is_a_sink_of_the_pipeline(store: Store, tmp_path) -> None:
    """Headless, the pipeline publishes straight to the recorder: each fire it confirms is
    one alert with its first photos queued, closed when the fire is gone."""
    from tests.support.data import FIRE2, fire_free_cctv, link_sequence
    from tests.support.doubles import LabelDetector
    from vision.events import EventConfig
    from vision.pipeline import Pipeline
    from vision.sinks import CallbackSink
    from vision.sources import ImageFolderSource

    images = FIRE2[:40] + fire_free_cctv(20)
    seen: list = []
    Pipeline(ImageFolderSource(link_sequence(tmp_path / "frames", images), fps=10), LabelDetector(images),
             camera="yard", event_config=EventConfig(clear_after_s=1.0),
             sinks=[AlertRecorder(store, can_push=True), CallbackSink(seen.append)]).run()
    started = [e for e in seen if isinstance(e, FireEvent) and e.kind == "started"]
    alerts, total = store.recent_alerts(limit=10)
    assert total == len(started) > 0
    assert all(a.camera == "yard" and a.cleared_at is not None for a in alerts)
    first = [d for a in alerts for d in store.deliveries(a.id) if d.kind is DeliveryKind.ALERT]
    assert sorted(d.chat_id for d in first) == sorted([11, -100] * total)
