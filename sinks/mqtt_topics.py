"""Where firewatch's MQTT messages go, and Home Assistant's discovery configs that point at them.

Topics, under a prefix (``firewatch`` by default), a camera's name as one or more levels:

- ``<prefix>/status``: ``online`` / ``offline`` (retained; ``offline`` is the last will);
  an edge of a fleet has its own, ``<prefix>/<edge>/status``, so one edge gone leaves the
  others' entities available
- ``<prefix>/arm_state``: ``armed`` / ``disarmed`` (retained)
- ``<prefix>/arm_state/set``: ``ARM`` / ``DISARM`` commands, heard only with arming enabled
- ``<prefix>/<camera>/fire``, ``.../smoke``: ``ON`` while an alert of that class is open (retained)
- ``<prefix>/<camera>/event``: each started / updated / cleared event, JSON (not retained)
- ``<prefix>/<camera>/health``: the feed's last health change, JSON (retained)
- ``<prefix>/<camera>/snapshot``: the latest alert snapshot, JPEG bytes (retained)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ON, OFF = "ON", "OFF"
ONLINE, OFFLINE = "online", "offline"
ARMED, DISARMED = "armed", "disarmed"
ARM_COMMAND, DISARM_COMMAND = "ARM", "DISARM"
CLASSES = ("fire", "smoke")
# Home Assistant has no "fire" class; "heat" reads right on a dashboard and in automations.
_DEVICE_CLASS = {"fire": "heat", "smoke": "smoke"}
_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9_\-/]+")
_ID_UNSAFE = re.compile(r"[^a-z0-9_]+")


def topic_level(name: str) -> str:
    """A camera name as topic levels: "site/cam 1" -> "site/cam_1" (no wildcards, no empties)."""
    levels = [_TOPIC_UNSAFE.sub("_", part.strip()) for part in name.split("/")]
    return "/".join(level for level in levels if level) or "camera"


def object_id(name: str) -> str:
    """A name as a Home Assistant id: lower case, [a-z0-9_]."""
    return _ID_UNSAFE.sub("_", name.lower()).strip("_") or "camera"


@dataclass(frozen=True)
class Topics:
    prefix: str = "firewatch"
    discovery_prefix: str = "homeassistant"
    # A fleet's edge: several share one broker, each with its own availability and entities.
    edge: str | None = None

    @property
    def status(self) -> str:
        if self.edge:
            return f"{self.prefix}/{topic_level(self.edge)}/status"
        return f"{self.prefix}/status"

    @property
    def arm_state(self) -> str:
        return f"{self.prefix}/arm_state"

    @property
    def arm_command(self) -> str:
        return f"{self.arm_state}/set"

    @property
    def ha_status(self) -> str:
        """Home Assistant's own birth / will topic: on its "online", discovery is sent again."""
        return f"{self.discovery_prefix}/status"

    def camera(self, camera: str, leaf: str) -> str:
        return f"{self.prefix}/{topic_level(camera)}/{leaf}"

    def discovery(self, component: str, unique_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{unique_id}/config"


def _device(prefix: str, name: str, model: str) -> dict:
    return {"identifiers": [object_id(f"{prefix}_{name}")], "name": f"firewatch {name}",
            "manufacturer": "firewatch", "model": model}


def camera_discovery(topics: Topics, camera: str) -> list[tuple[str, dict]]:
    """A camera's entities: fire and smoke binary sensors, its snapshot image, its health."""
    base = object_id(f"{topics.prefix}_{camera}")
    common = {"availability_topic": topics.status, "payload_available": ONLINE,
              "payload_not_available": OFFLINE, "device": _device(topics.prefix, camera, "camera")}
    configs = [
        (topics.discovery("binary_sensor", f"{base}_{cls}"), {
            **common, "name": cls.capitalize(), "unique_id": f"{base}_{cls}",
            "state_topic": topics.camera(camera, cls), "payload_on": ON, "payload_off": OFF,
            "device_class": _DEVICE_CLASS[cls],
            "json_attributes_topic": topics.camera(camera, "event"),
        })
        for cls in CLASSES
    ]
    configs.append((topics.discovery("image", f"{base}_snapshot"), {
        **common, "name": "Snapshot", "unique_id": f"{base}_snapshot",
        "image_topic": topics.camera(camera, "snapshot"), "content_type": "image/jpeg",
    }))
    configs.append((topics.discovery("sensor", f"{base}_health"), {
        **common, "name": "Feed", "unique_id": f"{base}_health",
        "state_topic": topics.camera(camera, "health"), "value_template": "{{ value_json.health }}",
        "json_attributes_topic": topics.camera(camera, "health"), "entity_category": "diagnostic",
    }))
    return configs


def system_discovery(topics: Topics, arming: bool = False) -> list[tuple[str, dict | None]]:
    """The system's entities: the arm state, as a sensor, and with ``arming`` a switch that
    arms and disarms (without it, None: the switch a former run announced is removed).
    Each edge announces its own (the shared arm state as that edge reads it), so that one
    entity's availability never follows whichever edge announced it last."""
    owner = f"{topics.prefix}_{topics.edge}" if topics.edge else topics.prefix
    unique_id = object_id(f"{owner}_arm_state")
    common = {"availability_topic": topics.status, "payload_available": ONLINE,
              "payload_not_available": OFFLINE, "icon": "mdi:shield-fire",
              "device": _device(topics.prefix, topics.edge or "system", "fire alerting")}
    switch_id = object_id(f"{owner}_armed")
    switch = {**common, "name": "Armed", "unique_id": switch_id, "state_topic": topics.arm_state,
              "state_on": ARMED, "state_off": DISARMED, "command_topic": topics.arm_command,
              "payload_on": ARM_COMMAND, "payload_off": DISARM_COMMAND}
    return [
        (topics.discovery("sensor", unique_id), {
            **common, "name": "Arm state", "unique_id": unique_id, "state_topic": topics.arm_state,
            "device_class": "enum", "options": [ARMED, DISARMED],
        }),
        (topics.discovery("switch", switch_id), switch if arming else None),
    ]
