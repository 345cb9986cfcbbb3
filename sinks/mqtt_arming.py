"""Arming and disarming from MQTT (Home Assistant's switch), only where
``FIREWATCH_MQTT_ARMING`` allows it: anyone who may publish to the broker can then disarm.

A command changes the arm state shared by the fleet and is audited like a selfie's (method
``mqtt``); a disarm re-arms by itself after the same delay, and every chat is told, since no
face vouched for it. A command that asks for the present state changes and audits nothing
(QoS 1 may deliver one twice). Commands are applied one at a time, in the order heard
(``sinks.mqtt``), by one process: one box, or a fleet's bot (docs/fleet.md).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from html import escape
from typing import Any, Protocol

from sinks.mqtt_topics import ARM_COMMAND, DISARM_COMMAND

log = logging.getLogger(__name__)

ARM, DISARM = ARM_COMMAND, DISARM_COMMAND
METHOD = "mqtt"


def parse_command(payload: bytes) -> bool | None:
    """ARM -> True, DISARM -> False (any case, spaces around); None for anything else."""
    word = payload.decode("utf-8", errors="replace").strip().upper()
    return {ARM: True, DISARM: False}.get(word)


class ArmStore(Protocol):
    """What arming needs of the database (``storage.Store``, handed in by the application)."""

    def arm_state(self) -> Any: ...

    def set_armed(self, armed: bool, *, user_id: int | None, method: str, rearm_at: datetime | None,
                  detail: str, notice: str) -> Any: ...


class StoreArming:
    """Applies an MQTT arm command to the database: ``who`` says where it came from in the audit."""

    def __init__(self, store: ArmStore, who: str, rearm_after: timedelta) -> None:
        self.store = store
        self.who = who
        self.rearm_after = rearm_after

    def __call__(self, armed: bool) -> bool:
        """Arm or disarm; False when it already was so."""
        if self.store.arm_state().armed == armed:
            return False
        rearm_at = None if armed else datetime.now(timezone.utc) + self.rearm_after
        self.store.set_armed(armed, user_id=None, method=METHOD, rearm_at=rearm_at, detail=self.who,
                             notice=("🟢 Armed" if armed else "🔕 Disarmed") + f" from MQTT ({escape(self.who)}).")
        log.info("%s from MQTT (%s)", "armed" if armed else "disarmed", self.who)
        return True
