"""Fire-free training images that a detector still calls fire, repeated, as a YOLO folder.

Hard-negative mining: the image-level target is about false fires, and most fire-free train
images are already easy. Running the detector over ``fire/`` train and keeping the images
without a fire label on which it finds fire at ``conf`` gives the ones it still gets wrong;
listing each of them ``repeats`` times more weighs them up in the next fine-tune
(``training.detector --negatives``). Smoke labels travel with their image, so a smoke-only
picture still teaches smoke; but its repeats weigh smoke up too, which ``unlabelled_only``
avoids by keeping the images without any label. The folder holds links and label files, never
copies of the data. Many of the images it finds show flames that their labels omit (73 of the
167 at 0.15 in `fire/` train): ``training.label_audit`` sorts them from the real false alarms by
eye and writes only the real ones as hard negatives.

``positives`` mines the other side of the same trade-off: train images with a fire label on
which the detector puts no fire box at ``conf`` (a stricter threshold than the daemon's, the one
the image-level target needs), repeated likewise. A run that only learns the negatives scores
small, lamp-like flames lower everywhere; the fires it under-scores, weighed up beside them, are
meant to hold those scores (models/fire-detector-v2.md, "Session 23", measures how far they do).
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2

from training.classifier_data import split_files
from training.evaluate import COVER, GroundTruth
from vision.detectors import Detector
from vision.geometry import box_cover_matrix

log = logging.getLogger(__name__)

FIRE_CLASS = 0
CONF = 0.15  # the daemon's threshold with verification on
POSITIVE_CONF = 0.3  # where the shipped detector flags about 3 % of fire-free images
REPEATS = 3


@dataclass(frozen=True)
class Mined:
    folder: Path  # the YOLO root: images/train and labels/train below it
    considered: int  # train images looked at: without a fire label (without any, unlabelled_only;
    # with a fire label, positives)
    flagged: int  # of those, the ones the detector gets wrong: calls fire (positives: misses it)
    written: int  # flagged x repeats


def _label_lines(label_file: Path) -> list[str]:
    if not label_file.exists():
        return []
    return [line for line in label_file.read_text().splitlines() if line.strip()]


def _has_fire(lines: list[str]) -> bool:
    return any(int(line.split()[0]) == FIRE_CLASS for line in lines)


def _misses_fire(dets, label: Path, shape: tuple[int, int]) -> bool:  # type: ignore[no-untyped-def]
    """No fire box lies on a labelled fire (intersection >= COVER of the smaller box)."""
    truth = GroundTruth.read(label, shape)
    fires = truth.xyxy[truth.class_id == FIRE_CLASS]
    boxes = dets.xyxy[dets.class_id == FIRE_CLASS]
    return not len(boxes) or not (box_cover_matrix(boxes, fires) >= COVER).any()


def link_repeats(out: Path, source: Path, lines: list[str], repeats: int, stem: str | None = None) -> None:
    """``repeats`` links to ``source`` under ``out``'s train images, each with ``lines`` as its labels."""
    images, labels = out / "images" / "train", out / "labels" / "train"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for k in range(repeats):
        name = f"{stem or source.stem}__r{k}"
        link = images / f"{name}{source.suffix}"
        if not link.is_symlink():
            link.symlink_to(source.resolve())
        (labels / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines if line.strip()))


def mine(data: Path, model: Path, out: Path, conf: float = CONF, repeats: int = REPEATS,
         limit: int | None = None, unlabelled_only: bool = False, positives: bool = False) -> Mined:
    """Write ``repeats`` links (and label files) per flagged fire-free train image of ``data``
    (with ``unlabelled_only``, per flagged image without any label; with ``positives``, per
    fire-labelled image whose fires get no box)."""
    detector = Detector(model, conf_threshold=conf, iou_threshold=0.5)
    (out / "images" / "train").mkdir(parents=True, exist_ok=True)
    (out / "labels" / "train").mkdir(parents=True, exist_ok=True)
    considered = flagged = 0
    for rel in split_files(data, "train", limit):
        source = (data / "images" / rel).resolve()
        label = data / "labels" / Path(rel).with_suffix(".txt")
        lines = _label_lines(label)
        if _has_fire(lines) != positives or (unlabelled_only and lines):
            continue
        img = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("unreadable %s", source)
            continue
        considered += 1
        dets = detector(img)
        wrong = _misses_fire(dets, label, img.shape[:2]) if positives else (dets.class_id == FIRE_CLASS).any()
        if not wrong:
            continue
        flagged += 1
        link_repeats(out, source, lines, repeats, stem=Path(rel).with_suffix("").as_posix().replace("/", "__"))
    log.info("%d of %d %s train images %s at %.2f; %d links in %s", flagged, considered,
             "fire" if positives else "fire-free", "missed" if positives else "flagged", conf, flagged * repeats, out / "images" / "train")
    return Mined(out, considered, flagged, flagged * repeats)


if __name__ == "__main__":
    from firewatch.paths import data_root

    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="YOLO dataset (default: $FIREWATCH_DATA/fire)")
    parser.add_argument("--model", type=Path, default=Path("models/fire-detector.onnx"))
    parser.add_argument("--out", type=Path, default=Path("runs/data/hard-negatives"))
    parser.add_argument("--conf", type=float, default=None,
                        help=f"detection threshold (default {CONF}; with --positives {POSITIVE_CONF})")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--unlabelled-only", action="store_true",
                        help="only images without any label: smoke-only pictures would weigh smoke up too")
    parser.add_argument("--positives", action="store_true",
                        help="the fire images whose fires get no box instead (hard positives)")
    args = parser.parse_args()
    conf = args.conf if args.conf is not None else POSITIVE_CONF if args.positives else CONF
    print(mine(args.data or data_root() / "fire", args.model, args.out, conf, args.repeats,
               unlabelled_only=args.unlabelled_only, positives=args.positives))
