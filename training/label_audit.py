"""Audit the fire-free images a detector calls fire: which of them show flames the labels omit.

`fire/` labels some pictures smoke only although flames are plainly visible (a burning building
behind its smoke, a frame full of flame), and its fire-free photos hold lit fireplaces. On val
such an image counts as a false alarm; on train it teaches the detector that flames are
background, and mining hard negatives weighs that lesson up. This tool puts the flagged
fire-free images on numbered sheets for a person to look at, reads their verdicts back, and
writes a corrected copy of the dataset (links and label files, never copies of the images):

    python -m training.label_audit sheets --split val --conf 0.15 --out runs/audit/val
    # fill in the `verdict` column of runs/audit/val/audit.csv: `fire` (flames the labels
    # omit) or `no` (a real false alarm: a lamp, a sunset, a glowing sky)
    python -m training.label_audit apply --audit runs/audit/val/audit.csv --audit runs/audit/train/audit.csv

The verdicts behind the model card's audited figures are models/report/detector-v2/label-audit-{val,train}.csv
(the flags at 0.15 of the session-15 detector, the one shipped when they were made).

``apply`` writes ``runs/data/fire-audited``, the dataset without the images audited ``fire``:
val's image-level rates then count only images whose labels hold, and training no longer learns
those flames as background. (The detector's boxes are not added as fire labels instead: they
need not cover the flames as a labeller would, and the sheet's verdict is per image.) It also
writes the train images audited ``no``, ``repeats`` times, as a YOLO folder for
``training.detector --negatives``: hard negatives that are really fire-free.
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.evaluate import GroundTruth, dataset_names, find_samples
from training.false_alarm_sheet import FIRE_BOX, draw, flagged_fire_free, sheet
from training.hard_negatives import FIRE_CLASS, link_repeats
from vision.types import Detections

log = logging.getLogger(__name__)

FIRE, NO = "fire", "no"
FIELDS = ("sheet", "number", "split", "image", "scores", "boxes", "verdict")
PER_SHEET = 20
COLUMNS = 5
PANEL = 240  # px: the whole image, then a zoom on its best fire box, side by side


@dataclass(frozen=True)
class Flagged:
    """A fire-free image with fire boxes at the threshold; boxes normalised xyxy, best first."""

    image: Path
    scores: tuple[float, ...]
    boxes: tuple[tuple[float, float, float, float], ...]


@dataclass(frozen=True)
class Verdict:
    split: str
    image: str  # file name, as in the dataset
    verdict: str


def flagged_images(data: Path, model: Path, split: str, conf: float) -> Iterable[tuple[Flagged, np.ndarray]]:
    """Each fire-free image of ``split`` on which the detector finds fire at ``conf``, with its tile."""
    for path, image, truth, dets in flagged_fire_free(data, model, conf, split, threads=2):
        h, w = image.shape[:2]
        boxes = tuple(tuple(round(float(v), 4) for v in box / [w, h, w, h]) for box in dets.xyxy)
        scores = tuple(round(float(c), 3) for c in dets.confidence)
        yield Flagged(path, scores, boxes), _tile(image, truth, dets)  # type: ignore[arg-type]


def _tile(image: np.ndarray, truth: GroundTruth, dets: Detections) -> np.ndarray:
    """The whole image with labels and boxes, and beside it a zoom on the best box and its surroundings."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = dets.xyxy[0]
    side = max(x2 - x1, y2 - y1) * 2.5 + 16
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    zx1, zy1 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    zoom = image[zy1:int(min(h, cy + side / 2)), zx1:int(min(w, cx + side / 2))].copy()
    cv2.rectangle(zoom, (int(x1) - zx1, int(y1) - zy1), (int(x2) - zx1, int(y2) - zy1), FIRE_BOX, 1)
    return np.hstack([_fit(draw(image.copy(), truth, dets), PANEL), _fit(zoom, PANEL)])


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` scaled to fit a ``side`` square, padded with black."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    out = np.zeros((side, side, 3), np.uint8)
    out[:small.shape[0], :small.shape[1]] = small
    return out


def _numbered(tile: np.ndarray, number: int) -> np.ndarray:
    tile = tile.copy()
    cv2.rectangle(tile, (0, 0), (44, 22), (0, 0, 0), -1)
    cv2.putText(tile, str(number), (3, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    return tile


def write_sheets(data: Path, model: Path, split: str, conf: float, out: Path) -> Path:
    """Numbered sheets of ``split``'s flagged fire-free images and ``audit.csv`` to fill in; returns the CSV."""
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    tiles: list[np.ndarray] = []
    for flagged, tile in flagged_images(data, model, split, conf):
        number = len(rows) + 1
        rows.append({"sheet": (number - 1) // PER_SHEET + 1, "number": number, "split": split,
                     "image": flagged.image.name, "scores": " ".join(f"{s:.3f}" for s in flagged.scores),
                     "boxes": " ".join(",".join(f"{v:.4f}" for v in box) for box in flagged.boxes), "verdict": ""})
        tiles.append(_numbered(tile, number))
    for first in range(0, len(tiles), PER_SHEET):
        grid = sheet(tiles[first:first + PER_SHEET], COLUMNS)
        cv2.imwrite(str(out / f"sheet-{first // PER_SHEET + 1:02d}.png"), grid)
    csv_path = out / "audit.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    log.info("%d fire-free %s images flagged at %.2f: %s", len(rows), split, conf, csv_path)
    return csv_path


def read_verdicts(paths: Iterable[Path]) -> list[Verdict]:
    """The audited rows; a row without a verdict, or with another word than fire / no, is an error."""
    verdicts = []
    for path in paths:
        with Path(path).open(newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                verdict = (row.get("verdict") or "").strip().lower()
                if verdict not in (FIRE, NO):
                    raise ValueError(f"{path}:{line}: verdict must be '{FIRE}' or '{NO}', got {row.get('verdict')!r}")
                verdicts.append(Verdict(row["split"], row["image"], verdict))
    return verdicts


@dataclass(frozen=True)
class Applied:
    data: Path  # the corrected YOLO copy
    left_out: dict[str, int]  # per split, the images audited as showing flames
    negatives: int  # train images audited fire-free, linked ``repeats`` times into ``negatives_dir``


def apply(data: Path, verdicts: Sequence[Verdict], out: Path, negatives_dir: Path, repeats: int = 3) -> Applied:
    """Write the corrected copy of ``data`` to ``out`` and the audited hard negatives to ``negatives_dir``."""
    by_key = {(v.split, v.image): v for v in verdicts}
    for stale in (out / "images", out / "labels", negatives_dir / "images", negatives_dir / "labels"):
        shutil.rmtree(stale, ignore_errors=True)  # a verdict changed since the last apply
    left_out = {"train": 0, "val": 0}
    negatives = 0
    for split in ("train", "val"):
        images, labels = out / "images" / split, out / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for sample in find_samples(data, split):
            lines = sample.label.read_text().splitlines() if sample.label.exists() else []
            verdict = by_key.get((split, sample.image.name))
            if verdict is not None and verdict.verdict == FIRE:
                left_out[split] += 1
                continue
            if verdict is not None and split == "train":
                link_repeats(negatives_dir, sample.image, lines, repeats)
                negatives += 1
            link = images / sample.image.name
            if not link.is_symlink():
                link.symlink_to(sample.image.resolve())
            (labels / f"{sample.image.stem}.txt").write_text("".join(f"{line}\n" for line in lines if line.strip()))
    _write_manifest(data, out, {(v.split, v.image) for v in verdicts if v.verdict == FIRE})
    names = dataset_names(data) or {FIRE_CLASS: "fire", 1: "smoke"}
    (out / "data.yaml").write_text(f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n"
                                   + "".join(f"  {k}: {v}\n" for k, v in sorted(names.items())))
    log.info("%s: left out %d train and %d val images that show flames; %d audited negatives x %d in %s",
             out, left_out["train"], left_out["val"], negatives, repeats, negatives_dir)
    return Applied(out, left_out, negatives)


def _write_manifest(data: Path, out: Path, left_out: set[tuple[str, str]]) -> None:
    """The source's ``manifest.csv`` (groups, sizes) without the left-out rows, for the tools that read it."""
    source = data / "manifest.csv"
    if not source.exists():
        return
    with source.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if (r["split"], Path(r["file"]).name) not in left_out]
        fields = reader.fieldnames or []
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> object:
    from firewatch.paths import data_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sheets = sub.add_parser("sheets", help="numbered sheets of the flagged fire-free images, and audit.csv")
    sheets.add_argument("--split", default="val", choices=("train", "val"))
    sheets.add_argument("--conf", type=float, default=0.15)
    sheets.add_argument("--out", type=Path, required=True)
    done = sub.add_parser("apply", help="the corrected dataset copy and the audited hard negatives")
    done.add_argument("--audit", type=Path, action="append", required=True, help="a filled-in audit.csv (repeatable)")
    done.add_argument("--out", type=Path, default=Path("runs/data/fire-audited"))
    done.add_argument("--negatives", type=Path, default=Path("runs/data/audited-negatives"))
    done.add_argument("--repeats", type=int, default=3)
    for p in (sheets, done):
        p.add_argument("--data", type=Path, default=None, help="YOLO dataset (default: $FIREWATCH_DATA/fire)")
    sheets.add_argument("--model", type=Path, default=Path("models/fire-detector.onnx"))
    args = parser.parse_args(argv)
    data = args.data or data_root() / "fire"
    if args.command == "sheets":
        return write_sheets(data, args.model, args.split, args.conf, args.out)
    return apply(data, read_verdicts(args.audit), args.out, args.negatives, args.repeats)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(main())
