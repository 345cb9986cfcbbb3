"""Ignore zones: places in a camera's view where detections are dropped before tracking
(a fireplace, a TV, a window facing the sunset).

A zone is a polygon in normalised coordinates (0-1 of the frame's width and height), so
that one zone fits every resolution a camera may switch to. A detection is dropped when at
least ``min_inside`` of its box area lies inside some zone: a fire that grows out of the
fireplace onto the carpet is mostly outside it and is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from vision.types import Detections

Point = tuple[float, float]
DEFAULT_MIN_INSIDE = 0.5
DEFAULT_PADDING = 0.1


@dataclass(frozen=True)
class Zone:
    """A polygon of at least three normalised (x, y) points. ``id`` is the database row of a
    zone added by an operator; None for zones from the configuration file."""

    name: str
    points: tuple[Point, ...]
    id: int | None = None

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise ValueError(f"zone {self.name!r} needs at least 3 points")
        for x, y in self.points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"zone {self.name!r}: point ({x}, {y}) is outside 0-1")

    def pixels(self, width: int, height: int) -> np.ndarray:
        """The polygon in pixels of a ``width`` x ``height`` frame, float32 (N, 2)."""
        return np.asarray(self.points, np.float32) * np.float32([width, height])


def box_zone(name: str, box: Sequence[float], padding: float = DEFAULT_PADDING, id: int | None = None) -> Zone:
    """A rectangle zone around a normalised (x1, y1, x2, y2) box, grown by ``padding`` of its
    size on each side and clipped to the frame: a flickering source moves its box a little."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * padding, (y2 - y1) * padding
    x1, y1 = max(0.0, x1 - dx), max(0.0, y1 - dy)
    x2, y2 = min(1.0, x2 + dx), min(1.0, y2 + dy)
    return Zone(name, ((x1, y1), (x2, y1), (x2, y2), (x1, y2)), id)


def inside_fraction(box: Sequence[float], polygon: np.ndarray) -> float:
    """The fraction of ``box`` (x1, y1, x2, y2) covered by ``polygon`` (N, 2), same units.

    The polygon is clipped to the box (Sutherland-Hodgman: exact for any simple polygon
    against a rectangle) and the clipped area measured with the shoelace formula.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    area = (x2 - x1) * (y2 - y1)
    if area <= 0:
        return 0.0
    clipped = [tuple(map(float, p)) for p in polygon]
    for axis, bound, keep_above in ((0, x1, True), (0, x2, False), (1, y1, True), (1, y2, False)):
        clipped = _clip(clipped, axis, bound, keep_above)
        if not clipped:
            return 0.0
    xs = np.array([p[0] for p in clipped])
    ys = np.array([p[1] for p in clipped])
    covered = 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))
    return min(1.0, covered / area)


def _clip(points: list[Point], axis: int, bound: float, keep_above: bool) -> list[Point]:
    def inside(p: Point) -> bool:
        return p[axis] >= bound if keep_above else p[axis] <= bound

    out: list[Point] = []
    for i, current in enumerate(points):
        previous = points[i - 1]
        if inside(current):
            if not inside(previous):
                out.append(_crossing(previous, current, axis, bound))
            out.append(current)
        elif inside(previous):
            out.append(_crossing(previous, current, axis, bound))
    return out


def _crossing(a: Point, b: Point, axis: int, bound: float) -> Point:
    t = (bound - a[axis]) / (b[axis] - a[axis])
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def drop_ignored(
    detections: Detections,
    zones: Iterable[Zone],
    frame_size: tuple[int, int],
    min_inside: float = DEFAULT_MIN_INSIDE,
) -> Detections:
    """``detections`` without those whose box lies at least ``min_inside`` inside a zone.

    ``frame_size`` is (width, height) of the frame the boxes are in.
    """
    polygons = [zone.pixels(*frame_size) for zone in zones]
    if not polygons or not len(detections):
        return detections
    keep = np.array([
        all(inside_fraction(box, polygon) < min_inside for polygon in polygons) for box in detections.xyxy
    ], dtype=bool)
    return detections if keep.all() else detections[keep]


class ZoneSet:
    """One camera's zones: fixed ones from the configuration and those operators added,
    which the bot replaces at run time while the pipeline reads them from its own thread.

    Readers take the current tuple without a lock (one attribute read); writers build a
    new tuple under the lock, so a frame sees either the old zones or the new, never a mix.
    """

    def __init__(self, configured: Iterable[Zone] = (), added: Iterable[Zone] = ()) -> None:
        self.configured = tuple(configured)
        self._lock = threading.Lock()
        self._all = self.configured + tuple(added)

    @property
    def zones(self) -> tuple[Zone, ...]:
        return self._all

    @property
    def added(self) -> tuple[Zone, ...]:
        return self._all[len(self.configured):]

    def set_added(self, added: Iterable[Zone]) -> None:
        with self._lock:
            self._all = self.configured + tuple(added)

    def apply(self, detections: Detections, frame_size: tuple[int, int]) -> Detections:
        return drop_ignored(detections, self._all, frame_size)
