"""A contact sheet of the detector's false fire alarms on a labelled folder, to look at.

Every image with no fire label on which the detector finds a fire box at the threshold is
drawn with its fire boxes (red, with scores) and its labels (blue), tiled into one PNG, and
listed by name. A fire-free rate is only as good as the labels behind it: looking at the
sheet tells real false alarms (lamps, sunsets, faces) from fires the labels missed, and
names the images worth adding as hard negatives.

    python -m training.false_alarm_sheet --data ../shared/data/fire [--model M] [--conf 0.25]
        [--out runs/false-alarms.png]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.evaluate import GroundTruth, dataset_names, find_samples
from vision.detectors import Detector
from vision.types import Detections

log = logging.getLogger(__name__)

TILE = (256, 192)  # (w, h) of one image on the sheet
COLUMNS = 6
FIRE_BOX = (0, 0, 255)
LABEL_BOX = (255, 0, 0)


@dataclass(frozen=True)
class FalseAlarm:
    image: Path
    scores: tuple[float, ...]  # of the fire boxes, highest first


def flagged_fire_free(data: str | Path, model: str | Path, conf: float = 0.25, split: str = "val",
                      threads: int = 1) -> Iterator[tuple[Path, np.ndarray, GroundTruth, Detections]]:
    """Each image of ``split`` without a fire label on which the detector finds fire at ``conf``:
    its path, pixels, labels and fire boxes (best first)."""
    detector = Detector(model, conf_threshold=conf, threads=threads)
    names = dataset_names(data) or detector.names
    fire = next(k for k, v in names.items() if v == "fire")
    for sample in find_samples(data, split):
        image = cv2.imread(str(sample.image))
        if image is None:
            raise ValueError(f"cannot read image {sample.image}")
        truth = GroundTruth.read(sample.label, image.shape[:2])
        if (truth.class_id == fire).any():
            continue
        dets = detector(image)
        dets = dets[dets.class_id == fire]
        if len(dets):
            yield sample.image, image, truth, dets[np.argsort(-dets.confidence)]


def find_false_alarms(data: str | Path, model: str | Path, conf: float = 0.25,
                      split: str = "val") -> tuple[list[FalseAlarm], list[np.ndarray]]:
    """The fire-free images flagged as fire, and each drawn as a tile."""
    alarms: list[FalseAlarm] = []
    tiles: list[np.ndarray] = []
    for path, image, truth, dets in flagged_fire_free(data, model, conf, split):
        alarms.append(FalseAlarm(path, tuple(round(float(c), 3) for c in dets.confidence)))
        tiles.append(cv2.resize(draw(image, truth, dets), TILE, interpolation=cv2.INTER_AREA))
    return alarms, tiles


def draw(image: np.ndarray, truth: GroundTruth, dets: Detections) -> np.ndarray:
    """``image`` (drawn on in place) with its labels in blue and its fire boxes in red, with scores."""
    thick = max(2, round(max(image.shape[:2]) / 300))
    for box in truth.xyxy:
        cv2.rectangle(image, _pt(box[:2]), _pt(box[2:]), LABEL_BOX, thick)
    for box, score in zip(dets.xyxy, dets.confidence):
        cv2.rectangle(image, _pt(box[:2]), _pt(box[2:]), FIRE_BOX, thick)
        cv2.putText(image, f"{score:.2f}", (int(box[0]), int(box[1]) + 12 * thick), cv2.FONT_HERSHEY_SIMPLEX,
                    thick / 3, FIRE_BOX, thick)
    return image


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return int(xy[0]), int(xy[1])


def sheet(tiles: list[np.ndarray], columns: int = COLUMNS) -> np.ndarray:
    """Tiles of one size in rows of ``columns``, the last row padded with black."""
    blank = np.zeros_like(tiles[0])
    padded = tiles + [blank] * (-len(tiles) % columns)
    return np.vstack([np.hstack(padded[i:i + columns]) for i in range(0, len(padded), columns)])


def main(argv: list[str] | None = None) -> list[FalseAlarm]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=Path("models/fire-detector.onnx"))
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path, default=Path("runs/false-alarms.png"))
    args = parser.parse_args(argv)
    alarms, tiles = find_false_alarms(args.data, args.model, args.conf, args.split)
    for alarm in alarms:
        print(f"{alarm.image.name}\t{' '.join(f'{s:.2f}' for s in alarm.scores)}")
    print(f"{len(alarms)} fire-free images flagged as fire at {args.conf}")
    if tiles:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.out), sheet(tiles))
        print(f"sheet: {args.out}")
    return alarms


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
