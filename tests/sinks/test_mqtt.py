"""The MQTT sink against a real Mosquitto, read by a real paho client: topics, payloads,
what is retained for a later subscriber, Home Assistant discovery, and the last will."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path


from sinks.mqtt import Broker, MqttPublisher, MqttSettings
from sinks.mqtt_topics import Topics
from tests.support.data import REPO
from tests.support.servers import MqttBroker
from vision.types import FireEvent, HealthEvent


def _settings(broker: MqttBroker, prefix: str) -> MqttSettings:
    return MqttSettings(broker=Broker(broker.host, broker.port),
                        topics=Topics(prefix=prefix, discovery_prefix=f"ha-{prefix}"),
                        client_id=f"firewatch-{prefix}", arm_poll_s=0.05)


def _fire(kind: str, track: int, cls: str = "fire", snapshot: str | None = None) -> FireEvent:
    return FireEvent(kind=kind, camera="site a/yard", track_id=track, class_name=cls,  # type: ignore[arg-type]
                     severity="fire" if cls == "fire" else None, confidence=0.8,
                     box=(1.0, 2.0, 30.0, 40.0), area_fraction=0.05, frame=7, t=0.7, wall=1.7e9,
                     snapshot=snapshot)


def test_events_state_snapshot_and_discovery(mqtt_broker: MqttBroker, listen, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prefix = "fw1"
    live = listen(f"{prefix}/#", f"ha-{prefix}/#")
    armed = [True]
    publisher = MqttPublisher(_settings(mqtt_broker, prefix), ["site a/yard"], armed=lambda: armed[0])
    publisher.start()
    cam = f"{prefix}/site_a/yard"
    assert live.last(f"{prefix}/status")[0] == b"online"
    assert live.last(f"{prefix}/arm_state")[0] == b"armed"
    assert live.last(f"{cam}/fire")[0] == b"OFF"

    jpeg = tmp_path / "alert.jpg"
    jpeg.write_bytes(b"\xff\xd8 a jpeg \xff\xd9")
    publisher.publish(_fire("started", 3, snapshot=str(jpeg)))
    publisher.publish(_fire("started", 4, cls="smoke"))
    publisher.publish(_fire("started", 5))  # a second fire: still one ON
    events = [json.loads(p) for p, _ in live.wait(f"{cam}/event", lambda m: len(m) >= 3)]
    assert [(e["event"], e["track_id"], e["class"]) for e in events] == [
        ("started", 3, "fire"), ("started", 4, "smoke"), ("started", 5, "fire")]
    assert live.last(f"{cam}/snapshot")[0] == jpeg.read_bytes()
    assert [p for p, _ in live.wait(f"{cam}/fire", lambda m: len(m) >= 2)] == [b"OFF", b"ON"]
    assert live.last(f"{cam}/smoke")[0] == b"ON"

    publisher.publish(_fire("cleared", 3))
    publisher.publish(HealthEvent(camera="site a/yard", kind="frozen", t=1.0, wall=1.7e9, detail="same frame"))
    assert json.loads(live.last(f"{cam}/health")[0])["health"] == "frozen"
    publisher.publish(_fire("cleared", 5))
    assert live.wait(f"{cam}/fire", lambda m: len(m) >= 3)[-1][0] == b"OFF"  # both fires out
    armed[0] = False
    assert live.wait(f"{prefix}/arm_state", lambda m: m[-1][0] == b"disarmed")

    # A subscriber that comes later gets the present state, retained.
    late = listen(f"{prefix}/#", f"ha-{prefix}/#")
    for topic, payload in [(f"{prefix}/status", b"online"), (f"{prefix}/arm_state", b"disarmed"),
                           (f"{cam}/fire", b"OFF"), (f"{cam}/smoke", b"ON"),
                           (f"{cam}/snapshot", jpeg.read_bytes())]:
        assert late.last(topic) == (payload, True), topic
    assert json.loads(late.last(f"{cam}/health")[0])["detail"] == "same frame"
    assert f"{cam}/event" not in late.got  # events are not state

    fire_config = json.loads(late.last(f"ha-{prefix}/binary_sensor/fw1_site_a_yard_fire/config")[0])
    assert fire_config["state_topic"] == f"{cam}/fire"
    assert (fire_config["payload_on"], fire_config["availability_topic"]) == ("ON", f"{prefix}/status")
    smoke_config = json.loads(late.last(f"ha-{prefix}/binary_sensor/fw1_site_a_yard_smoke/config")[0])
    assert smoke_config["device_class"] == "smoke"
    image = json.loads(late.last(f"ha-{prefix}/image/fw1_site_a_yard_snapshot/config")[0])
    assert (image["image_topic"], image["content_type"]) == (f"{cam}/snapshot", "image/jpeg")
    arm = json.loads(late.last(f"ha-{prefix}/sensor/fw1_arm_state/config")[0])
    assert arm["state_topic"] == f"{prefix}/arm_state" and arm["options"] == ["armed", "disarmed"]
    assert fire_config["device"]["identifiers"] == image["device"]["identifiers"]  # one device per camera

    publisher.stop()
    assert late.wait(f"{prefix}/status", lambda m: m[-1][0] == b"offline")


_CHILD = textwrap.dedent("""
    import sys, time
    from sinks.mqtt import Broker, MqttPublisher, MqttSettings
    from sinks.mqtt_topics import Topics
    p = MqttPublisher(MqttSettings(Broker(sys.argv[1], int(sys.argv[2])), Topics(prefix="fw2"),
                                   client_id="firewatch-fw2", keepalive_s=2), ["gate"])
    p.start()
    time.sleep(120)
""")


def test_the_last_will_says_offline_when_the_process_dies(mqtt_broker: MqttBroker, listen) -> None:  # type: ignore[no-untyped-def]
    live = listen("fw2/status")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, mqtt_broker.host, str(mqtt_broker.port)],
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        live.wait("fw2/status", lambda m: m and m[-1][0] == b"online", timeout=20)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # No goodbye was said: the broker publishes the will when the socket drops.
    assert live.wait("fw2/status", lambda m: m[-1][0] == b"offline", timeout=20)
