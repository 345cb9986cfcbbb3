"""Typed values passed between the vision stages.

Everything that leaves vision/ (``FireEvent``, ``HealthEvent``) is plain serialisable data,
so that a queue, a database row or an MQTT message is an adapter, not a rewrite.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Severity = Literal["start-fire", "fire"]
# A fire box under this fraction of the frame is a starting fire: the one line between the
# severities, for the classifier's training labels and for grading by box size alike.
START_FIRE_MAX_AREA = 0.02
FireEventKind = Literal["started", "updated", "cleared"]
HealthKind = Literal["lost", "back", "frozen", "black"]


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    ``image`` is BGR uint8 (H, W, 3); ``t`` is seconds since the start of the source (media
    time for files and folders, monotonic time for live sources); ``wall`` is a Unix time.
    """

    image: np.ndarray
    index: int
    t: float
    wall: float

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass
class Detections:
    """Boxes of one frame in original-image pixels.

    xyxy: float32 (N, 4); confidence: float32 (N,); class_id: int32 (N,);
    track_id: int32 (N,) once a tracker has run, else None.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    track_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int32).reshape(-1)
        if self.track_id is not None:
            self.track_id = np.asarray(self.track_id, dtype=np.int32).reshape(-1)
        n = len(self.xyxy)
        if len(self.confidence) != n or len(self.class_id) != n or (
            self.track_id is not None and len(self.track_id) != n
        ):
            raise ValueError("Detections arrays must all have the same length")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def area(self) -> np.ndarray:
        """Box areas in pixels, float32 (N,)."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            None if self.track_id is None else self.track_id[index],
        )


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


@dataclass(frozen=True)
class FireEvent:
    """A fire alert changed state: ``started`` (confirmed), ``updated`` (grew or got more
    severe) or ``cleared`` (gone for the configured time). One alert per fire track."""

    kind: FireEventKind
    camera: str
    track_id: int
    class_name: str
    severity: Severity | None
    confidence: float
    box: tuple[float, float, float, float]
    area_fraction: float
    frame: int
    t: float
    wall: float
    snapshot: str | None = None
    # (width, height) of the frame ``box`` is in: what makes the box a fraction of the view.
    frame_size: tuple[int, int] | None = None
    # Why the fire was confirmed (vision.verification.TrackVerdict.to_dict()); None when
    # temporal verification is off.
    verification: dict | None = None

    def to_dict(self) -> dict:
        """The replay / wire format: one JSON object per event."""
        return {
            "event": self.kind,
            "camera": self.camera,
            "t": _round(self.t, 3),
            "wall": _round(self.wall, 3),
            "frame": self.frame,
            "track_id": self.track_id,
            "class": self.class_name,
            "severity": self.severity,
            "confidence": _round(self.confidence),
            "box": [round(float(v), 1) for v in self.box],
            "area_fraction": _round(self.area_fraction, 5),
            "snapshot": self.snapshot,
            "verification": self.verification,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class HealthEvent:
    """The camera feed changed health: ``lost`` (no frames), ``back`` (delivering normal
    frames again), ``frozen`` (identical frames), ``black`` (lens covered / no signal)."""

    camera: str
    kind: HealthKind
    t: float
    wall: float
    frame: int | None = None
    detail: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        health = d.pop("kind")
        return {"event": "health", "health": health, **d, "t": _round(self.t, 3), "wall": _round(self.wall, 3)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class ClipEvent:
    """The onset clip of the alert of ``track_id`` on ``camera`` is written at ``path``
    (``vision.clips``): it replaces the alert's photo."""

    camera: str
    track_id: int
    path: str
    t: float  # the source time of its last frame
    wall: float
    frames: int
    seconds: float
    codec: str

    def to_dict(self) -> dict:
        return {"event": "clip", **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


Event = FireEvent | HealthEvent | ClipEvent

