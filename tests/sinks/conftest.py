"""The MQTT tests' subscriber: a real paho client on the test broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import pytest

from tests.support.servers import MqttBroker


@dataclass
class Listener:
    """A subscriber to everything: each message's payload and retain flag, by topic."""

    client: mqtt.Client
    got: dict[str, list[tuple[bytes, bool]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.setdefault(message.topic, []).append((message.payload, bool(message.retain)))

    def last(self, topic: str, timeout: float = 10.0) -> tuple[bytes, bool]:
        return self.wait(topic, lambda messages: bool(messages), timeout)[-1]

    def wait(self, topic: str, done, timeout: float = 10.0) -> list[tuple[bytes, bool]]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                messages = list(self.got.get(topic, []))
            if done(messages):
                return messages
            time.sleep(0.02)
        raise AssertionError(f"{topic}: {messages!r}")


@pytest.fixture
def listen(mqtt_broker: MqttBroker) -> Iterator:  # type: ignore[type-arg]
    clients: list[mqtt.Client] = []

    def start(*patterns: str) -> Listener:
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        listener = Listener(client)
        client.on_message = listener.on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda *_: subscribed.set()
        client.connect(mqtt_broker.host, mqtt_broker.port)
        client.loop_start()
        client.subscribe([(p, 1) for p in patterns])
        assert subscribed.wait(10)
        clients.append(client)
        return listener

    yield start
    for client in clients:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def commander(mqtt_broker: MqttBroker) -> Iterator[mqtt.Client]:
    """Home Assistant's side: a client that publishes commands (and its own "online")."""
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    client.connect(mqtt_broker.host, mqtt_broker.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()
