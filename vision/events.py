"""Tracked detections -> fire alerts: one alert per fire, not one per frame.

Rules (all thresholds in ``EventConfig``):

- *confirmed*: a track seen in ``confirm_hits`` of the last ``confirm_window`` frames starts
  an alert (``started``), unless a configured classifier gives that track's crop a p(no-fire)
  of at least ``veto_confidence`` (asked again after ``classify_every_s``). Below 0.5 this
  vetoes every box the classifier is not sure is fire: a second stage, not only a veto.
  A newly confirmed track that overlaps an open alert of the same class (IoU >=
  ``merge_iou``) joins that alert instead of starting a second one: a tracker id switch
  must not page the operator twice.
- *updated*: the alert's box area reached ``growth_factor`` x the last reported area, or its
  severity rose (start-fire -> fire). Severity never falls within one alert.
- *cleared*: no track of the alert seen for ``clear_after_s`` seconds (source time), or the
  source ended (:meth:`FireEvents.flush`).

With temporal verification (``verdicts`` passed to :meth:`FireEvents.update`, from
``vision.verification.Verifier``), a confirmed track also has to move like fire before it
starts an alert: its verdict is ``verified``. No verdict yet means wait, also while the camera
moves (the verifier judges on frames aligned for that motion; K-of-N alone would let any box
through the moment the camera shakes). A track held back is logged once with the reason.
An open alert counts a track as seen only while its verdict is not "held back" (the verifier
asks less of a track whose alert is open), so a still picture left in view after a real fire
clears like a fire that went out.

Severity of a "fire" box: the classifier's label when one is configured (its "start-fire" /
"fire"); otherwise "start-fire" while the box is under ``start_fire_fraction`` of the frame
and has not grown ``spread_factor`` x since the track was first seen, else "fire". Other
classes (smoke) have no severity.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from vision.crops import context_crop
from vision.geometry import box_iou
from vision.types import START_FIRE_MAX_AREA, Detections, FireEvent, Frame, Severity

log = logging.getLogger(__name__)

_RANK: dict[Severity | None, int] = {None: 0, "start-fire": 1, "fire": 2}


class ClassifierResultLike(Protocol):
    label: str  # "fire" | "start-fire" | "no-fire"
    no_fire: float  # p(no-fire)


class VerdictLike(Protocol):
    """What the event rules read of a track's temporal verdict (vision.verification.TrackVerdict)."""

    verified: bool | None
    camera_moving: bool
    reason: str

    def to_dict(self) -> dict: ...


class CropClassifier(Protocol):
    """Anything with ``classify(crop_bgr) -> result`` (vision.classifier.FireClassifier fits)."""

    def classify(self, crop_bgr: np.ndarray) -> ClassifierResultLike: ...


@dataclass(frozen=True)
class EventConfig:
    confirm_hits: int = 3
    confirm_window: int = 5
    clear_after_s: float = 10.0
    growth_factor: float = 1.5
    start_fire_fraction: float = START_FIRE_MAX_AREA
    spread_factor: float = 2.0
    veto_confidence: float = 0.9  # p(no-fire) that vetoes a track: see models/fire-classifier.md
    classify_every_s: float = 2.0
    merge_iou: float = 0.3
    fire_class: str = "fire"
    classify_classes: frozenset[str] = frozenset({"fire"})


@dataclass
class _Alert:
    track_id: int
    class_name: str
    severity: Severity | None
    reported_area: float
    box: np.ndarray
    confidence: float
    area_fraction: float
    last_seen_t: float
    tracks: set[int] = field(default_factory=set)
    verification: dict | None = None


@dataclass
class _Track:
    track_id: int
    class_name: str
    first_area: float
    seen: deque[int]
    last_frame: int = -1
    classified_t: float | None = None
    classified_label: str | None = None
    classified_no_fire: float = 0.0
    alert: _Alert | None = None
    held_back_logged: bool = False


class FireEvents:
    """Feed it tracked detections frame by frame; it returns the ``FireEvent``s to emit."""

    def __init__(
        self,
        camera: str,
        class_names: Mapping[int, str],
        config: EventConfig | None = None,
        classifier: CropClassifier | None = None,
    ) -> None:
        self.camera = camera
        self.class_names = dict(class_names)
        self.config = config or EventConfig()
        self.classifier = classifier
        self._tracks: dict[int, _Track] = {}
        self._alerts: list[_Alert] = []

    @property
    def open_alerts(self) -> int:
        return len(self._alerts)

    @property
    def alert_tracks(self) -> frozenset[int]:
        """Ids of the tracks that belong to an open alert (the verifier's hysteresis)."""
        return frozenset(tid for alert in self._alerts for tid in alert.tracks)

    def severity_of(self, track_id: int) -> Severity | None:
        """The severity of the alert a track belongs to (for annotation), else None."""
        track = self._tracks.get(int(track_id))
        return track.alert.severity if track is not None and track.alert is not None else None

    def update(
        self, detections: Detections, frame: Frame, verdicts: Mapping[int, VerdictLike] | None = None
    ) -> list[FireEvent]:
        """``verdicts``: each track's temporal verdict, or None to decide without them."""
        if detections.track_id is None:
            raise ValueError("FireEvents needs tracked detections (track_id set)")
        cfg = self.config
        h, w = frame.shape
        frame_area = float(h * w)
        events: list[FireEvent] = []
        areas = detections.area
        for i in range(len(detections)):  # one iteration per tracked box, a handful per frame
            tid = int(detections.track_id[i])
            box = detections.xyxy[i]
            conf = float(detections.confidence[i])
            fraction = float(areas[i]) / frame_area
            track = self._tracks.get(tid)
            if track is None:
                name = self.class_names.get(int(detections.class_id[i]), str(int(detections.class_id[i])))
                track = self._tracks[tid] = _Track(tid, name, fraction, deque(maxlen=cfg.confirm_window))
            track.seen.append(frame.index)
            track.last_frame = frame.index
            verdict = None if verdicts is None else verdicts.get(tid)
            if track.alert is None:
                hits = sum(1 for f in track.seen if f > frame.index - cfg.confirm_window)
                if hits < cfg.confirm_hits or self._vetoed(track, frame, box):
                    continue
                if verdicts is not None and not self._moves_like_fire(track, verdict):
                    continue
                alert = self._joinable_alert(track.class_name, box)
                if alert is None:
                    severity = self._severity(track, fraction)
                    alert = _Alert(tid, track.class_name, severity, fraction, box, conf, fraction, frame.t,
                                   verification=None if verdict is None else verdict.to_dict())
                    self._alerts.append(alert)
                    events.append(self._event("started", alert, frame))
                alert.tracks.add(tid)
                track.alert = alert
                alert.last_seen_t = frame.t
                continue
            if verdict is not None and verdict.verified is False:
                continue  # in view, but no longer moving like fire: not a sighting of the alert
            alert = track.alert
            alert.box, alert.confidence, alert.area_fraction, alert.last_seen_t = box, conf, fraction, frame.t
            if track.class_name in cfg.classify_classes:
                self._classify(track, frame, box)
            severity = self._severity(track, fraction)
            grew = fraction >= alert.reported_area * cfg.growth_factor
            if _RANK[severity] > _RANK[alert.severity] or grew:
                alert.severity = severity if _RANK[severity] > _RANK[alert.severity] else alert.severity
                alert.reported_area = fraction
                events.append(self._event("updated", alert, frame))

        for alert in list(self._alerts):
            if frame.t - alert.last_seen_t >= cfg.clear_after_s:
                events.append(self._clear(alert, frame.index, frame.t, frame.wall))
        # Tracks that never confirmed and fell out of the window are forgotten.
        stale = [tid for tid, tr in self._tracks.items() if tr.alert is None and tr.last_frame <= frame.index - cfg.confirm_window]
        for tid in stale:
            del self._tracks[tid]
        return events

    def flush(self, frame_index: int, t: float, wall: float) -> list[FireEvent]:
        """The source ended: clear every open alert."""
        return [self._clear(alert, frame_index, t, wall) for alert in list(self._alerts)]

    # -- helpers -------------------------------------------------------------------------

    def _clear(self, alert: _Alert, frame_index: int, t: float, wall: float) -> FireEvent:
        self._alerts.remove(alert)
        for tid in alert.tracks:
            self._tracks.pop(tid, None)
        return FireEvent(
            "cleared", self.camera, alert.track_id, alert.class_name, alert.severity, alert.confidence,
            _box_tuple(alert.box), alert.area_fraction, frame_index, t, wall,
        )

    def _event(self, kind: str, alert: _Alert, frame: Frame) -> FireEvent:
        return FireEvent(
            kind, self.camera, alert.track_id, alert.class_name, alert.severity, alert.confidence,  # type: ignore[arg-type]
            _box_tuple(alert.box), alert.area_fraction, frame.index, frame.t, frame.wall,
            verification=alert.verification,
        )

    def _joinable_alert(self, class_name: str, box: np.ndarray) -> _Alert | None:
        candidates = [a for a in self._alerts if a.class_name == class_name]
        if not candidates:
            return None
        ious = box_iou(box, np.stack([a.box for a in candidates]))
        best = int(np.argmax(ious))
        return candidates[best] if ious[best] >= self.config.merge_iou else None

    def _classify(self, track: _Track, frame: Frame, box: np.ndarray) -> None:
        if self.classifier is None:
            return
        if track.classified_t is not None and frame.t - track.classified_t < self.config.classify_every_s:
            return
        result = self.classifier.classify(context_crop(frame.image, box))
        track.classified_t = frame.t
        track.classified_label = result.label
        track.classified_no_fire = float(result.no_fire)

    def _moves_like_fire(self, track: _Track, verdict: VerdictLike | None) -> bool:
        """A confirmed track may start an alert once it is verified. No verdict yet means wait."""
        if verdict is None:
            return False
        if verdict.verified is True:
            return True
        if verdict.verified is False and not track.held_back_logged:
            track.held_back_logged = True
            log.info("%s: %s track %d held back: %s", self.camera, track.class_name, track.track_id, verdict.reason)
        return False

    def _vetoed(self, track: _Track, frame: Frame, box: np.ndarray) -> bool:
        if self.classifier is None or track.class_name not in self.config.classify_classes:
            return False
        self._classify(track, frame, box)
        return track.classified_no_fire >= self.config.veto_confidence

    def _severity(self, track: _Track, fraction: float) -> Severity | None:
        cfg = self.config
        if track.class_name != cfg.fire_class:
            return None
        if track.classified_label in ("fire", "start-fire"):
            return track.classified_label  # type: ignore[return-value]
        small = fraction < cfg.start_fire_fraction and fraction < track.first_area * cfg.spread_factor
        return "start-fire" if small else "fire"


def _box_tuple(box: np.ndarray) -> tuple[float, float, float, float]:
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


