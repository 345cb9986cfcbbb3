"""The whole frame plus overlapping tiles of it: small, distant fires at a finer scale.

At the model's 320 px input, a fire covering 0.5 % of a wide camera's frame is about 23 px
wide, and most such fires are missed. Each tile is letterboxed into the same input as a
frame would be, so a 2 × 2 grid of tiles, each 0.6 of the frame's side, sees everything at
1.67 times the scale, for four more model calls. They are spent only on frames where the
whole frame already shows a box at the detector's threshold (a plume, a faint flame, or the
fire itself), so a quiet scene costs what it did. Nor are they spent on frames that already
show a clear fire (a confident fire box of ``max_area`` or more): the whole frame alerts on
that by itself, and the tiles would only add its sparks. Boxes in the camera's ignore zones
count for neither (a fireplace burning on purpose must not stop the tiles for the whole view).

Only what the whole frame misses is taken from the tiles: fire boxes (not smoke: plumes are
large, and the model learnt their look at frame scale) smaller than ``max_area`` of the
frame, and not cut by a tile's inner edge (the whole frame, or the neighbouring tile, sees
that flame whole). They join the frame's boxes through one class-aware NMS. The choices and
their cost are measured in ``models/fire-detector-v2.md`` ("Tiles for small fires").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vision.detectors.yolo import Inferred, Letterbox, Prepared, YoloDetector
from vision.geometry import class_nms
from vision.types import Detections
from vision.zones import ZoneSet

log = logging.getLogger(__name__)

# Frame pixels within which a box counts as touching a tile's edge.
EDGE_MARGIN = 2.0


@dataclass(frozen=True)
class Tile:
    """A window of the frame: top-left corner and size, in frame pixels."""

    y: int
    x: int
    h: int
    w: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[self.y : self.y + self.h, self.x : self.x + self.w])

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        return xyxy + np.array([self.x, self.y, self.x, self.y], np.float32)

    def cut(self, xyxy: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
        """Which frame-pixel boxes touch an edge of this tile that lies inside the frame."""
        x1, y1, x2, y2 = xyxy.T
        frame_h, frame_w = frame
        right, bottom = self.x + self.w, self.y + self.h
        return (
            ((x1 <= self.x + EDGE_MARGIN) & (self.x > 0))
            | ((y1 <= self.y + EDGE_MARGIN) & (self.y > 0))
            | ((x2 >= right - EDGE_MARGIN) & (right < frame_w))
            | ((y2 >= bottom - EDGE_MARGIN) & (bottom < frame_h))
        )


def tile_grid(frame: tuple[int, int], grid: int, overlap: float) -> list[Tile]:
    """``grid`` × ``grid`` tiles covering a frame of (h, w); each spans 1/grid + ``overlap``
    of the frame's side, so neighbours share ``overlap`` of it."""
    if grid < 2:
        raise ValueError(f"a tile grid needs at least 2 tiles a side, not {grid}")
    side = min(1.0, 1.0 / grid + overlap)
    frame_h, frame_w = frame
    th, tw = round(frame_h * side), round(frame_w * side)
    ys = np.linspace(0, frame_h - th, grid).round().astype(int)
    xs = np.linspace(0, frame_w - tw, grid).round().astype(int)
    return [Tile(int(y), int(x), th, tw) for y in ys for x in xs]


@dataclass(frozen=True)
class TiledPrepared:
    image: np.ndarray
    whole: Prepared


@dataclass(frozen=True)
class TiledInferred:
    frame: tuple[int, int]
    whole: Detections
    tiles: tuple[tuple[Tile, Inferred], ...]  # empty when the whole frame showed no candidate


class TiledDetector:
    """A ``YoloDetector`` run on the whole frame and, where that frame shows a candidate, on a
    grid of tiles; the same three stages (``vision.detectors.base.StagedDetector``) and the
    same ``Detections``.

    ``gate``: the tiles run only on frames where the whole frame has a box (fire or smoke: a
    plume often shows before its small flame does) scoring at least this (None: the
    detector's own threshold), so a quiet scene costs one model call a frame and a scene with
    a possible fire five. ``clear_fire``: the score at which a fire box of ``max_area`` or
    more makes the tiles unnecessary. ``zones``: the camera's ignore zones, whose boxes
    neither open the gate nor count as a clear fire. ``frames`` and ``tiled_frames`` count
    how often the tiles ran.
    """

    def __init__(self, detector: YoloDetector, grid: int = 2, overlap: float = 0.1,
                 classes: Sequence[str] = ("fire",), max_area: float = 0.02, gate: float | None = None,
                 clear_fire: float = 0.5, zones: ZoneSet | None = None) -> None:
        tile_grid((100, 100), grid, overlap)  # refuse a bad grid now, not on the first frame
        self.detector = detector
        self.grid = grid
        self.overlap = overlap
        self.max_area = max_area
        self.gate = detector.conf_threshold if gate is None else gate
        self.clear_fire = clear_fire
        self.zones = zones or ZoneSet()
        self.names = detector.names
        self.tile_classes = np.array([k for k, v in detector.names.items() if v in classes], np.int32)
        # Tiles are letterboxed on the model's thread while the pipeline's feed thread
        # letterboxes the next frame into the detector's own buffers: they need their own.
        self.tile_letterbox = Letterbox(detector.imgsz)
        self.frames = 0
        self.tiled_frames = 0
        log.info("detector tiles: %d x %d more model calls on frames with a box at %g or more and no %s box "
                 "of %g of the frame at %g; the tiles add %s boxes under that size", grid, grid, self.gate,
                 "/".join(classes), max_area, clear_fire, "/".join(classes))

    @property
    def rules(self) -> str:
        """What decides its boxes besides the model and its thresholds (a cache's key)."""
        return (f"tiles{self.grid}-o{self.overlap:g}-a{self.max_area:g}-g{self.gate:g}-c{self.clear_fire:g}-"
                + "".join(str(c) for c in self.tile_classes))

    def __call__(self, image: np.ndarray) -> Detections:
        return self.decode(self.infer(self.prepare(image)))

    def prepare(self, image: np.ndarray) -> TiledPrepared:
        return TiledPrepared(image, self.detector.prepare(image))

    def infer(self, prepared: TiledPrepared) -> TiledInferred:
        # Whether the tiles run depends on the whole frame's boxes, so it is decoded here, on
        # the model's thread, and the tiles are letterboxed here too (one resize each, as a
        # frame costs); a quiet frame thus pays for no tile at all.
        whole = self.detector.decode(self.detector.infer(prepared.whole))
        frame = (int(prepared.image.shape[0]), int(prepared.image.shape[1]))
        self.frames += 1
        seen = self.zones.apply(whole, (frame[1], frame[0]))
        if not (seen.confidence >= self.gate).any() or self._shows_clear_fire(seen, frame):
            return TiledInferred(frame, whole, ())
        self.tiled_frames += 1
        tiles = tuple((tile, self.detector.infer(self.detector.prepare(tile.crop(prepared.image),
                                                                       letterbox=self.tile_letterbox)))
                      for tile in tile_grid(frame, self.grid, self.overlap))
        return TiledInferred(frame, whole, tiles)

    def _shows_clear_fire(self, whole: Detections, frame: tuple[int, int]) -> bool:
        large = whole.area >= self.max_area * frame[0] * frame[1]
        return bool((np.isin(whole.class_id, self.tile_classes) & large & (whole.confidence >= self.clear_fire)).any())

    def decode(self, inferred: TiledInferred) -> Detections:
        whole = inferred.whole
        if not inferred.tiles:
            return whole
        xyxy, confidence, class_id = [whole.xyxy], [whole.confidence], [whole.class_id]
        frame_area = float(inferred.frame[0] * inferred.frame[1])
        for tile, part in inferred.tiles:
            found = self.detector.decode(part)
            boxes = tile.to_frame(found.xyxy)
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / frame_area
            keep = (np.isin(found.class_id, self.tile_classes) & (area <= self.max_area)
                    & ~tile.cut(boxes, inferred.frame))
            xyxy.append(boxes[keep])
            confidence.append(found.confidence[keep])
            class_id.append(found.class_id[keep])
        boxes, scores, classes = np.concatenate(xyxy), np.concatenate(confidence), np.concatenate(class_id)
        keep = class_nms(boxes, scores, classes, self.detector.iou_threshold, self.detector.max_det)
        return Detections(boxes[keep], scores[keep], classes[keep])

    def model_inputs(self, image: np.ndarray) -> list[np.ndarray]:
        """Every model input of a frame whose tiles run: the whole frame's, then the tiles'."""
        frame = (int(image.shape[0]), int(image.shape[1]))
        return [self.detector.prepare(image).blob,
                *(self.detector.prepare(tile.crop(image)).blob for tile in tile_grid(frame, self.grid, self.overlap))]


def tiled(detector: YoloDetector, grid: int, gate: float | None = None,
          zones: ZoneSet | None = None) -> YoloDetector | TiledDetector:
    """``detector`` with a ``grid`` × ``grid`` tiling (``gate``, ``zones``: see
    ``TiledDetector``), or as it is for a grid of 1 (no tiles)."""
    return detector if grid <= 1 else TiledDetector(detector, grid, gate=gate, zones=zones)
