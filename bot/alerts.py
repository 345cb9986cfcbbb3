"""The alert recorder: the sink that turns the pipeline's events into stored alerts and
queued Telegram deliveries.

This is the one place that decides whether an alert is pushed: the system must be
armed, the camera not snoozed, and a bot configured. Otherwise the alert is still
recorded (``pushed = False``) so that history is complete.

Alerts the last run left open are carried over a restart: a fire of the same class on the
same camera continues its alert, and one not seen again is cleared only once its camera
has been watching for the clear delay. A restart looks before it declares a fire out.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from storage import Store
from storage.models import Alert
from storage.repository import AlertRef
from storage.spool import SpoolingStore
from vision.types import ClipEvent, Event, FireEvent, HealthEvent

if TYPE_CHECKING:
    from vision.pipeline import PipelineStatus

log = logging.getLogger(__name__)

HEALTH_TEXT = {
    "lost": "📷❌ Camera <b>{camera}</b> lost: {detail}",
    "back": "📷✅ Camera <b>{camera}</b> is back",
    "frozen": "📷🧊 Camera <b>{camera}</b> frozen: the picture has not changed ({detail})",
    "black": "📷⬛ Camera <b>{camera}</b> black: lens covered or no signal ({detail})",
}


def normalised_box(event: FireEvent) -> list[float] | None:
    """The event's box as fractions of its frame (what "Ignore this area" makes a zone of)."""
    if event.frame_size is None:
        return None
    w, h = event.frame_size
    x1, y1, x2, y2 = event.box
    return [round(min(max(v, 0.0), 1.0), 4) for v in (x1 / w, y1 / h, x2 / w, y2 / h)]


def alert_key(edge: str, camera: str) -> str:
    """A new alert's name, unique across a fleet: which edge, which camera, which fire."""
    where = camera if camera.startswith(f"{edge}/") else f"{edge}/{camera}"  # an edge's cameras say it
    return f"{where}/{uuid.uuid4().hex}"


@dataclass
class RecordResult:
    alert_id: int | None = None  # None: not stored yet (spooled while the database is away)
    queued: bool = False  # deliveries were added: wake the outbox


class AlertRecorder:
    def __init__(self, store: Store | SpoolingStore, *, can_push: bool, clear_after_s: float = 30.0,
                 owns: Callable[[str], bool] = lambda camera: True, edge: str = "") -> None:
        self.store = store
        self.can_push = can_push
        self.clear_after_s = clear_after_s
        self.edge = edge or socket.gethostname()  # in the alerts' keys
        self._open: dict[tuple[str, int], AlertRef] = {}  # (camera, track) -> alert id, or key if spooled
        # Only the alerts of cameras this process ``owns`` (by name, configured now or not): in
        # a fleet, other edges' open alerts are theirs to continue or clear.
        self._carried: dict[int, Alert] = {a.id: a for a in store.open_alerts() if owns(a.camera)}
        if self._carried:
            log.info("%d alerts left open by the last run are carried over", len(self._carried))
        self._started = time.monotonic()
        self._watching_since: dict[str, float] = {}  # camera -> when it was first seen watching
        # Events come from the vision thread (or the bot's workers), expiry from a timer.
        self._lock = threading.Lock()

    def should_push(self, camera: str) -> bool:
        if not self.can_push or not self.store.arm_state().armed:
            return False
        return self.store.snoozed_until(camera) is None

    def publish(self, event: Event) -> None:
        """As a sink of its own (no bot to wake): record in the caller's thread."""
        self.record(event)

    def record(self, event: Event) -> RecordResult:
        with self._lock:
            if isinstance(event, HealthEvent):
                return self._health(event)
            if isinstance(event, ClipEvent):
                return self._clip(event)
            return self._fire(event)

    def expire_carried(self, watching: dict[str, bool]) -> bool:
        """Clear the carried alerts whose camera has watched for the clear delay without
        seeing them (a camera no longer configured counts from the start). ``watching``:
        camera -> whether it is producing frames or has played to its end. Returns
        whether messages were queued."""
        with self._lock:
            if not self._carried:
                return False
            now = time.monotonic()
            for camera, on in watching.items():
                if on:
                    self._watching_since.setdefault(camera, now)
            due = [a for a in self._carried.values()
                   if now - self._watching_since.get(a.camera, self._started if a.camera not in watching
                                                     else float("inf")) >= self.clear_after_s]
            for alert in due:
                del self._carried[alert.id]
                self.store.clear_alert(alert.id, alert.last_seen)
                log.info("alert #%d from the last run cleared: not seen for %.0f s since the restart",
                         alert.id, self.clear_after_s)
            return bool(due)

    def _continue_carried(self, e: FireEvent) -> int | None:
        """The open alert of the last run that this new track continues, if any."""
        same = [a for a in self._carried.values() if a.camera == e.camera and a.class_name == e.class_name]
        if not same:
            return None
        alert = max(same, key=lambda a: a.last_seen)
        del self._carried[alert.id]
        return alert.id

    def _fire(self, e: FireEvent) -> RecordResult:
        at = datetime.fromtimestamp(e.wall, timezone.utc)
        key = (e.camera, e.track_id)
        if e.kind == "started" and (carried := self._continue_carried(e)) is not None:
            self._open[key] = carried
            self.store.update_alert(carried, seen_at=at, severity=e.severity, confidence=e.confidence,
                                    area=e.area_fraction, snapshot_path=e.snapshot)
            log.info("alert #%d continues after the restart (%s on %s)", carried, e.class_name, e.camera)
            return RecordResult(carried, queued=True)
        if e.kind == "started":
            push = self.should_push(e.camera)
            name = alert_key(self.edge, e.camera)
            alert = self.store.record_alert(
                camera=e.camera, track_id=e.track_id, class_name=e.class_name,
                severity=e.severity, confidence=e.confidence, area=e.area_fraction,
                snapshot_path=e.snapshot, seen_at=at, push=push, box=normalised_box(e),
                verification=e.verification, key=name,
            )
            self._open[key] = alert.id if alert is not None else name
            log.info("alert %s started: %s%s on %s (pushed: %s)", _label(self._open[key]), e.class_name,
                     f" {e.severity}" if e.severity else "", e.camera, push)
            return RecordResult(alert.id if alert is not None else None, queued=push)
        alert_id = self._open.get(key)
        if alert_id is None:  # its start was not recorded by this process
            log.warning("%s event for unknown track %s on %s ignored", e.kind, e.track_id, e.camera)
            return RecordResult()
        if e.kind == "updated":
            self.store.update_alert(alert_id, seen_at=at, severity=e.severity,
                                    confidence=e.confidence, area=e.area_fraction,
                                    snapshot_path=e.snapshot, box=normalised_box(e))
        else:
            self.store.clear_alert(alert_id, at)
            self._open.pop(key, None)
        log.info("alert %s %s", _label(alert_id), e.kind)
        return RecordResult(alert_id if isinstance(alert_id, int) else None, queued=True)

    def _clip(self, e: ClipEvent) -> RecordResult:
        """The onset clip replaces the photo of the track's alert, where that went out."""
        alert_id = self._open.get((e.camera, e.track_id))
        if alert_id is None:  # cleared while it was encoded: the photo stays
            log.info("onset clip of track %s on %s not used: its alert is over", e.track_id, e.camera)
            return RecordResult()
        alert = self.store.attach_clip(alert_id, e.path)
        log.info("alert %s: onset clip of %.1f s (%d frames, %s)", _label(alert_id), e.seconds, e.frames, e.codec)
        if alert is None:  # spooled while the database is away: the replay attaches it
            return RecordResult()
        return RecordResult(alert.id, queued=alert.pushed)

    def _health(self, e: HealthEvent) -> RecordResult:
        at = datetime.fromtimestamp(e.wall, timezone.utc)
        self.store.record_camera_event(e.camera, e.kind, e.detail, at=at)
        log.warning("camera %s: %s %s", e.camera, e.kind, e.detail)
        if not self.should_push(e.camera):
            return RecordResult()
        from html import escape

        text = HEALTH_TEXT[e.kind].format(camera=escape(e.camera), detail=escape(e.detail or "-"))
        self.store.queue_notice(text)
        return RecordResult(queued=True)


def _label(alert: AlertRef) -> str:
    """How logs name an alert: "#12", or its key if it was recorded while the database was away."""
    return f"#{alert}" if isinstance(alert, int) else alert


def watching(statuses: Iterable[PipelineStatus]) -> dict[str, bool]:
    """Per camera: is it looking (frames flowing, or a file played to its end)?"""
    return {ps.camera: ps.frames > 0 or (not ps.running and ps.error is None) for ps in statuses}
