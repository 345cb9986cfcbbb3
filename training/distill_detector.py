"""Detector distillation: the v2 teacher's boxes as extra labels for the small v1 student.

Hard-label distillation, the detector form of training a student on its teacher's outputs:
the teacher ONNX, run by the daemon's own ``Detector``, labels every train image of a YOLO
folder, and each of its boxes at or above ``conf`` that no labelled box of the same class
already covers (IoU below ``iou``) is added to that image's labels. The student (v1's
architecture, from v1's weights) is then fine-tuned on the merged labels by
``training.detector``, and a control run spends the same budget on the ground truth alone, so
the difference between the two is the teacher's. Validation stays on the dataset's own val
labels. Feature distillation, the soft form, is ultralytics' own and needs no dataset of its
own: ``python -m training.detector --distill-from TEACHER.pt``.

    python -m training.distill_detector --teacher models/fire-detector.onnx --out runs/distill/fire-kd
    python -m training.detector --data runs/distill/fire-kd --finetune-from v1.pt --variant kd --epochs 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from firewatch.paths import data_root
from training.evaluate import GroundTruth, label_for
from vision.detectors import Detector
from vision.geometry import box_iou_matrix
from vision.sources import IMAGE_SUFFIXES
from vision.types import Detections

log = logging.getLogger(__name__)


def teacher_boxes(truth: GroundTruth, teacher: Detections, iou: float = 0.5) -> GroundTruth:
    """The teacher's boxes that no labelled box of the same class covers at ``iou`` or more."""
    keep = np.ones(len(teacher.class_id), bool)
    if len(truth) and keep.any():
        overlap = box_iou_matrix(teacher.xyxy, truth.xyxy)
        same_class = teacher.class_id[:, None] == truth.class_id[None, :]
        keep = ~((overlap >= iou) & same_class).any(axis=1)
    return GroundTruth(teacher.xyxy[keep], teacher.class_id[keep], truth.shape)


@dataclass(frozen=True)
class Labelled:
    data_yaml: Path
    images: int
    labelled_boxes: int
    added_by_class: dict[str, int]
    images_with_additions: int


def label_with_teacher(data_dir: Path, teacher: Detector, out: Path, *, iou: float = 0.5) -> Labelled:
    """A YOLO folder at ``out``: ``data_dir``'s train images (linked, not copied) with the
    teacher's extra boxes merged into their labels, and ``data_dir``'s val split unchanged."""
    data_dir, out = Path(data_dir).resolve(), Path(out).resolve()
    spec = yaml.safe_load((data_dir / "data.yaml").read_text())
    names = {int(k): v for k, v in spec["names"].items()}
    images_out, labels_out = out / "images" / "train", out / "labels" / "train"
    images_out.mkdir(parents=True, exist_ok=True)
    labels_out.mkdir(parents=True, exist_ok=True)
    added = dict.fromkeys(names.values(), 0)
    images = labelled = touched = 0
    train = sorted(p for p in (data_dir / spec["train"]).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for image in tqdm(train, desc="teacher labels", unit="img"):
        frame = cv2.imread(str(image))
        if frame is None:
            log.warning("skipped %s: not a readable image", image.name)
            continue
        shape = frame.shape[:2]
        label = label_for(image)
        truth = GroundTruth.read(label, shape)
        extra = teacher_boxes(truth, teacher(frame), iou)
        own = label.read_text().strip().splitlines() if label.is_file() else []
        new = extra.lines()
        (labels_out / f"{image.stem}.txt").write_text("".join(f"{line}\n" for line in [*own, *new]))
        # Per-file links: ultralytics resolves a linked folder back to the source, and would
        # then read the source's labels instead of these.
        link = images_out / image.name
        if not link.is_symlink():
            os.symlink(image, link)
        images += 1
        labelled += len(truth)
        touched += bool(new)
        for line in new:  # counted from what was written: boxes of zero size are not
            added[names[int(line.split()[0])]] += 1
    merged = {"path": str(out), "train": "images/train", "val": str(data_dir / spec["val"]), "names": names}
    (out / "data.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return Labelled(out / "data.yaml", images, labelled, added, touched)


def main(argv: list[str] | None = None) -> Labelled:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", type=Path, required=True, help="the teacher detector's ONNX file")
    ap.add_argument("--data", type=Path, default=data_root() / "fire", help="YOLO folder whose train split is labelled")
    ap.add_argument("--out", type=Path, required=True, help="folder for the merged dataset")
    ap.add_argument("--conf", type=float, default=0.3, help="the teacher's score for a box to be added")
    ap.add_argument("--iou", type=float, default=0.5, help="overlap with a labelled box of its class that makes a teacher box redundant")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    teacher = Detector(args.teacher, conf_threshold=args.conf, threads=args.threads)
    result = label_with_teacher(args.data, teacher, args.out, iou=args.iou)
    summary = asdict(result) | {"teacher": str(args.teacher), "conf": args.conf, "iou": args.iou}
    (args.out / "labelled.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
