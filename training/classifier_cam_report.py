"""CAM overlays of the fire classifier on val frames, for the model report (models/report/).

Each PNG is a val frame with the class-activation map of its predicted fire class blended
over it, the labelled fire boxes in green and the prediction written in the corner.
Small files (long side 256 px) so they can sit in the repository.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from vision.cam import overlay
from vision.classifier import FireClassifier

# Val frames chosen to show the range: CCTV fire, web photo fires, a small outdoor fire,
# a hard negative, a fire-free CCTV frame. Picked by their manifest row, not by how well the model does on them.
DEFAULT_PICKS = (
    ("rf__", 0.05, 0.5),
    ("lz__", 0.1, 0.6),
    ("ig__", 0.1, 0.6),
    ("ig__", 0.0, 0.02),
    ("cairneg__", 0.0, 0.0),
    ("rf__", 0.0, 0.0),
)


def pick_frames(data_dir: Path, picks=DEFAULT_PICKS, per_pick: int = 1) -> list[str]:
    """Val files (relative to fire/images) matching (prefix, min area, max area), first by name."""
    with open(Path(data_dir) / "fire" / "manifest.csv", newline="") as f:
        rows = sorted((r for r in csv.DictReader(f) if r["split"] == "val"), key=lambda r: r["file"])
    out = []
    for prefix, lo, hi in picks:
        hits = [r["file"] for r in rows
                if Path(r["file"]).name.startswith(prefix) and lo <= float(r["max_fire_area"] or 0) <= hi
                and (hi > 0 or int(r["n_fire"]) == 0)]
        out += hits[:per_pick]
    return out


def _fire_boxes(label_file: Path, h: int, w: int) -> list[tuple[int, int, int, int]]:
    boxes = []
    if label_file.exists():
        for line in label_file.read_text().split("\n"):
            p = line.split()
            if len(p) == 5 and p[0] == "0":
                cx, cy, bw, bh = (float(v) for v in p[1:])
                boxes.append((int((cx - bw / 2) * w), int((cy - bh / 2) * h),
                              int((cx + bw / 2) * w), int((cy + bh / 2) * h)))
    return boxes


def render(clf: FireClassifier, image_bgr: np.ndarray, boxes, long_side: int = 256) -> np.ndarray:
    """One report image: CAM overlay + fire boxes + prediction text."""
    result = clf.classify(image_bgr)
    vis = overlay(image_bgr, clf.cam(image_bgr))
    for x1, y1, x2, y2 in boxes:
        cv2.rectangle(vis, (x1, y1), (x2, y2), (0, 255, 0), 2)
    scale = long_side / max(vis.shape[:2])
    vis = cv2.resize(vis, (round(vis.shape[1] * scale), round(vis.shape[0] * scale)),
                     interpolation=cv2.INTER_AREA)
    text = f"{result.label} {result.confidence:.2f}"
    cv2.putText(vis, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(vis, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return vis


def write_cam_report(model_path: Path, data_dir: Path, out_dir: Path,
                     files: list[str] | None = None) -> list[Path]:
    """Write ``cam-<n>-<file stem>.png`` for each val frame; returns the paths."""
    clf = FireClassifier(model_path)
    fire = Path(data_dir) / "fire"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, rel in enumerate(files or pick_frames(data_dir)):
        img = cv2.imread(str(fire / "images" / rel), cv2.IMREAD_COLOR)
        boxes = _fire_boxes(fire / "labels" / Path(rel).with_suffix(".txt"), *img.shape[:2])
        stem = Path(rel).stem.split(".rf.")[0][:40]
        path = out_dir / f"cam-{i + 1}-{stem}.png"
        cv2.imwrite(str(path), render(clf, img, boxes), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        written.append(path)
    return written
