"""Availability per edge: several edges on one Mosquitto each have their own status topic and
last will, and their entities follow it, so one edge dying leaves the others available.
Each edge is a real process built from the daemon's settings (``firewatch.wiring``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from firewatch.config import load_settings
from firewatch.wiring import mqtt_publisher
from storage import Store
from tests.support.data import REPO
from tests.support.servers import MqttBroker

PREFIX = "fwav"

# An edge: role edge, its own name, one camera; killed, it says no goodbye.
_EDGE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from firewatch.config import load_settings
    from firewatch.wiring import mqtt_publisher
    from storage import Store, upgrade
    url, edge, data = sys.argv[1:4]
    settings = load_settings(env_file=None, role="edge", edge_name=edge, camera_name="yard",
                             mqtt_url=url, mqtt_topic_prefix="fwav", mqtt_discovery_prefix="ha-fwav",
                             database_url=f"sqlite:///{data}/fw.db")
    upgrade(settings.db_url)
    store = Store(settings.db_url)
    p = mqtt_publisher(settings, store)
    p.start()
    time.sleep(120)
""")


def _edge(broker: MqttBroker, name: str, data: str) -> subprocess.Popen:  # type: ignore[type-arg]
    os.makedirs(data, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", _EDGE, broker.url, name, data],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_one_edge_dying_leaves_the_other_online(mqtt_broker: MqttBroker, listen, tmp_path) -> None:  # type: ignore[no-untyped-def]
    live = listen(f"{PREFIX}/#", f"ha-{PREFIX}/#")
    edges = {name: _edge(mqtt_broker, name, str(tmp_path / name)) for name in ("site-a", "site.b")}
    try:
        a_status, b_status = f"{PREFIX}/site-a/status", f"{PREFIX}/site_b/status"
        for topic in (a_status, b_status):
            live.wait(topic, lambda m: m and m[-1][0] == b"online", timeout=30)
        fire_a = json.loads(live.last(f"ha-{PREFIX}/binary_sensor/fwav_site_a_yard_fire/config")[0])
        fire_b = json.loads(live.last(f"ha-{PREFIX}/binary_sensor/fwav_site_b_yard_fire/config")[0])
        assert (fire_a["state_topic"], fire_a["availability_topic"]) == (f"{PREFIX}/site-a/yard/fire", a_status)
        assert fire_b["availability_topic"] == b_status
        arm_a = json.loads(live.last(f"ha-{PREFIX}/sensor/fwav_site_a_arm_state/config")[0])
        arm_b = json.loads(live.last(f"ha-{PREFIX}/sensor/fwav_site_b_arm_state/config")[0])
        assert (arm_a["availability_topic"], arm_b["availability_topic"]) == (a_status, b_status)
        assert arm_a["state_topic"] == arm_b["state_topic"] == f"{PREFIX}/arm_state"  # one arm state
        assert f"{PREFIX}/status" not in live.got  # no shared availability for every edge to flip
        assert not any("+" in t or "#" in t for t in live.got)

        edges["site-a"].send_signal(signal.SIGKILL)
        edges["site-a"].wait()
        # The broker fires site-a's will (keepalive 30 s: it sees the dropped socket at once).
        live.wait(a_status, lambda m: m[-1][0] == b"offline", timeout=30)
        assert [p for p, _ in live.got[b_status]] == [b"online"]
        late = listen(f"{PREFIX}/+/status")
        assert late.last(a_status) == (b"offline", True) and late.last(b_status) == (b"online", True)
    finally:
        for child in edges.values():
            child.kill()
            child.wait()


def test_a_single_box_keeps_the_one_status_topic(store: Store) -> None:
    settings = load_settings(env_file=None, mqtt_url="mqtt://127.0.0.1:1", camera_name="gate", edge_name="site-a")
    publisher = mqtt_publisher(settings, store)
    assert publisher is not None and publisher.topics.status == "firewatch/status"
    edge = mqtt_publisher(settings.model_copy(update={"role": "edge"}), store)
    assert edge is not None and edge.topics.status == "firewatch/site-a/status"
