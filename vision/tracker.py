"""Stable track ids for detections: ByteTrack from Roboflow's ``trackers`` (Apache-2.0).

``trackers`` is numpy/scipy (~130 MB with its dependencies): a ByteTrack that needs torch
would cost 535 MB of RSS on its own, over the daemon's whole 400 MB budget. The one small
``Tracker`` class keeps the implementation swappable.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from vision.types import Detections


class TrackerUnavailable(ImportError):
    """The tracker's library is not installed."""


@dataclass(frozen=True)
class TrackerConfig:
    """ByteTrack settings.

    ``new_track_thresh``: a detection needs this confidence to start a track (lower ones
    only extend existing tracks). ``track_buffer``: frames a lost track is kept to be
    re-found (30 = 3 s at 10 FPS). ``min_iou``: overlap needed to match a box to a track.
    """

    new_track_thresh: float = 0.25
    track_buffer: int = 30
    min_iou: float = 0.1
    frame_rate: float = 10.0


def _byte_track_class():  # type: ignore[no-untyped-def]
    try:
        with warnings.catch_warnings():
            # supervision looks for the GUI build of OpenCV; the headless one serves us.
            warnings.simplefilter("ignore", UserWarning)
            import supervision as sv
            from trackers import ByteTrackTracker
    except ImportError as exc:
        raise TrackerUnavailable("the fire tracker needs `trackers`: pip install 'trackers>=2.6'") from exc
    return ByteTrackTracker, sv.Detections


class Tracker:
    """Assigns a track id (≥ 1) to every detection; ids stay stable while an object stays in view.

    Detections that the tracker does not (yet) follow are dropped: a new track needs
    ``new_track_thresh`` confidence, and a low-confidence box only extends an existing track.
    ByteTrack gives a new object its id on its second sighting, so the first frame of
    every fire is dropped here.

    Each class is tracked separately: ByteTrack matches boxes by overlap alone, and smoke
    rising where a fire was is a new object, not the fire's continuation.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracker_cls, self._sv_detections = _byte_track_class()
        self._next_id = 0  # never reset: an id is never reused within a run
        self.reset()

    def update(self, detections: Detections, frame: np.ndarray | None = None) -> Detections:
        """Return the tracked subset of ``detections`` with ``track_id`` set."""
        indices: list[np.ndarray] = []
        ids: list[int] = []
        # Every known class is updated every frame, even when it has no boxes, so that
        # its lost tracks age and expire on time.
        for cls in sorted(set(self._trackers) | set(np.unique(detections.class_id).tolist())):
            mine = np.flatnonzero(detections.class_id == cls)
            tracked = self._tracker_for(cls).update(
                self._sv_detections(
                    xyxy=detections.xyxy[mine].reshape(-1, 4),
                    confidence=detections.confidence[mine],
                    class_id=detections.class_id[mine],
                    data={"index": mine},
                )
            )
            keep = tracked.tracker_id >= 0
            indices.append(np.asarray(tracked.data.get("index", np.zeros(0, int)))[keep])
            ids += [self._global_id(cls, int(t)) for t in tracked.tracker_id[keep]]
        if not ids:
            return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0))
        # Report the detector's own box and score (what was seen), not the Kalman-smoothed one.
        out = detections[np.concatenate(indices).astype(np.int64)]
        out.track_id = np.asarray(ids, np.int32)
        return out

    def _tracker_for(self, cls: int):  # type: ignore[no-untyped-def]
        if cls not in self._trackers:
            c = self.config
            self._trackers[cls] = self._tracker_cls(
                lost_track_buffer=c.track_buffer,
                frame_rate=c.frame_rate,
                track_activation_threshold=c.new_track_thresh,
                high_conf_det_threshold=c.new_track_thresh,
                minimum_consecutive_frames=1,
                minimum_iou_threshold=c.min_iou,
            )
        return self._trackers[cls]

    def _global_id(self, cls: int, local: int) -> int:
        """Track ids unique across classes, numbered from 1 in order of appearance."""
        key = (cls, local)
        if key not in self._ids:
            self._next_id += 1
            self._ids[key] = self._next_id
        return self._ids[key]

    def reset(self) -> None:
        """Forget all tracks (e.g. after the camera was lost and came back)."""
        self._trackers: dict[int, object] = {}
        self._ids: dict[tuple[int, int], int] = {}
