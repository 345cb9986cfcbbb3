"""Annotated images and snapshot files: boxes with class, severity and confidence,
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


def label_origin(box: tuple[int, int, int, int], text: str, scale: float,
                 frame: tuple[int, int], top: int) -> tuple[int, int]:
    """Where ``_text`` draws a box's label: above the box, else (no room under the caption bar
    that ends at ``top``) inside it from its top edge or just below the bar, kept within the
    frame's right and bottom edges. Flames often touch the top of the frame."""
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    w, h = frame
    x1, y1, _, _ = box
    height = th + base + 1  # _text's filled rectangle, from y - th - base to y + 1
    y = y1 if y1 - th - base >= top else max(y1, top) + th + base
    y = min(y, h - 2)
    x = max(0, min(x1, w - tw - 3))
    return x, max(y, height - 1)


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
    scale = label_scale((w, h))
    thickness = max(1, round(min(w, h) / 300))
    labels: list[tuple[tuple[int, int, int, int], str, tuple[int, int, int]]] = []
    for i in range(len(detections)):
        x1, y1, x2, y2 = (int(round(v)) for v in detections.xyxy[i])
        name = class_names.get(int(detections.class_id[i]), str(int(detections.class_id[i])))
        severity = None
        if detections.track_id is not None and severity_of is not None:
            severity = severity_of(int(detections.track_id[i]))
        label = box_label(name, float(detections.confidence[i]), severity)
        colour = _COLOURS.get(severity or name, _OTHER)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        labels.append(((x1, y1, x2, y2), label, colour))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(wall))
    bar = caption_height(scale)
    cv2.rectangle(out, (0, 0), (w, bar), (0, 0, 0), cv2.FILLED)
    cv2.putText(out, f"{camera}  {stamp}", (6, bar - 7), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    # Labels last: over every box outline, never under the caption bar.
    for box, label, colour in labels:
        _text(out, label, label_origin(box, label, scale, (w, h), bar + 1), scale, (255, 255, 255), colour)
    return out


def box_label(name: str, confidence: float, severity: Severity | None = None) -> str:
    """'fire 0.87', 'starting fire 0.41': class and severity said once, no track number
    (the caption says "Alert #N"; a tracker's own number beside it reads as another alert)."""
    return f"{'starting fire' if severity == 'start-fire' else name} {confidence:.2f}"


def label_scale(frame: tuple[int, int]) -> float:
    """Text scale for a (w, h) frame: readable on 240 lines, not huge on 4K."""
    return max(0.4, min(frame) / 900)


def caption_height(scale: float) -> int:
    """Height of the caption bar at the frame's top, in pixels."""
    (_, text_h), base = cv2.getTextSize("Ag", _FONT, scale, 1)
    return text_h + base + 8


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
