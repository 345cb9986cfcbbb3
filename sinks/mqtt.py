"""The MQTT sink: fire events, camera health, the arm state and the latest snapshot, for
Home Assistant (discovery included) or anything else on the broker.

State topics are retained, so a subscriber that comes later sees the present at once; events
are QoS 1. Everything retained is also kept here and sent again on every (re)connect, so a
broker that restarted without persistence is brought up to date. The broker publishes
``offline`` on the status topic (the last will) when this process dies without saying
goodbye. A broker that is down never holds up detection: paho connects and reconnects in its
own thread, and ``publish`` only queues.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from sinks.mqtt_arming import parse_command
from sinks.mqtt_topics import (
    ARMED, CLASSES, DISARMED, OFF, OFFLINE, ON, ONLINE, Topics, camera_discovery, system_discovery,
)
from vision.types import Event, FireEvent, HealthEvent

log = logging.getLogger(__name__)

QOS = 1
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
MAX_QUEUED = 1000  # messages held while the broker is away; older state is re-sent anyway


@dataclass(frozen=True)
class Broker:
    """Where to connect, from ``mqtt://[user:password@]host[:port]`` (``mqtts://``: TLS)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Broker:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("an MQTT broker URL looks like mqtt://[user:password@]host[:port] (or mqtts://)")
        return cls(host=parts.hostname, port=parts.port or DEFAULT_PORTS[parts.scheme],
                   tls=parts.scheme == "mqtts",
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)

    def __str__(self) -> str:  # what logs may show: never the credentials
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class MqttSettings:
    broker: Broker
    topics: Topics = Topics()
    client_id: str = "firewatch"
    snapshot_max_bytes: int = 1_000_000  # a retained message every subscriber receives on connect
    arm_poll_s: float = 5.0
    keepalive_s: int = 30
    # Hear ARM / DISARM on <prefix>/arm_state/set (sinks/mqtt_arming.py): off unless enabled.
    arming: bool = False


class MqttPublisher:
    """A sink (``publish``) that mirrors events and state to an MQTT broker."""

    def __init__(self, settings: MqttSettings, cameras: Sequence[str],
                 armed: Callable[[], bool] | None = None,
                 arm: Callable[[bool], bool] | None = None) -> None:
        """``armed`` reads the arm state; ``arm`` sets it (True if it changed), for commands
        heard when ``settings.arming`` is on."""
        self.settings = settings
        self.topics = settings.topics
        self._armed = armed
        self._arm = arm if settings.arming else None
        self._lock = threading.Lock()
        self._retained: dict[str, bytes] = {}  # topic -> payload, re-sent on every connect
        self._open: dict[tuple[str, str], set[int]] = {}  # (camera, class) -> open alerts' tracks
        self._cameras: set[str] = set()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        # Arm commands, applied one at a time in the order heard, off paho's network thread
        # (the database may be slow or away): a repeat then finds the state it asks for.
        self._commands: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._commander: threading.Thread | None = None
        self._retain_all(system_discovery(self.topics, arming=self._arm is not None))
        for camera in cameras:
            self._add_camera(camera)
        self._client = self._make_client()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (a broker that is down is retried, never waited for)."""
        broker = self.settings.broker
        self._client.connect_async(broker.host, broker.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()
        if self._armed is not None:
            self._poller = threading.Thread(target=self._poll_arm_state, name="mqtt-arm-state", daemon=True)
            self._poller.start()
        if self._arm is not None:
            self._commander = threading.Thread(target=self._apply_commands, name="mqtt-arm", daemon=True)
            self._commander.start()
        log.info("MQTT: publishing to %s under %s/", broker, self.topics.prefix)

    def stop(self, timeout_s: float = 3.0) -> None:
        """Say ``offline`` (a clean disconnect does not fire the last will), then disconnect."""
        self._stop.set()
        if self._client.is_connected():
            info = self._client.publish(self.topics.status, OFFLINE, qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._commands.put(None)
        for thread in (self._poller, self._commander):
            if thread is not None:
                thread.join(timeout_s)

    # -- the sink --------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        self._add_camera(event.camera)
        if isinstance(event, FireEvent):
            self._fire(event)
        elif isinstance(event, HealthEvent):
            self._retain(self.topics.camera(event.camera, "health"), event.to_json().encode())

    def set_armed(self, armed: bool) -> None:
        self._retain(self.topics.arm_state, (ARMED if armed else DISARMED).encode())

    def _fire(self, event: FireEvent) -> None:
        self._send(self.topics.camera(event.camera, "event"), event.to_json().encode(), retain=False)
        if event.snapshot and event.kind != "cleared":
            self._snapshot(event.camera, Path(event.snapshot))
        key = (event.camera, event.class_name)
        with self._lock:
            tracks = self._open.setdefault(key, set())
            was_on = bool(tracks)
            (tracks.discard if event.kind == "cleared" else tracks.add)(event.track_id)
            now_on = bool(tracks)
        if now_on != was_on and event.class_name in CLASSES:
            self._retain(self.topics.camera(event.camera, event.class_name), (ON if now_on else OFF).encode())

    def _snapshot(self, camera: str, path: Path) -> None:
        try:
            size = path.stat().st_size
            if size > self.settings.snapshot_max_bytes:
                log.warning("MQTT: snapshot %s is %d bytes, over the %d-byte cap: not published",
                            path.name, size, self.settings.snapshot_max_bytes)
                return
            self._retain(self.topics.camera(camera, "snapshot"), path.read_bytes())
        except OSError as exc:  # written by another thread that failed (disk full): skip it
            log.warning("MQTT: snapshot %s unreadable: %s", path.name, exc)

    # -- retained state ------------------------------------------------------------------

    def _add_camera(self, camera: str) -> None:
        with self._lock:
            if camera in self._cameras:
                return
            self._cameras.add(camera)
        self._retain_all(camera_discovery(self.topics, camera))
        for cls in CLASSES:
            self._retain(self.topics.camera(camera, cls), OFF.encode())

    def _retain_all(self, configs: list[tuple[str, dict | None]]) -> None:
        for topic, config in configs:
            # An empty retained payload: Home Assistant removes the entity, the broker the message.
            self._retain(topic, json.dumps(config).encode() if config is not None else b"")

    def _retain(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self._retained[topic] = payload
        self._send(topic, payload, retain=True)

    def _send(self, topic: str, payload: bytes, *, retain: bool) -> None:
        client = getattr(self, "_client", None)
        if client is None or not client.is_connected():
            return  # retained state goes out on connect; a lone event while away is dropped
        client.publish(topic, payload, qos=QOS, retain=retain)

    # -- the broker connection -----------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        broker = self.settings.broker
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                             client_id=self.settings.client_id, protocol=mqtt.MQTTv311)
        if broker.username:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            client.tls_set()
        client.will_set(self.topics.status, OFFLINE, qos=QOS, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object,
                    reason: mqtt.ReasonCode, _properties: object) -> None:
        if reason.is_failure:
            log.warning("MQTT: %s refused the connection: %s", self.settings.broker, reason)
            return
        log.info("MQTT: connected to %s", self.settings.broker)
        client.subscribe(self.topics.ha_status, qos=QOS)
        if self._arm is not None:
            client.subscribe(self.topics.arm_command, qos=QOS)
        client.publish(self.topics.status, ONLINE, qos=QOS, retain=True)
        self._resend_retained(client)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object,
                       reason: mqtt.ReasonCode, _properties: object) -> None:
        if not self._stop.is_set():
            log.warning("MQTT: lost %s (%s); reconnecting", self.settings.broker, reason)

    def _on_message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        # Home Assistant restarted: it forgets discovered entities unless told again.
        if message.topic == self.topics.ha_status and message.payload == ONLINE.encode():
            self._resend_retained(client)
        elif message.topic == self.topics.arm_command and self._arm is not None:
            self._commands.put(message.payload)

    def _apply_commands(self) -> None:
        while (payload := self._commands.get()) is not None:
            self._arm_command(payload)

    def _arm_command(self, payload: bytes) -> None:
        armed = parse_command(payload)
        if armed is None:
            log.warning("MQTT: ignored %r on %s (ARM or DISARM expected)", payload[:40], self.topics.arm_command)
            return
        try:
            self._arm(armed)  # type: ignore[misc]
        except Exception as exc:  # the database is away: the switch goes back to the state unchanged
            log.warning("MQTT: could not %s: %s", "arm" if armed else "disarm", type(exc).__name__)
            with self._lock:
                unchanged = self._retained.get(self.topics.arm_state)
            if unchanged is not None:
                self._send(self.topics.arm_state, unchanged, retain=True)
            return
        self.set_armed(armed)

    def _resend_retained(self, client: mqtt.Client) -> None:
        with self._lock:
            retained = list(self._retained.items())
        for topic, payload in retained:
            client.publish(topic, payload, qos=QOS, retain=True)

    def _poll_arm_state(self) -> None:
        last: bool | None = None
        while not self._stop.is_set():
            try:
                armed = self._armed()  # type: ignore[misc]
            except Exception:  # the database is away: keep the last state published
                log.debug("MQTT: arm state unavailable", exc_info=True)
            else:
                if armed != last:
                    self.set_armed(armed)
                    last = armed
            self._stop.wait(self.settings.arm_poll_s)
