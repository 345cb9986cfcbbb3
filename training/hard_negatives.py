"""Fire-free training images that a detector still calls fire, repeated, as a YOLO folder.

Hard-negative mining: the image-level target is about false fires, and most fire-free train
images are already easy. Running the detector over ``fire/`` train and keeping the images
without a fire label on which it finds fire at ``conf`` gives the ones it still gets wrong;
listing each of them ``repeats`` times more weighs them up in the next fine-tune
(``training.detector --negatives``). Smoke labels travel with their image, so a smoke-only
picture still teaches smoke; but its repeats weigh smoke up too, which ``unlabelled_only``
avoids by keeping the images without any label. The folder holds links and label files, never
copies of the data.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2

from training.classifier_data import split_files
from vision.detectors import Detector

log = logging.getLogger(__name__)

FIRE_CLASS = 0
CONF = 0.15  # the daemon's threshold with verification on
REPEATS = 3


@dataclass(frozen=True)
class Mined:
    folder: Path  # the YOLO root: images/train and labels/train below it
    fire_free: int  # train images considered: without a fire label (without any, unlabelled_only)
    flagged: int  # of those, the ones the detector calls fire
    written: int  # flagged x repeats


def _label_lines(label_file: Path) -> list[str]:
    if not label_file.exists():
        return []
    return [line for line in label_file.read_text().splitlines() if line.strip()]


def _has_fire(lines: list[str]) -> bool:
    return any(int(line.split()[0]) == FIRE_CLASS for line in lines)


def mine(data: Path, model: Path, out: Path, conf: float = CONF, repeats: int = REPEATS,
         limit: int | None = None, unlabelled_only: bool = False) -> Mined:
    """Write ``repeats`` links (and label files) per flagged fire-free train image of ``data``
    (with ``unlabelled_only``, per flagged image without any label)."""
    detector = Detector(model, conf_threshold=conf, iou_threshold=0.5)
    images, labels = out / "images" / "train", out / "labels" / "train"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    fire_free = flagged = 0
    for rel in split_files(data, "train", limit):
        source = (data / "images" / rel).resolve()
        lines = _label_lines(data / "labels" / Path(rel).with_suffix(".txt"))
        if _has_fire(lines) or (unlabelled_only and lines):
            continue
        img = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("unreadable %s", source)
            continue
        fire_free += 1
        if not (detector(img).class_id == FIRE_CLASS).any():
            continue
        flagged += 1
        stem = Path(rel).with_suffix("").as_posix().replace("/", "__")
        for k in range(repeats):
            name = f"{stem}__r{k}"
            link = images / f"{name}{source.suffix}"
            if not link.is_symlink():
                link.symlink_to(source)
            (labels / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    log.info("%d of %d fire-free train images flagged at %.2f; %d links in %s",
             flagged, fire_free, conf, flagged * repeats, images)
    return Mined(out, fire_free, flagged, flagged * repeats)


if __name__ == "__main__":
    from firewatch.paths import data_root

    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="YOLO dataset (default: $FIREWATCH_DATA/fire)")
    parser.add_argument("--model", type=Path, default=Path("models/fire-detector.onnx"))
    parser.add_argument("--out", type=Path, default=Path("runs/data/hard-negatives"))
    parser.add_argument("--conf", type=float, default=CONF)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--unlabelled-only", action="store_true",
                        help="only images without any label: smoke-only pictures would weigh smoke up too")
    args = parser.parse_args()
    print(mine(args.data or data_root() / "fire", args.model, args.out, args.conf, args.repeats,
               unlabelled_only=args.unlabelled_only))
