"""Arming over MQTT in a fleet: one process owns it, the bot. Two edges and the bot, each a real
process built from the daemon's settings (``firewatch.wiring``) with FIREWATCH_MQTT_ARMING on,
on one real Mosquitto and one real PostgreSQL: one command is one change and one audit row,
and every edge alerts by the state it reads from the shared database. The edges never hear
the command topic: with the bot gone, a command changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import paho.mqtt.client as mqtt
import pytest

from storage import Store, upgrade
from storage.models import DeliveryKind
from tests.support.data import REPO
from tests.support.servers import MqttBroker

PREFIX = "fwfa"
CHATS = (11, -100)

# A process of the fleet in the given role, with arming enabled in its settings. An edge, told
# "fire N" on its input, records a fire on its camera as the daemon does and says if it was pushed.
_PROCESS = textwrap.dedent("""
    import sys, time
    from firewatch.config import load_settings
    from firewatch.edge_recorder import EdgeRecorder
    from firewatch.roles import owned_cameras
    from firewatch.wiring import mqtt_publisher
    from storage import Store
    from vision.types import FireEvent

    broker, db, role, name = sys.argv[1:5]
    settings = load_settings(env_file=None, role=role, edge_name=name, camera_name="yard", mqtt_url=broker,
                             mqtt_topic_prefix="fwfa", mqtt_discovery_prefix="ha-fwfa", mqtt_arming=True,
                             database_url=db)
    store = Store(settings.db_url)
    mqtt_publisher(settings, store).start()
    recorder = EdgeRecorder(store, can_push=True, owns=owned_cameras(settings), edge=settings.site)
    print("ready", flush=True)
    for line in sys.stdin:
        track = int(line.split()[1])
        result = recorder.record(FireEvent(kind="started", camera=settings.camera_configs[0].name, track_id=track,
                                           class_name="fire", severity="fire", confidence=0.7, box=(1.0, 1.0, 9.0, 9.0),
                                           area_fraction=0.1, frame=track, t=0.0, wall=time.time()))
        print(f"pushed {result.queued}", flush=True)
""")


class Process:
    def __init__(self, broker: MqttBroker, db: str, role: str, name: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _PROCESS, broker.url, db, role, name], cwd=REPO,
                                     env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.read_until("ready")

    def read_until(self, start: str) -> str:
        while True:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            assert line, "\n".join(self.lines)
            self.lines.append(line.rstrip())
            if line.startswith(start):
                return line.strip()

    def fire(self, track: int) -> bool:
        """Whether a fire starting now on this edge's camera is pushed."""
        self.proc.stdin.write(f"fire {track}\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self.read_until("pushed ") == "pushed True"

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def db(postgres_database: str) -> str:
    upgrade(postgres_database)
    store = Store(postgres_database)
    for chat in CHATS:
        store.add_chat(chat)
    store.close()
    return postgres_database


def send(client: mqtt.Client, topic: str, payload: str) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(10)


def wait_until(predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_one_command_is_one_change_and_one_audit_and_every_edge_alerts_by_it(  # type: ignore[no-untyped-def]
        mqtt_broker: MqttBroker, listen, db: str, commander: mqtt.Client) -> None:
    store = Store(db)
    live = listen(f"{PREFIX}/#", f"ha-{PREFIX}/#")
    fleet: list[Process] = []
    try:
        bot = Process(mqtt_broker, db, "bot", "hub")
        fleet.append(bot)
        edges = [Process(mqtt_broker, db, "edge", name) for name in ("site-a", "site-b")]
        fleet += edges
        for topic in (f"{PREFIX}/status", f"{PREFIX}/site-a/status", f"{PREFIX}/site-b/status"):
            live.wait(topic, lambda m: m and m[-1][0] == b"online", timeout=30)
        # One switch, the bot's, available while the bot is; the edges offer none.
        switch = json.loads(live.last(f"ha-{PREFIX}/switch/{PREFIX}_armed/config")[0])
        assert (switch["command_topic"], switch["availability_topic"]) == (f"{PREFIX}/arm_state/set",
                                                                           f"{PREFIX}/status")
        for edge_id in ("site_a", "site_b"):
            assert live.last(f"ha-{PREFIX}/switch/{PREFIX}_{edge_id}_armed/config")[0] == b""
        for edge in edges:
            assert any("FIREWATCH_MQTT_ARMING is ignored on an edge" in line for line in edge.lines), edge.lines
        assert [edge.fire(1) for edge in edges] == [True, True]

        send(commander, f"{PREFIX}/arm_state/set", "DISARM")
        wait_until(lambda: not store.arm_state().armed)
        live.wait(f"{PREFIX}/arm_state", lambda m: m[-1][0] == b"disarmed")
        time.sleep(1)  # another process's change and audit would be in by now
        (entry,) = store.audit_log()
        assert (entry.action, entry.method, entry.success) == ("disarm", "mqtt", True)
        notices = [d.chat_id for d in store.deliveries() if d.kind is DeliveryKind.TEXT and "from MQTT" in d.text]
        assert sorted(notices) == sorted(CHATS)
        # Applied on every edge, through the database they share.
        assert [edge.fire(2) for edge in edges] == [False, False]

        # The bot gone, no one hears the command topic: Home Assistant shows the switch unavailable.
        bot.kill9()
        live.wait(f"{PREFIX}/status", lambda m: m[-1][0] == b"offline")
        send(commander, f"{PREFIX}/arm_state/set", "ARM")
        sensors = [f"ha-{PREFIX}/sensor/{PREFIX}_{edge_id}_arm_state/config" for edge_id in ("site_a", "site_b")]
        heard = {topic: len(live.got[topic]) for topic in sensors}
        send(commander, f"ha-{PREFIX}/status", "online")  # each edge answers it after the command before it
        for topic in sensors:
            live.wait(topic, lambda m, topic=topic: len(m) > heard[topic])
        time.sleep(1)
        assert not store.arm_state().armed and len(store.audit_log()) == 1
    finally:
        for process in fleet:
            if process.proc.poll() is None:
                process.kill9()
        store.close()
