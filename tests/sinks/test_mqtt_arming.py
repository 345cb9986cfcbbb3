"""Arming over MQTT against a real Mosquitto and a real paho client publishing the commands:
ignored unless enabled; when enabled, a switch in Home Assistant's discovery, and each change
in the arm/disarm audit (method "mqtt") with where it came from."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from sinks.mqtt import Broker, MqttPublisher, MqttSettings
from sinks.mqtt_arming import StoreArming, parse_command
from sinks.mqtt_topics import Topics
from storage import Store, upgrade
from tests.support.servers import MqttBroker

WHO = "firewatch/arm_state/set on mqtt://127.0.0.1, client fw-test"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'fw.db'}"
    upgrade(url)
    s = Store(url)
    s.add_chat(11)
    yield s
    s.close()


def publisher_for(broker: MqttBroker, prefix: str, store: Store, *, arming: bool) -> MqttPublisher:
    """Started; once ``online`` is heard, so are commands (it subscribes before saying it)."""
    settings = MqttSettings(broker=Broker(broker.host, broker.port),
                            topics=Topics(prefix=prefix, discovery_prefix=f"ha-{prefix}"),
                            client_id=f"firewatch-{prefix}", arm_poll_s=0.05, arming=arming)
    publisher = MqttPublisher(settings, ["gate"], armed=lambda: store.arm_state().armed,
                              arm=StoreArming(store, WHO, timedelta(hours=8)))
    publisher.start()
    return publisher


def send(client: mqtt.Client, topic: str, payload: str) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(10)


def wait_until(predicate, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_commands_are_ignored_unless_arming_is_enabled(mqtt_broker: MqttBroker, listen, store: Store,  # type: ignore[no-untyped-def]
                                                       commander: mqtt.Client) -> None:
    prefix = "fwa1"
    live = listen(f"{prefix}/#", f"ha-{prefix}/#")
    publisher = publisher_for(mqtt_broker, prefix, store, arming=False)
    try:
        assert live.last(f"{prefix}/status")[0] == b"online"
        assert live.last(f"{prefix}/arm_state")[0] == b"armed"
        send(commander, f"{prefix}/arm_state/set", "DISARM")
        # The sensor's discovery is retained after the switch's removal: once it is in, so
        # would a disarm be, had it been heard.
        live.last(f"ha-{prefix}/sensor/{prefix}_arm_state/config")
        time.sleep(0.5)
        assert store.arm_state().armed and store.audit_log() == []
        assert f"ha-{prefix}/switch/{prefix}_armed/config" not in live.got or \
            live.last(f"ha-{prefix}/switch/{prefix}_armed/config")[0] == b""  # no switch offered
    finally:
        publisher.stop()


def test_enabled_arming_is_a_switch_and_every_change_is_audited(mqtt_broker: MqttBroker, listen,  # type: ignore[no-untyped-def]
                                                                store: Store, commander: mqtt.Client) -> None:
    prefix = "fwa2"
    live = listen(f"{prefix}/#", f"ha-{prefix}/#")
    publisher = publisher_for(mqtt_broker, prefix, store, arming=True)
    try:
        assert live.last(f"{prefix}/status")[0] == b"online"
        switch = json.loads(live.last(f"ha-{prefix}/switch/{prefix}_armed/config")[0])
        assert (switch["command_topic"], switch["state_topic"]) == (f"{prefix}/arm_state/set", f"{prefix}/arm_state")
        assert (switch["payload_on"], switch["payload_off"], switch["state_on"], switch["state_off"]) == (
            "ARM", "DISARM", "armed", "disarmed")

        send(commander, f"{prefix}/arm_state/set", "DISARM")
        wait_until(lambda: not store.arm_state().armed)
        assert live.wait(f"{prefix}/arm_state", lambda m: m[-1][0] == b"disarmed")
        state = store.arm_state()
        assert state.rearm_at is not None  # re-arms by itself, like a selfie disarm
        (entry,) = store.audit_log()
        assert (entry.action, entry.method, entry.success, entry.telegram_user_id, entry.detail) == (
            "disarm", "mqtt", True, None, WHO)

        send(commander, f"{prefix}/arm_state/set", "disarm")  # QoS 1 may repeat: no change, no audit
        send(commander, f"{prefix}/arm_state/set", "open sesame")  # not a command
        send(commander, f"{prefix}/arm_state/set", " ARM ")
        wait_until(lambda: store.arm_state().armed)
        assert [(e.action, e.method) for e in store.audit_log()] == [("arm", "mqtt"), ("disarm", "mqtt")]
        notices = [d.text for d in store.deliveries() if d.chat_id == 11]
        assert len(notices) == 2 and "Disarmed from MQTT" in notices[0] and "Armed from MQTT" in notices[1]
    finally:
        publisher.stop()


def test_command_words() -> None:
    assert (parse_command(b"ARM"), parse_command(b" disarm\n"), parse_command(b"on"), parse_command(b"\xff")) == (
        True, False, None, None)


def test_the_daemon_settings_turn_arming_on_and_name_the_client_not_the_password(  # type: ignore[no-untyped-def]
        mqtt_broker: MqttBroker, listen, store: Store, commander: mqtt.Client) -> None:
    from firewatch.config import load_settings
    from firewatch.wiring import mqtt_publisher

    url = f"mqtt://ha:broker-s3cret@{mqtt_broker.host}:{mqtt_broker.port}"
    off = mqtt_publisher(load_settings(env_file=None, mqtt_url=url), store)
    assert off is not None and not off.settings.arming  # FIREWATCH_MQTT_ARMING defaults to false
    settings = load_settings(env_file=None, mqtt_url=url, mqtt_topic_prefix="fwa3", mqtt_arming=True)
    live = listen("fwa3/#")
    publisher = mqtt_publisher(settings, store)
    assert publisher is not None and publisher.settings.arming
    publisher.start()
    try:
        assert live.last("fwa3/status")[0] == b"online"
        send(commander, "fwa3/arm_state/set", "DISARM")
        wait_until(lambda: not store.arm_state().armed)
        (entry,) = store.audit_log()
        assert entry.method == "mqtt" and publisher.settings.client_id in entry.detail and "user ha" in entry.detail
        assert "broker-s3cret" not in entry.detail
        assert all("broker-s3cret" not in d.text for d in store.deliveries())
    finally:
        publisher.stop()
