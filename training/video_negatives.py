"""Frames of fire-free clips as background images for detector training.

A YOLO image without a label file is pure background to ultralytics, so a folder of such
frames teaches "nothing here" on scenes the daemon really watches (indoor CCTV, people
walking), which photo datasets under-represent. Only the clips named here are used: the
other fire-free clips stay out of training so that ``firewatch bench video`` still has
fire-free footage the detector has never seen.
"""
from __future__ import annotations

import argparse
import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2

log = logging.getLogger(__name__)

TRAINING_CLIPS = ("intel__one-by-one-person-detection.mp4",)
EVERY = 10  # neighbouring frames are near duplicates; one in ten still follows the people


@dataclass(frozen=True)
class Extracted:
    folder: Path  # the YOLO root: images/train below it
    frames: int


def fire_free_clips(videos: Path) -> list[str]:
    with (videos / "labels.csv").open(newline="") as f:
        return [row["file"] for row in csv.DictReader(f) if row["fire_free"] == "1"]


def extract(videos: Path, out: Path, clips: tuple[str, ...] = TRAINING_CLIPS, every: int = EVERY) -> Extracted:
    """Write every ``every``-th frame of ``clips`` to ``out/images/train`` (idempotent)."""
    known = set(fire_free_clips(videos))
    unknown = [c for c in clips if c not in known]
    if unknown:
        raise ValueError(f"not fire-free clips in {videos / 'labels.csv'}: {', '.join(unknown)}")
    images = out / "images" / "train"
    images.mkdir(parents=True, exist_ok=True)
    written = 0
    for clip in clips:
        capture = cv2.VideoCapture(str(videos / clip))
        index = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if index % every == 0:
                    target = images / f"{Path(clip).stem}__{index:05d}.jpg"
                    if not target.exists():
                        cv2.imwrite(str(target), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
                    written += 1
                index += 1
        finally:
            capture.release()
    log.info("%d background frames from %d clip(s) in %s", written, len(clips), images)
    return Extracted(out, written)


if __name__ == "__main__":
    from firewatch.paths import data_root

    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/data/video-negatives"))
    parser.add_argument("--every", type=int, default=EVERY)
    args = parser.parse_args()
    print(extract(data_root() / "videos", args.out, every=args.every))
