"""Annotated images and snapshot files: boxes with class, track id, confidence and severity,
and a caption bar with the camera name and local time. OpenCV's Hershey fonts only (no
font files to ship or download)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from vision.types import Detections, FireEvent, Severity
from vision.zones import Zone

# BGR colours: fire red, start-fire orange, smoke grey, anything else yellow.
_COLOURS = {"fire": (0, 0, 255), "start-fire": (0, 140, 255), "smoke": (160, 160, 160)}
_OTHER = (0, 220, 220)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, bg) -> None:
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = org
    cv2.rectangle(image, (x, y - th - base), (x + tw + 2, y + 1), bg, cv2.FILLED)
    cv2.putText(image, text, (x + 1, y - base // 2), _FONT, scale, colour, 1, cv2.LINE_AA)


def annotate(
    image: np.ndarray,
    detections: Detections,
    class_names: Mapping[int, str],
    *,
    camera: str,
    wall: float,
    severity_of: Callable[[int], Severity | None] | None = None,
) -> np.ndarray:
    """Return a copy of ``image`` (BGR) with the boxes and a caption bar drawn on it."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    thickness = max(1, round(min(w, h) / 300))
    for i in range(len(detections)):
        x1, y1, x2, y2 = (int(round(v)) for v in detections.xyxy[i])
        name = class_names.get(int(detections.class_id[i]), str(int(detections.class_id[i])))
        label = name
        severity = None
        if detections.track_id is not None:
            tid = int(detections.track_id[i])
            label += f" #{tid}"
            severity = severity_of(tid) if severity_of else None
        label += f" {detections.confidence[i]:.2f}"
        if severity:
            label += f" ({severity})"
        colour = _COLOURS.get(severity or name, _OTHER)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        _text(out, label, (x1, max(y1, 16)), scale, (255, 255, 255), colour)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(wall))
    (_, text_h), base = cv2.getTextSize("Ag", _FONT, scale, 1)
    bar = text_h + base + 8
    cv2.rectangle(out, (0, 0), (w, bar), (0, 0, 0), cv2.FILLED)
    cv2.putText(out, f"{camera}  {stamp}", (6, bar - 7), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


_ZONE_COLOUR = (255, 160, 0)  # BGR light blue: not a detection colour


def draw_zones(image: np.ndarray, zones: Sequence[Zone]) -> np.ndarray:
    """Return a copy of ``image`` with each ignore zone outlined, shaded and named."""
    out = image.copy()
    if not zones:
        return out
    h, w = out.shape[:2]
    shade = out.copy()
    scale = max(0.4, min(w, h) / 900)
    for zone in zones:
        polygon = np.round(zone.pixels(w, h)).astype(np.int32)
        cv2.fillPoly(shade, [polygon], _ZONE_COLOUR)
        cv2.polylines(out, [polygon], True, _ZONE_COLOUR, max(1, round(min(w, h) / 300)), cv2.LINE_AA)
    cv2.addWeighted(shade, 0.25, out, 0.75, 0, dst=out)
    for zone in zones:
        x, y = np.round(zone.pixels(w, h).min(axis=0)).astype(int)
        label = f"ignored: {zone.name}" + (f" #{zone.id}" if zone.id is not None else "")
        _text(out, label, (int(x) + 2, max(int(y) + 20, 36)), scale, (0, 0, 0), _ZONE_COLOUR)
    return out

def safe_name(text: str) -> str:
    """A file-system-safe camera name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "camera"


def snapshot_path(root: Path, event: FireEvent) -> Path:
    """``<root>/<camera>/<YYYYmmdd-HHMMSS>-track<id>-<event>.jpg`` (local time of the frame)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(event.wall))
    return Path(root) / safe_name(event.camera) / f"{stamp}-track{event.track_id}-{event.kind}.jpg"


def raw_frame_path(snapshot: Path) -> Path:
    """Where the unannotated frame of a snapshot is kept: ``<name>.raw.jpg``."""
    return Path(snapshot).with_suffix(".raw.jpg")


def write_jpeg(path: Path, image: np.ndarray, quality: int = 85) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"cannot write snapshot {path}")
    return path


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
